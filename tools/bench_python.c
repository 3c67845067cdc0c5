/*
 * bench_python.c - `ringpipe bench` reports the Python package's own
 * benchmark with its figures: `python -m ringpipe.bench --tsv`, which
 * measures ringpipe.Pipe and ringpipe.Queue against multiprocessing's in
 * one run, its runs interleaved, and prints one result per line.
 *
 * The interpreter is $RINGPIPE_PYTHON or python3 from PATH.  The package
 * is whatever that interpreter imports, except that a build tree's
 * (the `python` directory next to this executable, as `make` lays it out)
 * is put first on PYTHONPATH, so `build/ringpipe bench` measures the
 * extension built with it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

/* `dir`/python if it holds the package; else "". */
static void build_tree_path(char *out, size_t len)
{
	char exe[PATH_MAX], probe[PATH_MAX + 32];
	struct stat st;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	out[0] = '\0';
	if (n <= 0)
		return;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = '\0';
	snprintf(probe, sizeof(probe), "%s/python/ringpipe/__init__.py", exe);
	if (stat(probe, &st) == 0 && strlen(exe) + sizeof("/python") <= len)
		memcpy(stpcpy(out, exe), "/python", sizeof("/python"));
}

static void exec_python(int out_fd, int err_fd, int runs, int quick)
{
	char tree[PATH_MAX], pp[2 * PATH_MAX], nruns[16];
	const char *py = getenv("RINGPIPE_PYTHON");
	const char *old = getenv("PYTHONPATH");
	sigset_t none;

	if (!py || !*py)
		py = "python3";
	build_tree_path(tree, sizeof(tree));
	if (tree[0]) {
		snprintf(pp, sizeof(pp), "%s%s%s", tree, old && *old ? ":" : "", old ? old : "");
		setenv("PYTHONPATH", pp, 1);
	}
	/* The bench blocks SIGCHLD and ignores SIGPIPE; exec keeps both. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	dup2(out_fd, STDOUT_FILENO);
	dup2(err_fd, STDERR_FILENO);
	snprintf(nruns, sizeof(nruns), "%d", runs);
	if (quick)
		execlp(py, py, "-m", "ringpipe.bench", "--tsv", "--runs", nruns, "--quick", (char *)NULL);
	else
		execlp(py, py, "-m", "ringpipe.bench", "--tsv", "--runs", nruns, (char *)NULL);
	fprintf(stderr, "%s: %s\n", py, strerror(errno));
	_exit(127);
}

/* The last non-empty line of what the interpreter said on stderr. */
static void last_line(FILE *f, char *err, size_t errlen)
{
	char line[512], last[512] = "";

	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(last, sizeof(last), "%s", line);
	}
	snprintf(err, errlen, "%s", last[0] ? last : "no output");
}

static int parse_line(char *line, bench_python_add_fn add, void *arg)
{
	char *f[8], *save = NULL;
	int n = 0;

	for (char *t = strtok_r(line, "\t\n", &save); t && n < 8; t = strtok_r(NULL, "\t\n", &save))
		f[n++] = t;
	if (n != 8)
		return -1;
	char *end;
	errno = 0;
	unsigned long long size = strtoull(f[2], &end, 10);
	double v = strtod(f[3], NULL), lo = strtod(f[5], NULL), hi = strtod(f[6], NULL);
	int runs = atoi(f[7]);
	if (errno || *end || runs < 1 || !(lo <= v && v <= hi))
		return -1;
	add(f[0], f[1], size, v, lo, hi, f[4], runs, arg);
	return 0;
}

int bench_python(int runs, int quick, int timeout_s, bench_python_add_fn add, void *arg,
		 char *err, size_t errlen)
{
	int out[2];
	FILE *errf = tmpfile();
	char buf[8192];
	size_t len = 0;
	int r = 0, status;

	if (!errf || pipe2(out, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		if (errf)
			fclose(errf);
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(out[0]);
		close(out[1]);
		fclose(errf);
		return -1;
	}
	if (pid == 0) {
		setpgid(0, 0);          /* so that a timeout can kill its children too */
		exec_python(out[1], fileno(errf), runs, quick);
	}
	setpgid(pid, pid);
	close(out[1]);

	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = timeout_s * 1000L - ((t.tv_sec - t0.tv_sec) * 1000L +
						(t.tv_nsec - t0.tv_nsec) / 1000000L);
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		int pr = left > 0 ? poll(&p, 1, (int)(left > INT_MAX ? INT_MAX : left)) : 0;
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			kill(-pid, SIGKILL);
			snprintf(err, errlen, "python -m ringpipe.bench did not finish in %d s", timeout_s);
			r = -1;
			break;
		}
		ssize_t n = read(out[0], buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1) {
			kill(-pid, SIGKILL);
			snprintf(err, errlen, "python -m ringpipe.bench said too much");
			r = -1;
			break;
		}
	}
	close(out[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		last_line(errf, err, errlen);
		r = -1;
	}
	fclose(errf);
	if (r < 0)
		return -1;

	buf[len] = '\0';
	int good = 0;
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (parse_line(line, add, arg) < 0) {
			snprintf(err, errlen, "unexpected line from python -m ringpipe.bench: %.100s", line);
			return -1;
		}
		good++;
	}
	if (!good) {
		snprintf(err, errlen, "python -m ringpipe.bench printed no result");
		return -1;
	}
	return 0;
}
