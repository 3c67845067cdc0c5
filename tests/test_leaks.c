/*
 * test_leaks.c - nothing is left behind: descriptors, mappings, files in
 * /dev/shm, after closes, after unlinks, after kill -9; and a signal
 * handler that writes into a pipe never deadlocks its own thread.
 */
#include "harness.h"
#include "procs.h"
#include <ringpipe.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/time.h>

static int count_dir(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	int n = 0;
	CHECK(d != NULL);
	struct dirent *de;
	size_t len = strlen(prefix);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && !strncmp(de->d_name, prefix, len) &&
		    (!len || de->d_name[len] == '\0' || de->d_name[len] == '.'))
			n++;         /* ringpipe.D.123 is not ringpipe.D.1234 */
	closedir(d);
	return n;
}

static int count_fds(void)
{
	return count_dir("/proc/self/fd", "");
}

/* Mappings of ring memory (sanitizers add and drop mappings of their own,
 * so only ours are counted). */
static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "ringpipe") != NULL;
	fclose(f);
	return n;
}

/* The shm files of the named pipe at `path` (0 once it is gone). */
static int shm_files_of(const char *path, dev_t dev, ino_t ino)
{
	char prefix[64];
	(void)path;
	snprintf(prefix, sizeof(prefix), "ringpipe.%llx.%llu",
		 (unsigned long long)dev, (unsigned long long)ino);
	return count_dir("/dev/shm", prefix);
}

TEST(anonymous_pipes_leave_no_fds_or_mappings)
{
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);             /* warm up the handle pool */
	CHECK(rp_close(e[0]) == 0 && rp_close(e[1]) == 0);
	int fds = count_fds(), maps = count_maps();
	for (int i = 0; i < 500; i++) {
		CHECK(rp_pipe2(e, i % 2 ? O_NONBLOCK : 0, 4096u << (i % 5)) == 0);
		CHECK(rp_write(e[1], "x", 1) == 1);
		CHECK(rp_fileno(e[0]) >= 0);
		CHECK(rp_close(e[1]) == 0);
		CHECK(rp_close(e[0]) == 0);
	}
	CHECK(count_fds() == fds);
	CHECK(count_maps() == maps);
}

TEST(connections_leave_no_fds_or_mappings)
{
	rp_conn *c[2];
	CHECK(rp_conn_pipe(c, 1) == 0);
	CHECK(rp_conn_close(c[0]) == 0 && rp_conn_close(c[1]) == 0);
	int fds = count_fds(), maps = count_maps();
	for (int i = 0; i < 300; i++) {
		CHECK(rp_conn_pipe(c, i % 2) == 0);
		CHECK(rp_send(c[1], "hello", 5) == 0);
		char buf[8];
		CHECK(rp_recv(c[0], buf, sizeof buf) == 5);
		CHECK(rp_conn_close(c[0]) == 0);
		CHECK(rp_conn_close(c[1]) == 0);
	}
	CHECK(count_fds() == fds);
	CHECK(count_maps() == maps);
}

TEST(failed_opens_leave_no_fds_or_mappings)
{
	char dir[] = "/tmp/rp_leak_XXXXXX", path[64], plain[64];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/p", dir);
	snprintf(plain, sizeof(plain), "%s/plain", dir);
	CHECK(rp_mkfifo(path, 0600, 0) == 0);
	CHECK(mkfifo(plain, 0600) == 0);
	CHECK(rp_open(path, O_WRONLY | O_NONBLOCK) == NULL);   /* warm up the pool */
	int fds = count_fds(), maps = count_maps();
	for (int i = 0; i < 200; i++) {
		CHECK(rp_open(path, O_WRONLY | O_NONBLOCK) == NULL && errno == ENXIO);
		CHECK(rp_open(plain, O_RDONLY) == NULL && errno == EINVAL);
		CHECK(rp_open(dir, O_RDONLY) == NULL && errno == EINVAL);
	}
	CHECK(count_fds() == fds);
	CHECK(count_maps() == maps);
	CHECK(rp_unlink(path) == 0);
	CHECK(unlink(plain) == 0 && rmdir(dir) == 0);
}

TEST(named_pipe_files_gone_after_unlink_even_if_holders_were_killed)
{
	char dir[] = "/tmp/rp_leak_XXXXXX", path[64];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/p", dir);
	CHECK(rp_mkfifo(path, 0600, 0) == 0);
	struct stat st;
	CHECK(stat(path, &st) == 0);
	CHECK(shm_files_of(path, st.st_dev, st.st_ino) == 3);
	pid_t kids[2];
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		CHECK(kids[i] >= 0);
		if (kids[i] == 0) {
			rp_end *e = rp_open(path, i ? O_WRONLY : O_RDONLY);
			if (!e)
				_exit(1);
			char buf[4096] = { 0 };
			for (;;)
				i ? rp_write(e, buf, sizeof buf) : rp_read(e, buf, sizeof buf);
		}
	}
	usleep(100 * 1000);
	for (int i = 0; i < 2; i++) {
		CHECK(kill(kids[i], SIGKILL) == 0);
		CHECK(waitpid(kids[i], NULL, 0) == kids[i]);
	}
	/* A second link keeps the inode, and so its /dev/shm names, from
	 * being handed to a concurrent case's FIFO before we count them. */
	char pin[64];
	snprintf(pin, sizeof(pin), "%s/pin", dir);
	CHECK(link(path, pin) == 0);
	CHECK(rp_unlink(path) == 0);
	CHECK(shm_files_of(path, st.st_dev, st.st_ino) == 0);
	CHECK(unlink(pin) == 0 && rmdir(dir) == 0);
}

static rp_end *sig_w;
static _Atomic int sig_ok, sig_deadlk, sig_other;

static void write_from_handler(int sig)
{
	(void)sig;
	int saved = errno;
	ssize_t r = rp_write(sig_w, "s", 1);
	if (r == 1)
		atomic_fetch_add(&sig_ok, 1);
	else if (r < 0 && errno == EDEADLK)
		atomic_fetch_add(&sig_deadlk, 1);
	else
		atomic_fetch_add(&sig_other, 1);
	errno = saved;
}

/* The handler may interrupt rp_write while this thread holds the writers'
 * lock: it gets EDEADLK, never a deadlock; otherwise its byte goes in. */
TEST(signal_handler_writing_into_pipe_never_deadlocks)
{
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 1 << 20) == 0);
	sig_w = e[1];
	pid_t reader = fork();
	CHECK(reader >= 0);
	if (reader == 0) {
		char buf[65536];
		rp_close(e[1]);
		while (rp_read(e[0], buf, sizeof buf) > 0)
			;
		_exit(0);
	}
	CHECK(rp_close(e[0]) == 0);
	struct sigaction sa = { .sa_handler = write_from_handler, .sa_flags = SA_RESTART };
	CHECK(sigaction(SIGPROF, &sa, NULL) == 0);
	/* Every 50 us of CPU (scaled under valgrind, whose handlers would
	 * otherwise take longer than the interval and never let us run). */
	suseconds_t us = (suseconds_t)(rp_ms(50) > 50 ? rp_ms(50) : 50);
	struct itimerval it = { { 0, us }, { 0, us } };
	CHECK(setitimer(ITIMER_PROF, &it, NULL) == 0);
	rp_alarm(30);                                   /* a deadlock fails the case */
	static char rec[RP_PIPE_BUF];
	double end = rp_now_ms() + 1500;
	while (rp_now_ms() < end)
		CHECK(rp_write(e[1], rec, sizeof rec) == (ssize_t)sizeof rec);
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	CHECK(setitimer(ITIMER_PROF, &off, NULL) == 0);
	signal(SIGPROF, SIG_IGN);       /* one may still be on its way (valgrind) */
	CHECK(rp_close(e[1]) == 0);
	rp_wait_ok(reader);
	fprintf(stderr, "handler writes: %d done, %d EDEADLK\n", sig_ok, sig_deadlk);
	CHECK(sig_other == 0);
	CHECK(sig_ok + sig_deadlk > 0);
}

/*
 * Calls nested deeper than end.c keeps track of (four levels: a call and
 * three handlers) work without that bookkeeping.  Six SA_NODEFER handlers
 * are each blocked in a read of their own pipe when the next signal comes;
 * all get their bytes, and the process, multi-threaded so that calls count
 * references, keeps no descriptor or mapping of the closed ends and its
 * cancel state as it was.  Skipped under ThreadSanitizer, which blocks
 * every signal while a handler runs (SA_NODEFER or not), so none can nest.
 */
#if defined(__SANITIZE_THREAD__)
#define NO_NESTED_SIGNALS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NO_NESTED_SIGNALS 1
#endif
#endif
#define NEST 6
static rp_end *nest_e[NEST + 1][2];
static _Atomic int *nest_level;         /* the next read's level, shared */
static int nest_ok[NEST + 1];

static void read_nested(int sig)
{
	(void)sig;
	int saved = errno, d = atomic_load(nest_level);
	char c;
	atomic_store(nest_level, d + 1);
	nest_ok[d] = rp_read(nest_e[d][0], &c, 1) == 1 && c == 'a' + d;
	errno = saved;
}

static void *idle_thread(void *arg)
{
	char c;
	return (void *)(intptr_t)read(*(int *)arg, &c, 1);
}

TEST(handlers_nested_deeper_than_call_levels_leave_nothing_behind)
{
	rp_end *w[2];
	int idle[2];
	pthread_t t;
	sigset_t usr1, old;

#ifdef NO_NESTED_SIGNALS
	SKIP("ThreadSanitizer lets no signal handler nest");
#endif
	rp_alarm(20);
	CHECK(rp_pipe(w) == 0);             /* warm up the handle pool */
	CHECK(rp_close(w[0]) == 0 && rp_close(w[1]) == 0);
	CHECK(pipe(idle) == 0);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);          /* the signals are for this thread */
	CHECK(pthread_sigmask(SIG_BLOCK, &usr1, &old) == 0);
	CHECK(pthread_create(&t, NULL, idle_thread, &idle[0]) == 0);
	CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
	int fds = count_fds(), maps = count_maps();
	nest_level = shared_mem(sizeof(*nest_level));
	for (int d = 0; d <= NEST; d++)
		CHECK(rp_pipe(nest_e[d]) == 0);
	struct sigaction sa = { .sa_handler = read_nested,
				.sa_flags = SA_RESTART | SA_NODEFER };
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	pid_t parent = getpid(), pid = fork_child();
	if (pid == 0) {
		/* Signal each level once the one before sleeps in its read. */
		for (int d = 1; d <= NEST + 1; d++) {
			while (atomic_load(nest_level) < d)
				sleep_ms(1);
			wait_sleeping(parent);
			if (d <= NEST)
				kill(parent, SIGUSR1);
		}
		for (int d = NEST; d >= 0; d--)
			CHECK(rp_write(nest_e[d][1], &(char){ (char)('a' + d) }, 1) == 1);
		_exit(0);
	}
	atomic_store(nest_level, 1);
	char c;
	nest_ok[0] = rp_read(nest_e[0][0], &c, 1) == 1 && c == 'a';
	rp_wait_ok(pid);
	CHECK(atomic_load(nest_level) == NEST + 1);
	for (int d = 0; d <= NEST; d++)
		CHECK(nest_ok[d]);
	int state;
	CHECK(pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &state) == 0);
	CHECK(state == PTHREAD_CANCEL_ENABLE);
	for (int d = 0; d <= NEST; d++)
		CHECK(rp_close(nest_e[d][0]) == 0 && rp_close(nest_e[d][1]) == 0);
	CHECK(count_fds() == fds);
	CHECK(count_maps() == maps);
	CHECK(write(idle[1], "x", 1) == 1);
	CHECK(pthread_join(t, NULL) == 0);
}
