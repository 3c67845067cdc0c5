/*
 * test_deadwaker.c - a peer killed between publishing and waking.
 *
 * A reader that makes room, or a writer that adds data, publishes the new
 * index first and drops the sleepers' token second.  Killed in between, it
 * leaves the other side asleep with its wait already over.  These cases
 * play that dead peer by writing the index straight into the /dev/shm ring
 * of a named pipe, with no token (and, *_after_marking_*, with the
 * sleepers marked as served), while a child sleeps, and require the
 * sleeper to get going as soon as a live peer on the other side comes by
 * and finds nothing to do (wait.c), and, when nobody comes, to look again
 * by itself within its recheck interval (at most 100 ms, in rp_read,
 * rp_write and rp_poll alike).
 */
#include "harness.h"
#include "shmfile.h"
#include "procs.h"
#include "frame.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "die_at_syscall() needs this architecture's AUDIT_ARCH"
#endif

#define CAP        4096
#define RECOVER_MS 400.0        /* the longest recheck interval (100 ms), with slack */
#define NUDGE_MS   400.0

/* A named pipe of CAP bytes with a blocking reader and writer open, and
 * a child blocked on it; `done` is when the child's call returned. */
struct scene {
	struct hp h;
	rp_end *r, *w;
	double *done;
	pid_t pid;
};

/* recheck: whether sleepers may look at the ring by themselves.  The cases
 * of a live peer coming by forbid it, or the sleeper's own look (within
 * 100 ms) could hide a missing nudge. */
static void open_pair(struct scene *s, bool recheck)
{
	rp_alarm(30);
	if (!recheck)
		setenv("RINGPIPE_RECHECK_MS", "0", 1);
	hp_make(&s->h, CAP);
	s->r = rp_open(s->h.path, O_RDONLY | O_NONBLOCK);
	CHECK(s->r != NULL);
	s->w = rp_open(s->h.path, O_WRONLY);
	CHECK(s->w != NULL);
	CHECK(rp_set_nonblock(s->r, 0) == 0);
	s->done = shared_mem(sizeof(double));
}

/* Let the child sleep for `ms`, then act as the dead peer would have.  It
 * must be asleep in the kernel by then: a child slow to get there (under
 * valgrind) would find the dead peer's work done and never sleep. */
static double asleep_then(struct scene *s, double ms)
{
	sleep_ms(ms);
	wait_sleeping(s->pid);
	CHECK(*s->done == 0);             /* really blocked */
	return rp_now_ms();
}

static void reap(struct scene *s)
{
	rp_wait_ok(s->pid);
	s->pid = 0;
}

static void scene_end(struct scene *s)
{
	if (s->pid)
		reap(s);
	rp_close(s->r);
	rp_close(s->w);
	hp_clean(&s->h);
}

/* As a reader that consumed everything and died before its token. */
static void dead_reader_consumes_all(struct hp *h)
{
	poke64(h->shm, OFF(tail), peek64(h->shm, OFF(head)));
}

/* As a writer that copied `n` bytes in and died after publishing them. */
static void dead_writer_publishes(struct hp *h, const void *data, size_t n)
{
	uint64_t head = peek64(h->shm, OFF(head));
	size_t off = (size_t)(head % CAP);
	CHECK(off + n <= CAP);
	poke(h->shm, RP_HDR_SIZE + off, data, n);
	poke64(h->shm, OFF(head), head + n);
}

/* Fill the ring, then fork a writer that blocks for room with 100 more
 * bytes. */
static void blocked_writer(struct scene *s, bool recheck)
{
	open_pair(s, recheck);
	static char full[CAP];
	memset(full, 'f', sizeof full);
	CHECK(rp_write(s->w, full, sizeof full) == (ssize_t)sizeof full);
	if ((s->pid = fork_child()) == 0) {
		rp_close(s->r);
		char more[100];
		memset(more, 'm', sizeof more);
		CHECK(rp_write(s->w, more, sizeof more) == (ssize_t)sizeof more);
		*s->done = rp_now_ms();
		_exit(0);
	}
}

/* Fork a reader that blocks on the empty ring, then checks it got `want`
 * (n bytes). */
static void blocked_reader(struct scene *s, const char *want, size_t n,
			   bool recheck)
{
	open_pair(s, recheck);
	if ((s->pid = fork_child()) == 0) {
		rp_close(s->w);
		char buf[CAP];
		ssize_t got = rp_read(s->r, buf, sizeof buf);
		*s->done = rp_now_ms();
		CHECK(got >= (ssize_t)n && memcmp(buf, want, n) == 0);
		_exit(0);
	}
}

static void check_within(double from, double to, double limit, const char *what)
{
	fprintf(stderr, "%s after %.1f ms (limit %.0f)\n", what, to - from, rp_ms(limit));
	CHECK(to > 0 && to - from < rp_ms(limit));
}

static void read_more(rp_end *r)
{
	char buf[200];
	CHECK(rp_read(r, buf, sizeof buf) == 100 && buf[0] == 'm' && buf[99] == 'm');
}

/* A reader asleep on the empty ring for `ms`, then a writer that fills the
 * ring and dies before its token: the time of its death. */
static double dead_writer_fills_under_reader(struct scene *s, bool recheck,
					     double ms)
{
	static char full[CAP];
	memset(full, 'F', sizeof full);
	blocked_reader(s, full, CAP, recheck);
	double t = asleep_then(s, ms);
	dead_writer_publishes(&s->h, full, CAP);
	return t;
}

/* A writer asleep on the full ring for `ms`, then a reader that empties it
 * and dies before its token: the time of its death. */
static double dead_reader_empties_under_writer(struct scene *s, bool recheck,
					       double ms)
{
	blocked_writer(s, recheck);
	double t = asleep_then(s, ms);
	dead_reader_consumes_all(&s->h);
	return t;
}

/* Wait (a while) for the child's call to return. */
static void wait_done(struct scene *s, double t)
{
	while (*s->done == 0 && rp_now_ms() - t < rp_ms(5000))
		sleep_ms(1);
}

/*
 * marked: the dead peer got further, and marked the sleepers it owed a
 * token (wait.c, owed()), so that the next publishers of its side drop
 * them none, before it died.  The other side's nudge drops a token for
 * every sleeper, marked or not; and without anybody the sleeper looks by
 * itself.
 */
static void dead_peer_marked(struct hp *h, bool writers)
{
	poke32(h->shm, writers ? OFF(wr_rung) : OFF(rd_rung), 0xffffffffu);
}

static void next_blocking_read_wakes_writer(bool marked)
{
	struct scene s;
	double t = dead_reader_empties_under_writer(&s, false, 200);
	if (marked)
		dead_peer_marked(&s.h, true);
	read_more(s.r);
	reap(&s);                         /* its note of the time is in */
	check_within(t, *s.done, NUDGE_MS, "writer done");
	scene_end(&s);
}

TEST(reader_killed_before_token_next_blocking_read_wakes_writer)
{
	next_blocking_read_wakes_writer(false);
}

TEST(reader_killed_after_marking_next_blocking_read_wakes_writer)
{
	next_blocking_read_wakes_writer(true);
}

static void next_nonblocking_read_wakes_writer(bool marked)
{
	struct scene s;
	double t = dead_reader_empties_under_writer(&s, false, 200);
	if (marked)
		dead_peer_marked(&s.h, true);
	CHECK(rp_set_nonblock(s.r, 1) == 0);
	char c;
	CHECK_ERR(rp_read(s.r, &c, 1), EAGAIN);
	wait_done(&s, t);
	check_within(t, *s.done, NUDGE_MS, "writer done");
	read_more(s.r);
	scene_end(&s);
}

TEST(reader_killed_before_token_next_nonblocking_read_wakes_writer)
{
	next_nonblocking_read_wakes_writer(false);
}

TEST(reader_killed_after_marking_next_nonblocking_read_wakes_writer)
{
	next_nonblocking_read_wakes_writer(true);
}

/* The dead reader made room for the sleeping writer's 100 bytes but not for
 * a whole ring; a writer of a whole ring comes by, cannot take that room, and
 * wakes the one that can before it sleeps itself. */
TEST(reader_killed_before_token_bigger_writer_wakes_smaller)
{
	struct scene s;
	blocked_writer(&s, false);
	double t = asleep_then(&s, 200);
	poke64(s.h.shm, OFF(tail), peek64(s.h.shm, OFF(tail)) + 100);
	pid_t big = fork_child();
	if (big == 0) {
		static char whole[CAP];
		rp_close(s.r);
		CHECK(rp_write(s.w, whole, sizeof whole) == (ssize_t)sizeof whole);
		_exit(0);
	}
	wait_done(&s, t);
	check_within(t, *s.done, NUDGE_MS, "smaller writer done");
	static char buf[CAP];
	size_t left = 2 * CAP;                /* the old ring, then the big write */
	while (left) {
		ssize_t n = rp_read(s.r, buf, left < sizeof buf ? left : sizeof buf);
		CHECK(n > 0);
		left -= (size_t)n;
	}
	rp_wait_ok(big);
	scene_end(&s);
}

/* The ring filled by the dead writer: the next writer finds no room, and
 * wakes the reader before it goes to sleep itself. */
static void next_blocked_write_wakes_reader(bool marked)
{
	struct scene s;
	double t = dead_writer_fills_under_reader(&s, false, 200);
	if (marked)
		dead_peer_marked(&s.h, false);
	CHECK(rp_write(s.w, "x", 1) == 1);
	reap(&s);
	check_within(t, *s.done, NUDGE_MS, "reader done");
	char c;
	CHECK(rp_read(s.r, &c, 1) == 1 && c == 'x');
	scene_end(&s);
}

TEST(writer_killed_before_token_next_blocked_write_wakes_reader)
{
	next_blocked_write_wakes_reader(false);
}

TEST(writer_killed_after_marking_next_blocked_write_wakes_reader)
{
	next_blocked_write_wakes_reader(true);
}

/* Nobody comes by: the survivors are idle.  The sleeper looks again by
 * itself within its longest recheck interval (100 ms, sleep.c). */
TEST(writer_killed_before_token_sleeping_reader_recovers_alone)
{
	struct scene s;
	double t = dead_writer_fills_under_reader(&s, true, 300);
	reap(&s);
	check_within(t, *s.done, RECOVER_MS, "reader done");
	scene_end(&s);
}

static void sleeping_writer_recovers_alone(bool marked)
{
	struct scene s;
	double t = dead_reader_empties_under_writer(&s, true, 300);
	if (marked)
		dead_peer_marked(&s.h, true);
	wait_done(&s, t);
	check_within(t, *s.done, RECOVER_MS, "writer done");
	read_more(s.r);
	scene_end(&s);
}

TEST(reader_killed_before_token_sleeping_writer_recovers_alone)
{
	sleeping_writer_recovers_alone(false);
}

TEST(reader_killed_after_marking_sleeping_writer_recovers_alone)
{
	sleeping_writer_recovers_alone(true);
}

/* A setting that is not a decimal number ("0x" starts like 0) is ignored:
 * the default looks remain. */
TEST(malformed_recheck_setting_keeps_the_default)
{
	struct scene s;
	CHECK(setenv("RINGPIPE_RECHECK_MS", "0x", 1) == 0);
	double t = dead_writer_fills_under_reader(&s, true, 300);
	reap(&s);
	check_within(t, *s.done, RECOVER_MS, "reader done");
	scene_end(&s);
}

/* RINGPIPE_RECHECK_MS=0: the tokens alone, as the cases of a live peer
 * coming by need; the sleeper stays asleep until that peer comes. */
TEST(writer_killed_before_token_reader_sleeps_on_with_recheck_off)
{
	struct scene s;
	double t = dead_writer_fills_under_reader(&s, false, 200);
	sleep_ms(500);
	CHECK(*s.done == 0);
	CHECK(rp_write(s.w, "x", 1) == 1);
	reap(&s);
	check_within(t, *s.done, 500 + NUDGE_MS, "reader done");
	scene_end(&s);
}

/* rp_poll with no timeout looks again too. */
TEST(writer_killed_before_token_conn_poll_recovers_alone)
{
	struct scene s;
	open_pair(&s, true);
	if ((s.pid = fork_child()) == 0) {
		rp_close(s.w);
		rp_conn *c = rp_conn_from_ends(s.r, NULL);
		CHECK(c != NULL);
		CHECK(rp_poll(c, -1) == 1);
		*s.done = rp_now_ms();
		char buf[16];
		CHECK(rp_recv(c, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
		_exit(0);
	}
	double t = asleep_then(&s, 200);
	struct {
		struct rp_frame f;
		char payload[5];
	} __attribute__((packed)) msg = {
		{ RP_FRAME_MAGIC | RP_FRAME_FIRST | RP_FRAME_LAST, 5, 5 }, "hello"
	};
	dead_writer_publishes(&s.h, &msg, sizeof msg);
	reap(&s);
	check_within(t, *s.done, RECOVER_MS, "rp_poll returned");
	scene_end(&s);
}

/* Kill this process at its next system call `nr`, before the call runs:
 * the instant a waker drops its token (write(2)) or opens the gate
 * (read(2)), neither of which its data path otherwise makes. */
static void die_at_syscall(long nr)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof f / sizeof f[0]), f };
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
}

/* Reap a child that the filter killed (SIGSYS): it got as far as the call. */
static void reap_killed_at_syscall(pid_t pid)
{
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
}

static short revents(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	CHECK(poll(&p, 1, 0) >= 0);
	return p.revents;
}

/* A poller of the read end (armed by an EAGAIN), and a writer killed as it
 * drops the poller's token.  Data the poller has not been told of must not
 * be left behind, and the next write must still wake the poller. */
TEST(writer_killed_at_poller_token_leaves_no_data_unannounced)
{
	rp_end *e[2];
	char c;
	rp_alarm(30);
	CHECK(rp_pipe2(e, O_NONBLOCK, 0) == 0);
	CHECK_ERR(rp_read(e[0], &c, 1), EAGAIN);        /* arms the bell */
	CHECK(!(revents(rp_fileno(e[0]), POLLIN) & POLLIN));
	pid_t pid = fork_child();
	if (pid == 0) {
		die_at_syscall(SYS_write);
		rp_write(e[1], "x", 1);
		_exit(0);
	}
	reap_killed_at_syscall(pid);
	CHECK(rp_nread(e[0]) == 0 || (revents(rp_fileno(e[0]), POLLIN) & POLLIN));
	/* The dead writer's lock is taken over; the poller is still armed. */
	CHECK(rp_write(e[1], "y", 1) == 1);
	struct pollfd p = { .fd = rp_fileno(e[0]), .events = POLLIN };
	CHECK(poll(&p, 1, (int)rp_ms(5000)) == 1);
	char buf[4];
	CHECK(rp_read(e[0], buf, sizeof buf) == 1 && buf[0] == 'y');
	CHECK(rp_close(e[0]) == 0 && rp_close(e[1]) == 0);
}

/* The mirror: a poller of the write end (the gate shut by an EAGAIN on a
 * full ring), and a reader killed as it opens the gate. */
TEST(reader_killed_at_gate_leaves_no_room_unannounced)
{
	rp_end *e[2];
	rp_alarm(30);
	CHECK(rp_pipe2(e, O_NONBLOCK, CAP) == 0);
	static char full[CAP];
	CHECK(rp_write(e[1], full, CAP) == CAP);
	CHECK_ERR(rp_write(e[1], "z", 1), EAGAIN);     /* shuts the gate */
	CHECK(!(revents(rp_fileno(e[1]), POLLOUT) & POLLOUT));
	pid_t pid = fork_child();
	if (pid == 0) {
		char buf[100];
		die_at_syscall(SYS_read);
		rp_read(e[0], buf, sizeof buf);
		_exit(0);
	}
	reap_killed_at_syscall(pid);
	CHECK(rp_nread(e[0]) == CAP || (revents(rp_fileno(e[1]), POLLOUT) & POLLOUT));
	char buf[100];
	CHECK(rp_read(e[0], buf, sizeof buf) == sizeof buf);
	struct pollfd p = { .fd = rp_fileno(e[1]), .events = POLLOUT };
	CHECK(poll(&p, 1, (int)rp_ms(5000)) == 1);
	CHECK(rp_write(e[1], "z", 1) == 1);
	CHECK(rp_close(e[0]) == 0 && rp_close(e[1]) == 0);
}
