/*
 * test_fork.c - pipe ends across fork(): reference counting of ends held by
 * several processes, EOF/EPIPE when the last copy goes (by close or by exit,
 * zombies included), and no lost wakeup when the last peer closes while the
 * other side is blocked in rp_write or in poll() on rp_fileno().
 *
 * Every case forks real processes.  Children set PR_SET_PDEATHSIG and their
 * own alarm so a failing parent never leaves a process behind.
 */
#include "harness.h"
#include <ringpipe.h>
#include "procs.h"

#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#define UNUSED __attribute__((unused))

/* ---------------------------------------------------------------- helpers */

/* Block until `pid` has exited, without reaping it: it stays a zombie. */
static UNUSED void wait_zombie(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0);
	CHECK(si.si_pid == pid);
}

/* True when `pid` has exited but has not been reaped yet. */
static UNUSED int is_zombie(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return 0;
	return si.si_pid == pid;
}

/* True when `pid` is still running (not exited). */
static UNUSED int is_running(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return 0;
	return si.si_pid == 0;
}

static UNUSED void wait_flag(_Atomic int *flag)
{
	while (!atomic_load(flag))
		sleep_ms(1);
}

/* Fill a writer end completely; returns the number of bytes written. */
static UNUSED size_t fill_pipe(rp_end *w)
{
	size_t cap = rp_capacity(w);
	CHECK(cap >= RP_MIN_CAPACITY);
	char *buf = malloc(cap);
	CHECK(buf != NULL);
	memset(buf, 'f', cap);
	size_t done = 0;
	while (done < cap) {
		ssize_t r = rp_write(w, buf + done, cap - done);
		CHECK(r > 0);
		done += (size_t)r;
	}
	free(buf);
	return done;
}

/* ------------------------------------------------------------------ cases */

/*
 * The child holds a forked copy of the write end and never closes it
 * explicitly.  After the parent closes its own copy, the reader still blocks;
 * EOF comes only once the child has exited (and before it is reaped).
 */
TEST(eof_only_after_every_forked_writer_copy_closed)
{
	rp_alarm(20);
	struct { _Atomic int ready; double t_exit; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		atomic_store(&sh->ready, 1);
		sleep_ms(400);
		sh->t_exit = rp_now_ms();
		_exit(0); /* the exit is the only close of the child's copy */
	}
	CHECK(rp_close(e[1]) == 0);
	wait_flag(&sh->ready);

	/* A writer copy is still open in the child: no EOF. */
	char c;
	CHECK(rp_set_nonblock(e[0], 1) == 0);
	CHECK_ERR(rp_read(e[0], &c, 1), EAGAIN);
	CHECK(rp_set_nonblock(e[0], 0) == 0);

	double t0 = rp_now_ms();
	ssize_t r = rp_read(e[0], &c, 1);
	double t1 = rp_now_ms();
	CHECK(r == 0);
	/* The read began before the child exited, and ended after: it blocked. */
	CHECK(sh->t_exit > 0 && t0 < sh->t_exit);
	CHECK(t1 - sh->t_exit < rp_ms(100));   /* and woke promptly */
	/* Not reaped yet (the exiting child may still be between closing its
	 * files and becoming a zombie, so wait for that without reaping). */
	wait_zombie(pid);
	rp_wait_ok(pid);
	CHECK(rp_close(e[0]) == 0);
}

/* A live child that rp_close()s its copy of the last writer gives EOF at once. */
TEST(eof_when_live_child_closes_last_writer_copy)
{
	rp_alarm(20);
	struct { _Atomic int ready; _Atomic int done; double t_close; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		atomic_store(&sh->ready, 1);
		sleep_ms(300);
		sh->t_close = rp_now_ms();
		CHECK(rp_close(e[1]) == 0);
		wait_flag(&sh->done); /* stay alive until the parent has seen EOF */
		_exit(0);
	}
	CHECK(rp_close(e[1]) == 0);
	wait_flag(&sh->ready);
	char c;
	ssize_t r = rp_read(e[0], &c, 1);
	double t1 = rp_now_ms();
	CHECK(r == 0);
	CHECK(sh->t_close > 0);
	CHECK(t1 - sh->t_close < rp_ms(100));
	CHECK(is_running(pid)); /* EOF came from the close, not from an exit */
	atomic_store(&sh->done, 1);
	rp_wait_ok(pid);
	CHECK(rp_close(e[0]) == 0);
}

/* Data written by a child that then exits is still delivered, then EOF. */
TEST(data_from_exited_child_delivered_before_eof)
{
	rp_alarm(20);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		CHECK(rp_write(e[1], "last words", 10) == 10);
		_exit(0);
	}
	CHECK(rp_close(e[1]) == 0);
	wait_zombie(pid);
	char buf[32];
	CHECK(rp_read(e[0], buf, sizeof buf) == 10);
	CHECK(memcmp(buf, "last words", 10) == 0);
	CHECK(rp_read(e[0], buf, sizeof buf) == 0);
	rp_wait_ok(pid);
	CHECK(rp_close(e[0]) == 0);
}

/* An exited, not yet reaped child holds no ends: the reader sees EOF. */
TEST(zombie_writer_holds_no_end_reader_sees_eof)
{
	rp_alarm(20);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		_exit(0);
	}
	CHECK(rp_close(e[1]) == 0);
	wait_zombie(pid);
	CHECK(is_zombie(pid));

	char c;
	CHECK(rp_set_nonblock(e[0], 1) == 0);
	CHECK(rp_read(e[0], &c, 1) == 0); /* EOF, not EAGAIN */
	CHECK(rp_set_nonblock(e[0], 0) == 0);
	CHECK(rp_read(e[0], &c, 1) == 0); /* blocking read: EOF at once */
	CHECK(is_zombie(pid));            /* still not reaped */
	rp_wait_ok(pid);
	CHECK(rp_close(e[0]) == 0);
}

/* An exited, not yet reaped child that held the only reader: EPIPE. */
TEST(zombie_reader_holds_no_end_writer_gets_epipe)
{
	rp_alarm(20);
	signal(SIGPIPE, SIG_IGN);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[1]) == 0);
		_exit(0);
	}
	CHECK(rp_close(e[0]) == 0);
	wait_zombie(pid);
	CHECK_ERR(rp_write(e[1], "x", 1), EPIPE);
	CHECK(is_zombie(pid));
	rp_wait_ok(pid);
	CHECK(rp_close(e[1]) == 0);
}

/* The only reader is in a child; the parent blocks writing into a full pipe;
 * the child exits without reading: the write fails with EPIPE promptly. */
TEST(blocked_writer_gets_epipe_when_child_reader_exits)
{
	rp_alarm(20);
	signal(SIGPIPE, SIG_IGN);
	struct { _Atomic int ready; double t_exit; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 4096) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[1]) == 0);
		atomic_store(&sh->ready, 1);
		sleep_ms(300);
		sh->t_exit = rp_now_ms();
		_exit(0);
	}
	CHECK(rp_close(e[0]) == 0);
	wait_flag(&sh->ready);
	fill_pipe(e[1]);
	double t0 = rp_now_ms();
	CHECK_ERR(rp_write(e[1], "x", 1), EPIPE);
	double t1 = rp_now_ms();
	CHECK(sh->t_exit > 0 && t0 < sh->t_exit);   /* it blocked until the reader died */
	CHECK(t1 - sh->t_exit < rp_ms(100));
	wait_zombie(pid);
	rp_wait_ok(pid);
	CHECK(rp_close(e[1]) == 0);
}

/* With SIGPIPE at its default, writing to a widowed pipe kills the writer. */
TEST(sigpipe_kills_writer_when_readers_gone)
{
	rp_alarm(20);
	struct { _Atomic int go; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		CHECK(rp_close(e[0]) == 0);
		wait_flag(&sh->go);
		rp_write(e[1], "x", 1);
		_exit(3); /* not reached when SIGPIPE is raised */
	}
	CHECK(rp_close(e[0]) == 0);
	CHECK(rp_close(e[1]) == 0);
	atomic_store(&sh->go, 1);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st));
	CHECK(WTERMSIG(st) == SIGPIPE);
}

/*
 * Lost wakeup on last reader close: a writer (child) blocks on a full ring;
 * the last reader (parent, which stays alive) rp_close()s its end.  The
 * writer must wake with EPIPE within 100 ms.
 */
TEST(last_reader_close_wakes_blocked_writer_with_epipe)
{
	rp_alarm(20);
	struct { _Atomic int ready; double t_ret; long res; int err; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 4096) == 0);
	size_t cap = rp_capacity(e[0]);
	pid_t pid = fork_child();
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		CHECK(rp_close(e[0]) == 0);
		fill_pipe(e[1]);
		atomic_store(&sh->ready, 1);
		errno = 0;
		sh->res = (long)rp_write(e[1], "x", 1);
		sh->err = errno;
		sh->t_ret = rp_now_ms();
		_exit(0);
	}
	CHECK(rp_close(e[1]) == 0);
	wait_flag(&sh->ready);
	while (rp_nread(e[0]) != (ssize_t)cap)
		sleep_ms(1);
	sleep_ms(150); /* let the writer go to sleep */
	CHECK(sh->t_ret == 0); /* still blocked */
	double t_close = rp_now_ms();
	CHECK(rp_close(e[0]) == 0);
	rp_wait_ok(pid);
	CHECK(sh->res == -1);
	CHECK(sh->err == EPIPE);
	CHECK(sh->t_ret >= t_close);
	CHECK(sh->t_ret - t_close < rp_ms(100));
}

/*
 * The same, racing: the reader closes at varying moments around the instant
 * the writer goes to sleep.  Every round must end with EPIPE within 100 ms.
 */
TEST(last_reader_close_race_no_lost_wakeup)
{
	rp_alarm(20);
	struct { _Atomic int ready; double t_ret; long res; int err; } *sh = shared_mem(sizeof *sh);
	for (int round = 0; round < 150; round++) {
		memset((void *)sh, 0, sizeof *sh);
		rp_end *e[2];
		CHECK(rp_pipe2(e, 0, 4096) == 0);
		size_t cap = rp_capacity(e[0]);
		pid_t pid = fork_child();
		if (pid == 0) {
			signal(SIGPIPE, SIG_IGN);
			CHECK(rp_close(e[0]) == 0);
			fill_pipe(e[1]);
			atomic_store(&sh->ready, 1);
			errno = 0;
			sh->res = (long)rp_write(e[1], "x", 1);
			sh->err = errno;
			sh->t_ret = rp_now_ms();
			_exit(0);
		}
		CHECK(rp_close(e[1]) == 0);
		while (!atomic_load(&sh->ready) || rp_nread(e[0]) != (ssize_t)cap)
			sched_yield();
		/* spin for 0..~300 us, different each round */
		double until = rp_now_ms() + (round % 30) * 0.01;
		while (rp_now_ms() < until)
			;
		double t_close = rp_now_ms();
		CHECK(rp_close(e[0]) == 0);
		rp_wait_ok(pid);
		if (sh->res != -1 || sh->err != EPIPE || sh->t_ret - t_close >= rp_ms(100)) {
			fprintf(stderr, "round %d: res=%ld err=%d woke after %.1f ms\n",
				round, sh->res, sh->err, sh->t_ret - t_close);
			CHECK(0);
		}
	}
}

/*
 * Lost wakeup for pollers: a nonblocking writer (child) fills the ring, then
 * waits in poll(POLLOUT) on rp_fileno().  The last reader (parent, alive)
 * closes: poll must return POLLERR within 100 ms and the next write EPIPE.
 */
TEST(last_reader_close_wakes_writer_poll_with_pollerr)
{
	rp_alarm(20);
	struct {
		_Atomic int ready;
		double t_ret;
		int pr, revents, werr;
		long wres;
	} *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 4096) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		CHECK(rp_close(e[0]) == 0);
		CHECK(rp_set_nonblock(e[1], 1) == 0);
		char buf[1024];
		memset(buf, 'p', sizeof buf);
		for (;;) {
			ssize_t r = rp_write(e[1], buf, sizeof buf);
			if (r < 0) {
				CHECK(errno == EAGAIN);
				break;
			}
		}
		CHECK_ERR(rp_write(e[1], "x", 1), EAGAIN);
		int fd = rp_fileno(e[1]);
		CHECK(fd >= 0);
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		CHECK(poll(&pfd, 1, 0) == 0); /* full: not writable */
		atomic_store(&sh->ready, 1);
		pfd.revents = 0;
		sh->pr = poll(&pfd, 1, 5000);
		sh->t_ret = rp_now_ms();
		sh->revents = pfd.revents;
		errno = 0;
		sh->wres = (long)rp_write(e[1], "x", 1);
		sh->werr = errno;
		_exit(0);
	}
	CHECK(rp_close(e[1]) == 0);
	wait_flag(&sh->ready);
	sleep_ms(150); /* let the child enter poll() */
	CHECK(sh->t_ret == 0);
	double t_close = rp_now_ms();
	CHECK(rp_close(e[0]) == 0);
	rp_wait_ok(pid);
	CHECK(sh->pr == 1);
	CHECK(sh->revents & POLLERR);
	CHECK(sh->t_ret - t_close < rp_ms(100));
	CHECK(sh->wres == -1);
	CHECK(sh->werr == EPIPE);
}

/* The mirror image: a reader (child) in poll(POLLIN) on an empty pipe; the
 * last writer (parent, alive) closes: POLLHUP within 100 ms, then EOF. */
TEST(last_writer_close_wakes_reader_poll_with_pollhup)
{
	rp_alarm(20);
	struct {
		_Atomic int ready;
		double t_ret;
		int pr, revents;
		long rres;
	} *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[1]) == 0);
		CHECK(rp_set_nonblock(e[0], 1) == 0);
		char c;
		CHECK_ERR(rp_read(e[0], &c, 1), EAGAIN);
		int fd = rp_fileno(e[0]);
		CHECK(fd >= 0);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		CHECK(poll(&pfd, 1, 0) == 0);
		atomic_store(&sh->ready, 1);
		pfd.revents = 0;
		sh->pr = poll(&pfd, 1, 5000);
		sh->t_ret = rp_now_ms();
		sh->revents = pfd.revents;
		sh->rres = (long)rp_read(e[0], &c, 1);
		_exit(0);
	}
	CHECK(rp_close(e[0]) == 0);
	wait_flag(&sh->ready);
	sleep_ms(150);
	CHECK(sh->t_ret == 0);
	double t_close = rp_now_ms();
	CHECK(rp_close(e[1]) == 0);
	rp_wait_ok(pid);
	CHECK(sh->pr == 1);
	CHECK(sh->revents & POLLHUP);
	CHECK(sh->t_ret - t_close < rp_ms(100));
	CHECK(sh->rres == 0);
}

/* LTP pipe09: two writer children, 50 one-byte writes each; the parent
 * (after closing its own copy) reads to EOF and gets exactly 50 + 50. */
TEST(two_forked_writers_all_bytes_then_eof)
{
	rp_alarm(20);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pids[2];
	for (int k = 0; k < 2; k++) {
		pids[k] = fork_child();
		if (pids[k] == 0) {
			CHECK(rp_close(e[0]) == 0);
			char ch = k ? 'B' : 'A';
			for (int i = 0; i < 50; i++) {
				CHECK(rp_write(e[1], &ch, 1) == 1);
				if (i % 10 == 0)
					sleep_ms(2);
			}
			_exit(0);
		}
	}
	CHECK(rp_close(e[1]) == 0);
	int na = 0, nb = 0;
	char buf[64];
	ssize_t r;
	while ((r = rp_read(e[0], buf, sizeof buf)) > 0) {
		for (ssize_t i = 0; i < r; i++) {
			CHECK(buf[i] == 'A' || buf[i] == 'B');
			if (buf[i] == 'A')
				na++;
			else
				nb++;
		}
	}
	CHECK(r == 0);
	CHECK(na == 50);
	CHECK(nb == 50);
	rp_wait_ok(pids[0]);
	rp_wait_ok(pids[1]);
	CHECK(rp_close(e[0]) == 0);
}

/* A forked child reading through its inherited copy consumes the bytes:
 * the parent's copy of the read end does not see them again. */
TEST(forked_reader_copy_consumes_bytes_once)
{
	rp_alarm(20);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_write(e[1], "0123456789", 10) == 10);
	pid_t pid = fork_child();
	if (pid == 0) {
		char buf[4];
		CHECK(rp_read(e[0], buf, 4) == 4);
		CHECK(memcmp(buf, "0123", 4) == 0);
		_exit(0);
	}
	rp_wait_ok(pid);
	CHECK(rp_nread(e[0]) == 6);
	char buf[16];
	CHECK(rp_read(e[0], buf, sizeof buf) == 6);
	CHECK(memcmp(buf, "456789", 6) == 0);
	CHECK(rp_close(e[1]) == 0);
	CHECK(rp_read(e[0], buf, sizeof buf) == 0);
	CHECK(rp_close(e[0]) == 0);
}

/* LTP pipe13: N children blocked reading an empty pipe; the last writer
 * closes: every one of them wakes with EOF (not just one). */
TEST(last_writer_close_wakes_all_blocked_readers)
{
	rp_alarm(20);
	enum { N = 10 };
	struct { _Atomic int ready; double t_ret[N]; long res[N]; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork_child();
		if (pids[i] == 0) {
			CHECK(rp_close(e[1]) == 0);
			atomic_fetch_add(&sh->ready, 1);
			char c;
			sh->res[i] = (long)rp_read(e[0], &c, 1);
			sh->t_ret[i] = rp_now_ms();
			_exit(0);
		}
	}
	CHECK(rp_close(e[0]) == 0);
	while (atomic_load(&sh->ready) < N)
		sleep_ms(1);
	sleep_ms(200); /* let them all go to sleep */
	double t_close = rp_now_ms();
	CHECK(rp_close(e[1]) == 0);
	for (int i = 0; i < N; i++)
		rp_wait_ok(pids[i]);
	for (int i = 0; i < N; i++) {
		CHECK(sh->res[i] == 0);
		CHECK(sh->t_ret[i] - t_close < rp_ms(100));
	}
}

/* N writers (children) blocked on a full ring; the last reader closes:
 * every one of them wakes with EPIPE. */
TEST(last_reader_close_wakes_all_blocked_writers)
{
	rp_alarm(20);
	enum { N = 8 };
	struct { _Atomic int ready; double t_ret[N]; long res[N]; int err[N]; } *sh =
		shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 4096) == 0);
	size_t cap = rp_capacity(e[0]);
	fill_pipe(e[1]);
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork_child();
		if (pids[i] == 0) {
			signal(SIGPIPE, SIG_IGN);
			CHECK(rp_close(e[0]) == 0);
			atomic_fetch_add(&sh->ready, 1);
			errno = 0;
			sh->res[i] = (long)rp_write(e[1], "x", 1);
			sh->err[i] = errno;
			sh->t_ret[i] = rp_now_ms();
			_exit(0);
		}
	}
	CHECK(rp_close(e[1]) == 0);
	while (atomic_load(&sh->ready) < N)
		sleep_ms(1);
	sleep_ms(200);
	CHECK(rp_nread(e[0]) == (ssize_t)cap); /* none of them got in */
	double t_close = rp_now_ms();
	CHECK(rp_close(e[0]) == 0);
	for (int i = 0; i < N; i++)
		rp_wait_ok(pids[i]);
	for (int i = 0; i < N; i++) {
		CHECK(sh->res[i] == -1);
		CHECK(sh->err[i] == EPIPE);
		CHECK(sh->t_ret[i] - t_close < rp_ms(100));
	}
}

/* Freeing room wakes a blocked writer in another process (no lost wakeup
 * on the write side): a child blocked on a full ring completes as soon as
 * the parent reads. */
TEST(read_in_parent_wakes_writer_blocked_in_child)
{
	rp_alarm(20);
	struct { _Atomic int ready; double t_ret; long res; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 4096) == 0);
	size_t cap = rp_capacity(e[0]);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		fill_pipe(e[1]);
		atomic_store(&sh->ready, 1);
		sh->res = (long)rp_write(e[1], "z", 1);
		sh->t_ret = rp_now_ms();
		_exit(0);
	}
	CHECK(rp_close(e[1]) == 0);
	wait_flag(&sh->ready);
	while (rp_nread(e[0]) != (ssize_t)cap)
		sleep_ms(1);
	sleep_ms(150);
	CHECK(sh->t_ret == 0);
	char buf[16];
	double t_read = rp_now_ms();
	CHECK(rp_read(e[0], buf, 1) == 1);
	rp_wait_ok(pid);
	CHECK(sh->res == 1);
	CHECK(sh->t_ret - t_read < rp_ms(100));
	CHECK(rp_close(e[0]) == 0);
}

/* O_NONBLOCK is a property of the open end shared by its forked copies,
 * as for a descriptor's open file description (N1, LTP pipe2_04): a child
 * that sets it on its copy sets it for the parent's copy, and clears it. */
TEST(nonblock_flag_shared_with_forked_copy)
{
	rp_alarm(20);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_set_nonblock(e[0], 1) == 0);
		_exit(0);
	}
	rp_wait_ok(pid);
	char c;
	CHECK_ERR(rp_read(e[0], &c, 1), EAGAIN); /* would block forever otherwise */
	pid = fork_child();
	if (pid == 0) {
		CHECK(rp_set_nonblock(e[0], 0) == 0);
		_exit(0);
	}
	rp_wait_ok(pid);
	pid = fork_child();
	if (pid == 0) {
		sleep_ms(200);
		CHECK(rp_write(e[1], "w", 1) == 1);
		_exit(0);
	}
	double t0 = rp_now_ms();
	CHECK(rp_read(e[0], &c, 1) == 1); /* blocking again: waits for the child */
	CHECK(rp_now_ms() - t0 >= 150);
	rp_wait_ok(pid);
	CHECK(rp_close(e[0]) == 0);
	CHECK(rp_close(e[1]) == 0);
}

/* A grandchild holds the last forked copy of the writer after its parent
 * (the child) exits: still no EOF until the grandchild is gone. */
TEST(eof_waits_for_grandchild_writer_copy)
{
	rp_alarm(20);
	struct { _Atomic int go; _Atomic pid_t gc; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		pid_t gc = fork();
		CHECK(gc >= 0);
		if (gc == 0) {
			rp_alarm(30);
			wait_flag(&sh->go);
			CHECK(rp_write(e[1], "g", 1) == 1);
			_exit(0);
		}
		atomic_store(&sh->gc, gc);
		_exit(0); /* the child's copy goes; the grandchild's stays */
	}
	CHECK(rp_close(e[1]) == 0);
	rp_wait_ok(pid);
	while (atomic_load(&sh->gc) == 0)
		sleep_ms(1);
	char c;
	CHECK(rp_set_nonblock(e[0], 1) == 0);
	CHECK_ERR(rp_read(e[0], &c, 1), EAGAIN);
	CHECK(rp_set_nonblock(e[0], 0) == 0);
	atomic_store(&sh->go, 1);
	CHECK(rp_read(e[0], &c, 1) == 1);
	CHECK(c == 'g');
	CHECK(rp_read(e[0], &c, 1) == 0); /* the grandchild exited (reparented, reaped by init) */
	CHECK(rp_close(e[0]) == 0);
}
