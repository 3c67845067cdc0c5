/* test_signal.c - EINTR, SA_RESTART, SIGPIPE/EPIPE and partial counts. */
#include "harness.h"
#include "procs.h"
#include <ringpipe.h>

#include <fcntl.h>
#include <stdbool.h>

static volatile sig_atomic_t nsig;
static void on_signal(int sig) { (void)sig; nsig++; }

static void catch_signal(int sig, int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(sig, &sa, NULL) == 0);
	nsig = 0;
}

/* A child process that sends sig to us after ms milliseconds, once we sleep
 * in the kernel (a signal before the call blocks would leave it blocked for
 * good).  Fork it before making the pipe so that it holds no end. */
static pid_t signal_after(int sig, int ms)
{
	pid_t parent = getpid(), pid = fork_child();   /* dies with us */
	if (pid == 0) {
		usleep((useconds_t)ms * 1000);
		wait_sleeping(parent);
		kill(parent, sig);
		_exit(0);
	}
	return pid;
}

static void mkpipe(rp_end *e[2], int flags, size_t cap)
{
	CHECK(rp_pipe2(e, flags, cap) == 0);
	CHECK(e[0] != NULL && e[1] != NULL);
}

TEST(blocked_read_eintr_without_sa_restart)
{
	rp_end *e[2];
	char c;
	rp_alarm(5);
	catch_signal(SIGUSR1, 0);
	double t0 = rp_now_ms();
	pid_t pid = signal_after(SIGUSR1, 200);
	mkpipe(e, 0, 0);
	CHECK_ERR(rp_read(e[0], &c, 1), EINTR);
	CHECK(nsig == 1);
	CHECK(rp_now_ms() - t0 >= 100);
	rp_wait_ok(pid);
}

/* A blocked read gets SIGUSR1 `times` times, 150 ms apart, then data: it
 * must return the data, its handler having run each time. */
static void read_gets_data_after_signals(int times)
{
	rp_end *e[2];
	char buf[8];
	mkpipe(e, 0, 0);
	pid_t parent = getpid(), pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < times; i++) {
			usleep(150 * 1000);
			kill(parent, SIGUSR1);
		}
		usleep(150 * 1000);
		CHECK(rp_write(e[1], "data", 4) == 4);
		_exit(0);
	}
	CHECK(rp_read(e[0], buf, sizeof buf) == 4);
	CHECK(memcmp(buf, "data", 4) == 0);
	CHECK(nsig == times);
	rp_wait_ok(pid);
}

TEST(blocked_read_restarts_with_sa_restart)
{
	rp_alarm(5);
	catch_signal(SIGUSR1, SA_RESTART);
	read_gets_data_after_signals(1);
}

/* Handlers that disagree about SA_RESTART: the sleep cannot ask which one
 * ran, so it blocks the SA_RESTART signals while it polls (sleep.c).  A
 * signal whose handler has SA_RESTART restarts the call ... */
TEST(blocked_read_restarts_on_sa_restart_signal_beside_handler_without)
{
	rp_alarm(5);
	catch_signal(SIGUSR2, 0);
	catch_signal(SIGUSR1, SA_RESTART);
	read_gets_data_after_signals(1);
}

/* ... and one whose handler has not ends it with EINTR. */
TEST(blocked_read_eintr_on_handler_without_sa_restart_beside_one_with)
{
	rp_end *e[2];
	char c;
	rp_alarm(5);
	catch_signal(SIGUSR1, SA_RESTART);
	catch_signal(SIGUSR2, 0);
	pid_t pid = signal_after(SIGUSR2, 200);
	mkpipe(e, 0, 0);
	CHECK_ERR(rp_read(e[0], &c, 1), EINTR);
	CHECK(nsig == 1);
	rp_wait_ok(pid);
}

/* A crash handler without SA_RESTART (as Python's faulthandler or a sanitizer
 * installs for SIGSEGV) does not turn a restart into EINTR: a fault cannot
 * come while the call sleeps. */
TEST(blocked_read_restarts_beside_a_crash_handler)
{
	rp_alarm(5);
	catch_signal(SIGSEGV, 0);
	catch_signal(SIGUSR1, SA_RESTART);
	read_gets_data_after_signals(1);
}

/* A one-shot handler without SA_RESTART (System V's signal()) is gone by the
 * time the call looks: EINTR, as read(2) gives. */
TEST(blocked_read_eintr_after_one_shot_handler)
{
	rp_end *e[2];
	char c;
	rp_alarm(5);
	catch_signal(SIGUSR1, SA_RESETHAND);
	pid_t pid = signal_after(SIGUSR1, 200);
	mkpipe(e, 0, 0);
	CHECK_ERR(rp_read(e[0], &c, 1), EINTR);
	CHECK(nsig == 1);
	struct sigaction now;
	CHECK(sigaction(SIGUSR1, NULL, &now) == 0 && now.sa_handler == SIG_DFL);
	rp_wait_ok(pid);
}

/* A handler with SA_RESTART for one signal and SIG_IGN or the default for
 * the others: restarted, as read(2) would be. */
TEST(blocked_read_restarts_when_other_signals_have_no_handler)
{
	rp_alarm(5);
	signal(SIGUSR2, SIG_IGN);
	catch_signal(SIGUSR1, SA_RESTART);
	read_gets_data_after_signals(2);
}

TEST(blocked_write_eintr_before_any_byte)
{
	static unsigned char buf[4096];
	rp_end *e[2];
	rp_alarm(5);
	catch_signal(SIGUSR1, 0);
	pid_t pid = signal_after(SIGUSR1, 300);
	mkpipe(e, 0, 4096);
	CHECK(rp_write(e[1], buf, sizeof buf) == sizeof buf);
	CHECK_ERR(rp_write(e[1], "x", 1), EINTR);
	CHECK(nsig == 1);
	CHECK(rp_nread(e[0]) == 4096);
	rp_wait_ok(pid);
}

/* A write larger than the ring, nobody reading: a handler installed with
 * `flags` ends it with the count so far.  `named`: through a named pipe,
 * whose token pipes are FIFOs opened by path. */
static void partial_count_after_handler(int flags, bool named)
{
	static unsigned char buf[10000];
	char dir[32] = "/tmp/rp_signal_XXXXXX", path[64];
	rp_end *e[2];
	rp_alarm(5);
	catch_signal(SIGUSR1, flags);
	pid_t pid = signal_after(SIGUSR1, 300);
	if (named) {
		CHECK(mkdtemp(dir) != NULL);
		snprintf(path, sizeof path, "%s/p", dir);
		CHECK(rp_mkfifo(path, 0600, 4096) == 0);
		CHECK((e[0] = rp_open(path, O_RDONLY | O_NONBLOCK)) != NULL);
		CHECK((e[1] = rp_open(path, O_WRONLY)) != NULL);
	} else {
		mkpipe(e, 0, 4096);
	}
	ssize_t n = rp_write(e[1], buf, sizeof buf);
	CHECK(nsig == 1);
	CHECK(n > 0 && n < (ssize_t)sizeof buf);
	CHECK(rp_nread(e[0]) == n);
	rp_wait_ok(pid);
	if (named) {
		CHECK(rp_unlink(path) == 0);
		CHECK(rmdir(dir) == 0);
	}
}

TEST(blocked_write_interrupted_returns_partial_count)
{
	partial_count_after_handler(0, false);
}

/* A write that has moved bytes is not restarted: a kernel pipe returns the
 * count whatever the handler's flags. */
TEST(blocked_write_with_sa_restart_returns_partial_count)
{
	partial_count_after_handler(SA_RESTART, false);
}

TEST(blocked_write_to_named_pipe_with_sa_restart_returns_partial_count)
{
	partial_count_after_handler(SA_RESTART, true);
}

TEST(blocked_write_restarts_with_sa_restart)
{
	static unsigned char buf[4096];
	rp_end *e[2];
	rp_alarm(5);
	catch_signal(SIGUSR1, SA_RESTART);
	mkpipe(e, 0, 4096);
	CHECK(rp_write(e[1], buf, sizeof buf) == sizeof buf);
	pid_t parent = getpid(), pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		usleep(200 * 1000);
		kill(parent, SIGUSR1);
		usleep(300 * 1000);
		CHECK(rp_read(e[0], buf, sizeof buf) == sizeof buf);
		_exit(0);
	}
	CHECK(rp_write(e[1], buf, 100) == 100);
	CHECK(nsig == 1);
	rp_wait_ok(pid);
}

TEST(sigpipe_kills_writer_without_reader)
{
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_close(e[0]) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		rp_write(e[1], "x", 1);
		_exit(3); /* survived */
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE);
}

TEST(write_without_reader_epipe_when_sigpipe_ignored)
{
	rp_end *e[2];
	struct iovec iov = { "y", 1 };
	signal(SIGPIPE, SIG_IGN);
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_close(e[0]) == 0);
	CHECK_ERR(rp_write(e[1], "x", 1), EPIPE);
	CHECK_ERR(rp_write(e[1], "x", 1), EPIPE); /* every later write too */
	CHECK_ERR(rp_writev(e[1], &iov, 1), EPIPE);
}

TEST(sigpipe_handler_runs_once_per_write)
{
	rp_end *e[2];
	catch_signal(SIGPIPE, 0);
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_close(e[0]) == 0);
	CHECK_ERR(rp_write(e[1], "x", 1), EPIPE);
	CHECK(nsig == 1);
	CHECK_ERR(rp_write(e[1], "x", 1), EPIPE);
	CHECK(nsig == 2);
}

/* A blocked SIGPIPE is left pending for the thread, and the write gives EPIPE. */
TEST(sigpipe_blocked_stays_pending)
{
	rp_end *e[2];
	sigset_t set, pending;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_close(e[0]) == 0);
	CHECK_ERR(rp_write(e[1], "x", 1), EPIPE);
	CHECK(sigpending(&pending) == 0);
	CHECK(sigismember(&pending, SIGPIPE) == 1);
}

TEST(zero_length_write_without_reader_no_sigpipe)
{
	rp_end *e[2];
	catch_signal(SIGPIPE, 0);
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_close(e[0]) == 0);
	CHECK(rp_write(e[1], "x", 0) == 0);
	CHECK(nsig == 0);
}

TEST(blocked_writer_gets_epipe_when_reader_dies)
{
	static unsigned char buf[4096];
	rp_end *e[2];
	rp_alarm(5);
	catch_signal(SIGPIPE, 0);
	mkpipe(e, 0, 4096);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(rp_close(e[1]) == 0);
		usleep(300 * 1000);
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	CHECK(rp_close(e[0]) == 0);
	CHECK(rp_write(e[1], buf, sizeof buf) == sizeof buf);
	double t0 = rp_now_ms();
	CHECK_ERR(rp_write(e[1], "x", 1), EPIPE);
	CHECK(rp_now_ms() - t0 >= 100);
	CHECK(nsig == 1);
	CHECK(waitpid(pid, NULL, 0) == pid);
}

TEST(blocked_writer_returns_partial_count_when_reader_dies)
{
	static unsigned char buf[10000];
	rp_end *e[2];
	rp_alarm(5);
	catch_signal(SIGPIPE, 0);
	mkpipe(e, 0, 4096);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(rp_close(e[1]) == 0);
		usleep(300 * 1000);
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	CHECK(rp_close(e[0]) == 0);
	ssize_t n = rp_write(e[1], buf, sizeof buf);
	CHECK(n > 0 && n < (ssize_t)sizeof buf);
	CHECK(nsig == 1);
	CHECK(waitpid(pid, NULL, 0) == pid);
}
