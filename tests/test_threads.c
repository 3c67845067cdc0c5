/*
 * test_threads.c - ends shared by the threads of one process.
 *
 * The other files share ends between processes; here threads of one
 * process call on the same ends at once, so the per-call references and
 * the handle pool are in play.  `make test` runs these under
 * ThreadSanitizer too, where a data race is a failure.
 */
#include "harness.h"
#include <ringpipe.h>
#include "records.h"

#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

extern char **environ;

enum { NWRITERS = 4, NRECS = 2000 };

struct writer { rp_end *w; uint32_t id; pthread_t t; };

static void *write_all(void *p)
{
	struct writer *a = p;
	write_recs(a->w, a->id, 0, NRECS);
	return NULL;
}

/* Wait for the writers, then close the end they shared: EOF. */
static void *close_after(void *p)
{
	struct writer *a = p;
	for (int i = 0; i < NWRITERS; i++)
		CHECK(pthread_join(a[i].t, NULL) == 0);
	CHECK(rp_close(a[0].w) == 0);
	return NULL;
}

/*
 * Four threads write records of up to PIPE_BUF bytes into one write end
 * of a small ring (so they block and wake each other) while the main
 * thread reads to EOF: every record arrives whole, each thread's in order.
 */
TEST(threads_writing_one_end_keep_every_record_whole)
{
	alarm((unsigned)(rp_ms(60000) / 1000));
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 16384) == 0);
	struct writer a[NWRITERS];
	for (uint32_t i = 0; i < NWRITERS; i++) {
		a[i] = (struct writer){ .w = e[1], .id = i };
		CHECK(pthread_create(&a[i].t, NULL, write_all, &a[i]) == 0);
	}
	pthread_t c;
	CHECK(pthread_create(&c, NULL, close_after, a) == 0);
	CHECK(check_recs(e[0], NWRITERS) == NWRITERS * NRECS);
	CHECK(pthread_join(c, NULL) == 0);
	CHECK(rp_close(e[0]) == 0);
}

static atomic_int churn_done;

/* Open and close pipes, so that the handle pool grows and reuses slots. */
static void *churn(void *unused)
{
	(void)unused;
	for (int i = 0; i < 500; i++) {
		rp_end *e[2];
		CHECK(rp_pipe2(e, 0, 4096) == 0);
		CHECK(rp_write(e[1], "p", 1) == 1);
		CHECK(rp_close(e[1]) == 0 && rp_close(e[0]) == 0);
	}
	atomic_store(&churn_done, 1);
	return NULL;
}

/*
 * One thread opens and closes 500 pipes while the main thread streams
 * through a pipe of its own: every call checks its handle against the
 * pool that the other thread grows, and the stream arrives intact (under
 * ThreadSanitizer: with no race between the two).  The main thread yields
 * after each message, or valgrind, which runs one thread at a time and
 * switches at system calls, would starve the other.
 */
TEST(pipes_opened_and_closed_beside_a_busy_pipe)
{
	alarm((unsigned)(rp_ms(60000) / 1000));
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 65536) == 0);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, churn, NULL) == 0);
	uint64_t n = 0;
	while (!atomic_load(&churn_done) || n < 2000) {
		unsigned char out[64], in[64];
		for (size_t i = 0; i < sizeof out; i++)
			out[i] = (unsigned char)(n + i);
		CHECK(rp_write(e[1], out, sizeof out) == (ssize_t)sizeof out);
		read_exact(e[0], in, sizeof in);
		CHECK(memcmp(in, out, sizeof in) == 0);
		n++;
		sched_yield();
	}
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(rp_close(e[1]) == 0 && rp_close(e[0]) == 0);
}

/*
 * A thread blocked in a call on an end that another thread closes, as
 * close(2) NOTES have it for a kernel pipe: the call keeps the end open
 * until it returns, so it still gets what comes (data, or EOF), the end
 * closes for its peers only then, and its descriptors' numbers are not
 * handed out again under it.
 */
struct blocked {
	rp_end *e;
	rp_conn *c;
	char buf[64];
	size_t len;
	ssize_t r;
	int err;
	atomic_int tid;                      /* set just before the call */
	atomic_int done;                     /* set when it returned */
	pthread_t t;
};

static void entering(struct blocked *b)
{
	atomic_store(&b->tid, (int)gettid());
}

static void *read_once(void *p)
{
	struct blocked *b = p;
	entering(b);
	b->r = rp_read(b->e, b->buf, sizeof b->buf);
	b->err = errno;
	atomic_store(&b->done, 1);
	return NULL;
}

static void *write_once(void *p)
{
	struct blocked *b = p;
	entering(b);
	b->r = rp_write(b->e, b->buf, b->len);
	b->err = errno;
	atomic_store(&b->done, 1);
	return NULL;
}

static void *recv_once(void *p)
{
	struct blocked *b = p;
	entering(b);
	b->r = rp_recv(b->c, b->buf, sizeof b->buf);
	b->err = errno;
	atomic_store(&b->done, 1);
	return NULL;
}

/* Is thread tid of this process asleep (state S in /proc)? */
static bool asleep(int tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

/* Start fn in a thread and wait until it sleeps inside its call (under
 * valgrind a thread may take long to get there). */
static void start_blocked(struct blocked *b, void *(*fn)(void *))
{
	CHECK(pthread_create(&b->t, NULL, fn, b) == 0);
	double until = rp_now_ms() + rp_ms(5000);
	while (!atomic_load(&b->tid) || !asleep(atomic_load(&b->tid))) {
		CHECK(rp_now_ms() < until);
		usleep(1000);
	}
	usleep((useconds_t)(rp_ms(50) * 1000));
	CHECK(!atomic_load(&b->done));       /* still inside its call */
}

/* The blocked call returned within a few seconds (not a hang). */
static void joined(struct blocked *b)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(rp_ms(5000) / 1000);
	CHECK(pthread_timedjoin_np(b->t, NULL, &ts) == 0);
}

/* A pipe whose read end another thread closes while b's thread is
 * blocked reading it. */
static void read_blocked_then_closed(rp_end *e[2], struct blocked *b)
{
	alarm((unsigned)(rp_ms(30000) / 1000));
	CHECK(rp_pipe(e) == 0);
	memset(b, 0, sizeof(*b));
	b->e = e[0];
	start_blocked(b, read_once);
	CHECK(rp_close(e[0]) == 0);
}

TEST(read_blocked_in_an_end_closed_by_another_thread_gets_later_data)
{
	rp_end *e[2];
	struct blocked b;
	read_blocked_then_closed(e, &b);
	CHECK(rp_write(e[1], "later", 5) == 5);     /* a reader is still in */
	joined(&b);
	CHECK(b.r == 5 && memcmp(b.buf, "later", 5) == 0);
	CHECK(rp_close(e[1]) == 0);
}

TEST(read_blocked_in_an_end_closed_by_another_thread_gets_eof)
{
	rp_end *e[2];
	struct blocked b;
	read_blocked_then_closed(e, &b);
	CHECK(rp_close(e[1]) == 0);
	joined(&b);
	CHECK(b.r == 0);
}

TEST(end_closed_under_a_blocked_read_closes_for_writers_when_it_returns)
{
	rp_end *e[2];
	struct blocked b;
	read_blocked_then_closed(e, &b);
	signal(SIGPIPE, SIG_IGN);
	CHECK(rp_write(e[1], "x", 1) == 1);
	joined(&b);
	CHECK(b.r == 1);
	CHECK_ERR(rp_write(e[1], "y", 1), EPIPE);
	CHECK(rp_close(e[1]) == 0);
}

/* Kernel pipes opened after the close (which take the lowest free
 * descriptor numbers) keep their bytes: the blocked read took none. */
TEST(descriptors_of_an_end_closed_under_a_blocked_read_are_not_reused)
{
	rp_end *e[2];
	struct blocked b;
	read_blocked_then_closed(e, &b);
	enum { NP = 16 };
	int p[NP][2];
	for (int i = 0; i < NP; i++) {
		CHECK(pipe2(p[i], O_NONBLOCK) == 0);
		CHECK(write(p[i][1], "kernel", 6) == 6);
	}
	usleep(300 * 1000);          /* the blocked reader's later looks */
	CHECK(rp_close(e[1]) == 0);
	joined(&b);
	CHECK(b.r == 0);
	for (int i = 0; i < NP; i++) {
		char buf[8];
		CHECK(read(p[i][0], buf, sizeof buf) == 6);
		close(p[i][0]);
		close(p[i][1]);
	}
}

TEST(write_blocked_in_an_end_closed_by_another_thread_completes)
{
	alarm((unsigned)(rp_ms(30000) / 1000));
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 4096) == 0);
	static char fill[4096];
	CHECK(rp_write(e[1], fill, sizeof fill) == (ssize_t)sizeof fill);
	struct blocked b = { .e = e[1], .len = 10 };
	memcpy(b.buf, "0123456789", 10);
	start_blocked(&b, write_once);
	CHECK(rp_close(e[1]) == 0);
	char got[4096];
	read_exact(e[0], got, sizeof got);       /* room: the write goes on */
	joined(&b);
	CHECK(b.r == 10);
	read_exact(e[0], got, 10);
	CHECK(memcmp(got, "0123456789", 10) == 0);
	CHECK(rp_read(e[0], got, sizeof got) == 0);   /* then it closed: EOF */
	CHECK(rp_close(e[0]) == 0);
}

/* The same for a connection whose receiving side another thread closes. */
static void recv_blocked_then_closed(rp_conn *c[2], struct blocked *b)
{
	alarm((unsigned)(rp_ms(30000) / 1000));
	CHECK(rp_conn_pipe(c, 0) == 0);
	memset(b, 0, sizeof(*b));
	b->c = c[0];
	start_blocked(b, recv_once);
	CHECK(rp_conn_close(c[0]) == 0);
}

TEST(recv_blocked_in_a_connection_closed_by_another_thread_gets_later_message)
{
	rp_conn *c[2];
	struct blocked b;
	recv_blocked_then_closed(c, &b);
	CHECK(rp_send(c[1], "message", 7) == 0);
	joined(&b);
	CHECK(b.r == 7 && memcmp(b.buf, "message", 7) == 0);
	CHECK_ERR(rp_recv(c[0], b.buf, sizeof b.buf), EBADF);
	CHECK(rp_conn_close(c[1]) == 0);
}

TEST(recv_blocked_in_a_connection_closed_by_another_thread_gets_eof)
{
	rp_conn *c[2];
	struct blocked b;
	recv_blocked_then_closed(c, &b);
	CHECK(rp_conn_close(c[1]) == 0);
	joined(&b);
	CHECK(b.r == -1 && b.err == ENODATA);
}

/*
 * pthread_cancel(3) of a thread asleep in a call, as of one asleep in
 * read(2) or poll(2): the call is cancelled there, and gives back what it
 * held, so that the end (or connection) still closes for its peers.
 */
static void *poll_once(void *p)
{
	struct blocked *b = p;
	entering(b);
	b->r = rp_poll(b->c, -1);
	b->err = errno;
	atomic_store(&b->done, 1);
	return NULL;
}

/* Cancel b's thread and see it end cancelled, inside its call. */
static void cancelled(struct blocked *b)
{
	CHECK(pthread_cancel(b->t) == 0);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(rp_ms(5000) / 1000);
	void *ret = NULL;
	CHECK(pthread_timedjoin_np(b->t, &ret, &ts) == 0);
	CHECK(ret == PTHREAD_CANCELED);
	CHECK(!atomic_load(&b->done));
}

TEST(read_cancelled_in_its_sleep_leaves_the_end_closable)
{
	alarm((unsigned)(rp_ms(30000) / 1000));
	signal(SIGPIPE, SIG_IGN);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	struct blocked b = { .e = e[0] };
	start_blocked(&b, read_once);
	cancelled(&b);
	CHECK(rp_close(e[0]) == 0);
	CHECK_ERR(rp_write(e[1], "x", 1), EPIPE);
	CHECK(rp_close(e[1]) == 0);
}

TEST(write_cancelled_in_its_sleep_leaves_the_end_closable)
{
	alarm((unsigned)(rp_ms(30000) / 1000));
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 4096) == 0);
	static char fill[4096];
	CHECK(rp_write(e[1], fill, sizeof fill) == (ssize_t)sizeof fill);
	struct blocked b = { .e = e[1], .len = 10 };
	start_blocked(&b, write_once);
	cancelled(&b);
	CHECK(rp_close(e[1]) == 0);
	char got[4096];
	read_exact(e[0], got, sizeof got);
	CHECK(rp_read(e[0], got, sizeof got) == 0);   /* nothing of it: EOF */
	CHECK(rp_close(e[0]) == 0);
}

/* fn (a receive or a poll) cancelled asleep on the receiving side; once
 * that side is closed, a send finds no receiver. */
static void receiver_cancelled_then_closed(void *(*fn)(void *))
{
	alarm((unsigned)(rp_ms(30000) / 1000));
	signal(SIGPIPE, SIG_IGN);
	rp_conn *c[2];
	CHECK(rp_conn_pipe(c, 0) == 0);
	struct blocked b = { .c = c[0] };
	start_blocked(&b, fn);
	cancelled(&b);
	CHECK(rp_conn_close(c[0]) == 0);
	CHECK_ERR(rp_send(c[1], "m", 1), EPIPE);
	CHECK(rp_conn_close(c[1]) == 0);
}

TEST(recv_cancelled_in_its_sleep_leaves_the_connection_closable)
{
	receiver_cancelled_then_closed(recv_once);
}

TEST(poll_cancelled_in_its_sleep_leaves_the_connection_closable)
{
	receiver_cancelled_then_closed(poll_once);
}

/* A thread that turned cancellation off is not cancelled in its sleep:
 * the call goes on and returns what comes. */
static void *read_uncancellable(void *p)
{
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	return read_once(p);
}

TEST(read_in_a_thread_with_cancellation_disabled_is_not_cancelled)
{
	alarm((unsigned)(rp_ms(30000) / 1000));
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	struct blocked b = { .e = e[0] };
	start_blocked(&b, read_uncancellable);
	CHECK(pthread_cancel(b.t) == 0);
	usleep((useconds_t)(rp_ms(100) * 1000));
	CHECK(!atomic_load(&b.done));
	CHECK(rp_write(e[1], "z", 1) == 1);
	joined(&b);
	CHECK(b.r == 1 && b.buf[0] == 'z');
	CHECK(rp_close(e[0]) == 0 && rp_close(e[1]) == 0);
}

static void *send_big(void *p)
{
	struct blocked *b = p;
	static char big[1 << 20];
	entering(b);
	b->r = rp_send(b->c, big, sizeof big);
	b->err = errno;
	atomic_store(&b->done, 1);
	return NULL;
}

/* A sender cancelled asleep inside a message bigger than the ring (it
 * sleeps holding the writers' lock): the next sender takes the lock over,
 * and the receiver gets its message whole, not the cut one. */
TEST(send_cancelled_inside_a_message_lets_the_next_message_through_whole)
{
	alarm((unsigned)(rp_ms(30000) / 1000));
	rp_conn *c[2];
	CHECK(rp_conn_pipe(c, 0) == 0);
	struct blocked b = { .c = c[1] };
	start_blocked(&b, send_big);
	cancelled(&b);
	struct blocked r = { .c = c[0] };
	CHECK(pthread_create(&r.t, NULL, recv_once, &r) == 0);
	CHECK(rp_send(c[1], "whole", 5) == 0);
	CHECK(rp_conn_close(c[1]) == 0);
	joined(&r);
	CHECK(r.r == 5 && memcmp(r.buf, "whole", 5) == 0);
	CHECK_ERR(rp_recv(c[0], r.buf, sizeof r.buf), ENODATA);
	CHECK(rp_conn_close(c[0]) == 0);
}

static void *reserve_once(void *p)
{
	struct blocked *b = p;
	entering(b);
	void *span = rp_write_reserve(b->e, 16);
	b->r = span ? 16 : -1;
	b->err = errno;
	atomic_store(&b->done, 1);
	return NULL;
}

static void *peek_once(void *p)
{
	struct blocked *b = p;
	size_t n;
	entering(b);
	const void *span = rp_read_peek(b->e, &n);
	b->r = span ? (ssize_t)n : -1;
	b->err = errno;
	atomic_store(&b->done, 1);
	return NULL;
}

/* A reserve waiting for room in an end that another thread closes gets
 * no span (it could not be committed, and is unmapped at the return) and
 * leaves the writers' lock free: a forked copy of the end writes. */
TEST(reserve_waiting_in_an_end_closed_by_another_thread_fails_ebadf)
{
	alarm((unsigned)(rp_ms(30000) / 1000));
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 4096) == 0);
	static char fill[4096];
	CHECK(rp_write(e[1], fill, sizeof fill) == (ssize_t)sizeof fill);
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t kid = fork();
	CHECK(kid >= 0);
	if (kid == 0) {
		char c;
		close(go[1]);
		_exit(read(go[0], &c, 1) == 1 && rp_write(e[1], "kid", 3) == 3 ? 0 : 1);
	}
	close(go[0]);
	struct blocked b = { .e = e[1] };
	start_blocked(&b, reserve_once);
	CHECK(rp_close(e[1]) == 0);
	char got[4096];
	read_exact(e[0], got, sizeof got);       /* room: the reserve wakes */
	joined(&b);
	CHECK(b.r == -1 && b.err == EBADF);
	CHECK(write(go[1], "g", 1) == 1);
	read_exact(e[0], got, 3);
	CHECK(memcmp(got, "kid", 3) == 0);
	rp_wait_ok(kid);
	CHECK(rp_close(e[0]) == 0);
}

TEST(peek_waiting_in_an_end_closed_by_another_thread_fails_ebadf)
{
	alarm((unsigned)(rp_ms(30000) / 1000));
	signal(SIGPIPE, SIG_IGN);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	struct blocked b = { .e = e[0] };
	start_blocked(&b, peek_once);
	CHECK(rp_close(e[0]) == 0);
	CHECK(rp_write(e[1], "hello", 5) == 5);
	joined(&b);
	CHECK(b.r == -1 && b.err == EBADF);
	CHECK_ERR(rp_write(e[1], "x", 1), EPIPE);
	CHECK(rp_close(e[1]) == 0);
}

/* posix_spawn runs no fork handler: a program it starts while a closed
 * end's call is still in flight must not inherit the end's descriptors,
 * or the writer would not see the reader go until that program exits. */
TEST(program_spawned_under_a_blocked_call_does_not_hold_the_closed_end)
{
	alarm((unsigned)(rp_ms(30000) / 1000));
	signal(SIGPIPE, SIG_IGN);
	rp_end *e[2];
	struct blocked b;
	read_blocked_then_closed(e, &b);
	pid_t kid;
	char *argv[] = { "sleep", "10", NULL };
	posix_spawn_file_actions_t fa;      /* not ctest's output pipe */
	CHECK(posix_spawn_file_actions_init(&fa) == 0);
	CHECK(posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) == 0);
	CHECK(posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0) == 0);
	CHECK(posix_spawnp(&kid, "sleep", &fa, NULL, argv, environ) == 0);
	posix_spawn_file_actions_destroy(&fa);
	CHECK(rp_write(e[1], "x", 1) == 1);
	joined(&b);
	CHECK(b.r == 1);
	CHECK_ERR(rp_write(e[1], "y", 1), EPIPE);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	CHECK(rp_close(e[1]) == 0);
}
