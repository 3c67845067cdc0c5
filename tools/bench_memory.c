/*
 * bench_memory.c - `ringpipe bench`'s memory test: what open named pipes
 * cost the machine, ringpipe's against the kernel's own FIFOs.
 *
 * A child creates n named pipes in a fresh directory, opens a read end and
 * a write end of each (one process holding both costs what a reader and a
 * writer process would, less one process), writes 64 bytes into each so
 * that every pipe has its buffer, and holds them while the parent reads
 * /proc/meminfo.  The figure is MemFree with the child idle minus MemFree
 * with the pipes held, over n: everything the pipes cost, whoever pays it
 * (FIFO inodes and dentries, open files, kernel pipe buffers, ringpipe's
 * shared pages and the kernel pipes each end keeps, page tables, the
 * library's own bookkeeping).
 *
 * Where it can, the child moves into a memory cgroup of its own, made
 * under ours, and the reading is that cgroup's charge: the kernel charges
 * the child's pages and its accounted kernel objects (pipe buffers,
 * inodes, dentries, files) there, so other work on the machine does not
 * move it.  Otherwise (no cgroup we may create) the reading is the whole
 * machine's MemFree, which other work does move; the caller's min-max
 * across repetitions says by how much.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ringpipe.h"
#include "tool.h"

/* Descriptors per pipe, both ends held: the kernel's 2, ringpipe's ends
 * keep their kernel pipes too (see src/internal.h), with room to spare. */
#define FDS_PER_PIPE 16

/* Where the memory readings come from: a cgroup of the child's own, or
 * the machine. */
struct meter {
	char dir[PATH_MAX];        /* the cgroup; "" for MemFree */
	const char *file;          /* its charge: memory.current (v2) or
				      memory.usage_in_bytes (v1) */
};

static long long read_ll(const char *path, const char *key)
{
	char line[256];
	long long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!key) {
			if (sscanf(line, "%lld", &v) != 1)
				v = -1;
			break;
		}
		size_t kl = strlen(key);
		if (!strncmp(line, key, kl) && sscanf(line + kl, " %lld", &v) == 1)
			break;
	}
	fclose(f);
	return v;
}

/* Memory in use, in bytes: the cgroup's charge, or the machine's RAM that
 * is not free. */
static long long meter_read(const struct meter *m)
{
	char path[PATH_MAX + 32];

	if (!m->dir[0]) {
		long long kib = read_ll("/proc/meminfo", "MemFree:");
		return kib < 0 ? -1 : -1024 * kib;
	}
	snprintf(path, sizeof(path), "%s/%s", m->dir, m->file);
	return read_ll(path, NULL);
}

/* A memory cgroup under ours, or m->dir = "" if we may not make one. */
static void meter_open(struct meter *m)
{
	static const struct { const char *prefix, *root, *file; } kinds[] = {
		{ "0::", "/sys/fs/cgroup", "memory.current" },
		{ NULL, "/sys/fs/cgroup/memory", "memory.usage_in_bytes" },
	};
	char line[PATH_MAX], probe[2 * PATH_MAX];
	FILE *f = fopen("/proc/self/cgroup", "r");

	m->dir[0] = '\0';
	if (!f)
		return;
	while (!m->dir[0] && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			const char *rel = NULL;
			if (kinds[k].prefix && !strncmp(line, kinds[k].prefix, 3))
				rel = line + 3;
			else if (!kinds[k].prefix && strstr(line, ":memory:"))
				rel = strstr(line, ":memory:") + 8;
			if (!rel)
				continue;
			snprintf(probe, sizeof(probe), "%s%s/ringpipe-bench.%d", kinds[k].root,
				 strcmp(rel, "/") ? rel : "", (int)getpid());
			size_t len = strlen(probe);
			if (len >= sizeof(m->dir) || mkdir(probe, 0700) < 0)
				continue;
			memcpy(m->dir, probe, len + 1);
			m->file = kinds[k].file;
			if (meter_read(m) < 0) {         /* no memory controller here */
				rmdir(m->dir);
				m->dir[0] = '\0';
				continue;
			}
			break;
		}
	}
	fclose(f);
}

static void meter_close(struct meter *m)
{
	/* The child is reaped, but the kernel may take a moment to let go. */
	for (int i = 0; m->dir[0] && i < 50 && rmdir(m->dir) < 0 && errno == EBUSY; i++)
		usleep(10000);
}

/* The child: join the cgroup (writing 0 moves the writer). */
static int meter_join(const struct meter *m)
{
	char path[PATH_MAX + 32];
	int fd, ok;

	if (!m->dir[0])
		return 0;
	snprintf(path, sizeof(path), "%s/cgroup.procs", m->dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ok = write(fd, "0", 1) == 1;
	close(fd);
	return ok ? 0 : -1;
}

/* One byte each way between parent and child; a child's failure arrives
 * as its message instead of the byte. */
static int wait_byte(int fd, char *err, size_t errlen)
{
	char buf[200];
	ssize_t n;

	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	if (n == 1 && buf[0] == '.')
		return 0;
	if (n <= 0)
		snprintf(err, errlen, "the child died");
	else
		snprintf(err, errlen, "%.*s", (int)n, buf);
	return -1;
}

static void say(int fd, const char *msg)
{
	ssize_t r = write(fd, msg, strlen(msg));
	(void)r;
}

struct held {
	int kernel;
	int n;
	char dir[64];
	int *fds;                  /* kernel: 2 per pipe */
	rp_end **ends;             /* ringpipe: 2 per pipe */
	int made;                  /* FIFOs created */
};

static void fifo_path(const struct held *h, int i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/p%d", h->dir, i);
}

static int open_one(struct held *h, int i, char *err, size_t errlen, size_t capacity)
{
	static const char msg[64] = "ringpipe bench: memory per open named pipe";
	char path[96];

	fifo_path(h, i, path, sizeof(path));
	if (h->kernel) {
		if (mkfifo(path, 0600) < 0)
			goto fail;
		h->made++;
		h->fds[2 * i] = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (h->fds[2 * i] < 0)
			goto fail;
		h->fds[2 * i + 1] = open(path, O_WRONLY | O_CLOEXEC);
		if (h->fds[2 * i + 1] < 0 || write(h->fds[2 * i + 1], msg, sizeof(msg)) != sizeof(msg))
			goto fail;
		return 0;
	}
	if (rp_mkfifo(path, 0600, capacity) < 0)
		goto fail;
	h->made++;
	h->ends[2 * i] = rp_open(path, O_RDONLY | O_NONBLOCK);
	if (!h->ends[2 * i])
		goto fail;
	h->ends[2 * i + 1] = rp_open(path, O_WRONLY);
	if (!h->ends[2 * i + 1] || rp_write(h->ends[2 * i + 1], msg, sizeof(msg)) != sizeof(msg))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s pipe %d of %d: %s", h->kernel ? "kernel" : "ringpipe",
		 i + 1, h->n, strerror(errno));
	return -1;
}

static void release(struct held *h)
{
	char path[96];

	for (int i = 0; i < 2 * h->n; i++) {
		if (h->kernel && h->fds[i] >= 0)
			close(h->fds[i]);
		if (!h->kernel && h->ends[i])
			rp_close(h->ends[i]);
	}
	for (int i = 0; i < h->made; i++) {
		fifo_path(h, i, path, sizeof(path));
		if (h->kernel)
			unlink(path);
		else
			rp_unlink(path);
	}
	rmdir(h->dir);
}

/* The child: get ready, report idle, build, report held, wait, clean up. */
static int child(const struct meter *m, int kernel, int n, size_t capacity, int to_parent,
		 int from_parent)
{
	struct held h = { .kernel = kernel, .n = n };
	char err[200], c;
	struct rlimit rl;
	int ok = -1;

	if (meter_join(m) < 0) {
		snprintf(err, sizeof(err), "cannot join %.120s: %s", m->dir, strerror(errno));
		say(to_parent, err);
		return 1;
	}
	h.fds = malloc(2 * (size_t)n * sizeof(*h.fds));
	h.ends = calloc(2 * (size_t)n, sizeof(*h.ends));
	if (!h.fds || !h.ends) {
		say(to_parent, "out of memory");
		return 1;
	}
	for (int i = 0; i < 2 * n; i++)
		h.fds[i] = -1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n * FDS_PER_PIPE) {
		rl.rlim_cur = rl.rlim_max;
		if (rl.rlim_cur < (rlim_t)n * FDS_PER_PIPE) {
			snprintf(err, sizeof(err), "needs %d descriptors; RLIMIT_NOFILE allows %ju",
				 n * FDS_PER_PIPE, (uintmax_t)rl.rlim_max);
			say(to_parent, err);
			return 1;
		}
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(h.dir, sizeof(h.dir), "%s/ringpipe-bench.XXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
	if (!mkdtemp(h.dir)) {
		snprintf(err, sizeof(err), "mkdtemp %s: %s", h.dir, strerror(errno));
		say(to_parent, err);
		return 1;
	}
	say(to_parent, ".");                           /* idle: the baseline */
	if (read(from_parent, &c, 1) != 1)
		goto out;
	for (int i = 0; i < n; i++)
		if (open_one(&h, i, err, sizeof(err), capacity) < 0) {
			say(to_parent, err);
			goto out;
		}
	say(to_parent, ".");                           /* held */
	if (read(from_parent, &c, 1) == 1)
		ok = 0;
out:
	release(&h);
	return ok < 0;
}

int bench_memory(int kernel, int n, size_t capacity, double *kib_per_pipe,
		 const char **method, char *err, size_t errlen)
{
	int up[2], down[2];
	long long before = -1, held = -1;
	int r = -1, status;
	struct meter m;

	if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	meter_open(&m);
	*method = m.dir[0] ? "the charge of a memory cgroup holding only the process that "
			     "holds the pipes"
			   : "the machine's MemFree (no memory cgroup could be made), "
			     "which other work on the machine moves";
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(up[0]); close(up[1]); close(down[0]); close(down[1]);
		meter_close(&m);
		return -1;
	}
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		_exit(child(&m, kernel, n, capacity, up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);
	/* Settle between readings: freed pages drift back to MemFree lazily. */
	if (wait_byte(up[0], err, errlen) == 0) {
		usleep(200000);
		before = meter_read(&m);
		if (write(down[1], ".", 1) == 1 && wait_byte(up[0], err, errlen) == 0) {
			usleep(200000);
			held = meter_read(&m);
			r = 0;
		}
	}
	if (write(down[1], ".", 1) != 1 && r == 0) {
		snprintf(err, errlen, "the child died");
		r = -1;
	}
	close(down[1]);
	close(up[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	meter_close(&m);
	if (r == 0 && (!WIFEXITED(status) || WEXITSTATUS(status))) {
		snprintf(err, errlen, "the child failed to clean up (status %d)", status);
		r = -1;
	}
	if (r == 0 && (before == -1 || held == -1)) {
		snprintf(err, errlen, "cannot read %s", m.dir[0] ? m.file : "MemFree");
		r = -1;
	}
	if (r == 0)
		*kib_per_pipe = (double)(held - before) / 1024 / n;
	return r;
}
