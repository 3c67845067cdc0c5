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
#include "internal.h"           /* rp__call_enter(), rp__call_leave() */
#include "records.h"
#include "shmfile.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

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
	rp_alarm(60);
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
	rp_alarm(60);
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

/* The call in b's thread returned r: record it (and errno), then done. */
static void *returned(struct blocked *b, ssize_t r)
{
	b->r = r;
	b->err = errno;
	atomic_store(&b->done, 1);
	return NULL;
}

static void *read_once(void *p)
{
	struct blocked *b = p;
	entering(b);
	return returned(b, rp_read(b->e, b->buf, sizeof b->buf));
}

static void *write_once(void *p)
{
	struct blocked *b = p;
	entering(b);
	return returned(b, rp_write(b->e, b->buf, b->len));
}

static void *recv_once(void *p)
{
	struct blocked *b = p;
	entering(b);
	return returned(b, rp_recv(b->c, b->buf, sizeof b->buf));
}

/* Does the stat file at path (in /proc) show state c? */
static bool state_is(const char *path, char c)
{
	char buf[512];
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == c;
}

/* Is thread tid of this process asleep (state S in /proc)? */
static bool asleep(int tid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
	return state_is(path, 'S');
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
	rp_alarm(30);
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
	rp_alarm(30);
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
	rp_alarm(30);
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
	return returned(b, rp_poll(b->c, -1));
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
	rp_alarm(30);
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
	rp_alarm(30);
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
	rp_alarm(30);
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
	rp_alarm(30);
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
	return returned(b, rp_send(b->c, big, sizeof big));
}

/* A sender cancelled asleep inside a message bigger than the ring (it
 * sleeps holding the writers' lock): the next sender takes the lock over,
 * and the receiver gets its message whole, not the cut one. */
TEST(send_cancelled_inside_a_message_lets_the_next_message_through_whole)
{
	rp_alarm(30);
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
	return returned(b, span ? 16 : -1);
}

static void *peek_once(void *p)
{
	struct blocked *b = p;
	size_t n;
	entering(b);
	const void *span = rp_read_peek(b->e, &n);
	return returned(b, span ? (ssize_t)n : -1);
}

/* A reserve waiting for room in an end that another thread closes gets
 * no span (it could not be committed, and is unmapped at the return) and
 * leaves the writers' lock free: a forked copy of the end writes. */
TEST(reserve_waiting_in_an_end_closed_by_another_thread_fails_ebadf)
{
	rp_alarm(30);
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
	rp_alarm(30);
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

/*
 * Two threads share an end and each alternates the zero-copy call and the
 * plain one.  A thread must never take the other's reservation (or peek)
 * for its own: a hold published before its holder's TID once let a thread
 * that had held one earlier see its own TID beside the other's flag, skip
 * the lock and clear the flag, and the holder's commit then failed with
 * EINVAL (in some 5,000-35,000 rounds of 16-byte records).  The records
 * have one size, unlike records.h's, so that one read is one record even
 * with two readers on an end (the peek case below).  Each thread
 * runs up to HOLD_ROUNDS rounds or HOLD_MS, whichever ends first (valgrind
 * runs one thread at a time, and slowly).
 */
enum { HOLD_ROUNDS = 1000000, HOLD_MS = 1500, REC16 = 16 };

struct holder { rp_end *e; uint32_t id, rounds; pthread_t t; };

/* A 16-byte record: id, sequence number, and a check of both. */
static void rec16_fill(unsigned char *p, uint32_t id, uint32_t seq)
{
	uint64_t check = ((uint64_t)id << 32 | seq) * 0x9e3779b97f4a7c15ULL;
	memcpy(p, &id, 4);
	memcpy(p + 4, &seq, 4);
	memcpy(p + 8, &check, 8);
}

static bool rec16_whole(const unsigned char *p, uint32_t *id, uint32_t *seq)
{
	unsigned char want[REC16];
	memcpy(id, p, 4);
	memcpy(seq, p + 4, 4);
	rec16_fill(want, *id, *seq);
	return memcmp(p, want, REC16) == 0;
}

static void *reserve_and_write(void *p)
{
	struct holder *h = p;
	double end = rp_now_ms() + HOLD_MS;
	uint32_t seq = 0;
	while (h->rounds < HOLD_ROUNDS && (h->rounds % 1024 || rp_now_ms() < end)) {
		unsigned char *span = rp_write_reserve(h->e, REC16);
		CHECK(span != NULL);
		rec16_fill(span, h->id, seq++);
		CHECK(rp_write_commit(h->e, REC16) == 0);
		unsigned char rec[REC16];
		rec16_fill(rec, h->id, seq++);
		CHECK(rp_write(h->e, rec, REC16) == REC16);
		h->rounds++;
	}
	return NULL;
}

/* Wait for both holders, then close the end they shared: EOF. */
static void *close_after_holders(void *p)
{
	struct holder *h = p;
	CHECK(pthread_join(h[0].t, NULL) == 0 && pthread_join(h[1].t, NULL) == 0);
	CHECK(rp_close(h[0].e) == 0);
	return NULL;
}

TEST(threads_sharing_a_write_end_never_take_each_others_reservation)
{
	rp_alarm(60);
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 1 << 20) == 0);
	struct holder h[2];
	for (uint32_t i = 0; i < 2; i++) {
		h[i] = (struct holder){ .e = e[1], .id = i };
		CHECK(pthread_create(&h[i].t, NULL, reserve_and_write, &h[i]) == 0);
	}
	pthread_t c;
	CHECK(pthread_create(&c, NULL, close_after_holders, h) == 0);
	uint32_t next[2] = { 0, 0 };
	unsigned char rec[REC16];
	ssize_t n;
	while ((n = rp_read(e[0], rec, REC16)) != 0) {
		CHECK(n == REC16);      /* every write and commit is one record */
		uint32_t id, seq;
		CHECK(rec16_whole(rec, &id, &seq) && id < 2 && seq == next[id]);
		next[id]++;
	}
	CHECK(pthread_join(c, NULL) == 0);
	CHECK(next[0] == 2 * h[0].rounds && next[1] == 2 * h[1].rounds);
	CHECK(rp_close(e[0]) == 0);
}

/* The same for a read end: two threads alternate a peek (consuming one
 * record) and a read, and every record reaches exactly one of them. */
enum { PEEK_RECORDS = 1 << 21 };
static atomic_uchar seen[PEEK_RECORDS];

static void take16(const unsigned char *p)
{
	uint32_t id, seq;
	CHECK(rec16_whole(p, &id, &seq) && id == 0 && seq < PEEK_RECORDS);
	CHECK(atomic_exchange(&seen[seq], 1) == 0);
}

static void *peek_and_read(void *p)
{
	rp_end *e = p;
	for (;;) {
		size_t n;
		errno = 0;
		const unsigned char *span = rp_read_peek(e, &n);
		if (!span) {
			CHECK(errno == 0 && n == 0);    /* EOF */
			break;
		}
		CHECK(n >= REC16 && n % REC16 == 0);
		take16(span);
		CHECK(rp_read_consume(e, REC16) == 0);
		unsigned char rec[REC16];
		ssize_t r = rp_read(e, rec, REC16);
		if (r == 0)
			break;
		CHECK(r == REC16);
		take16(rec);
	}
	return NULL;
}

TEST(threads_sharing_a_read_end_never_take_each_others_peek)
{
	rp_alarm(60);
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 1 << 20) == 0);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, peek_and_read, e[0]) == 0);
	double end = rp_now_ms() + HOLD_MS;
	uint32_t sent = 0;
	while (sent < PEEK_RECORDS && (sent % 4096 || rp_now_ms() < end)) {
		unsigned char rec[REC16];
		rec16_fill(rec, 0, sent++);
		CHECK(rp_write(e[1], rec, REC16) == REC16);
	}
	CHECK(rp_close(e[1]) == 0);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	for (uint32_t i = 0; i < PEEK_RECORDS; i++)
		CHECK(atomic_load(&seen[i]) == (i < sent));
	CHECK(rp_close(e[0]) == 0);
}

/* A reservation or peek belongs to the thread that made it: another
 * thread's commit or consume is EINVAL, as the man page says (it used to
 * publish the holder's half-made span and drop its lock), and the holder's
 * own still works. */
struct other_hold { rp_end *e; bool peek; atomic_int step; pthread_t t; };

static void *hold_then_finish(void *p)
{
	struct other_hold *o = p;
	size_t n = 0;
	if (o->peek) {
		CHECK(rp_read_peek(o->e, &n) != NULL && n == 5);
	} else {
		char *span = rp_write_reserve(o->e, 5);
		CHECK(span != NULL);
		memcpy(span, "mine!", 5);
	}
	atomic_store(&o->step, 1);
	while (atomic_load(&o->step) != 2)
		sched_yield();
	CHECK((o->peek ? rp_read_consume(o->e, 5) : rp_write_commit(o->e, 5)) == 0);
	return NULL;
}

static void hold_taken_by_another_thread(bool peek)
{
	rp_alarm(30);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	if (peek)
		CHECK(rp_write(e[1], "yours", 5) == 5);
	struct other_hold o = { .e = e[peek ? 0 : 1], .peek = peek };
	CHECK(pthread_create(&o.t, NULL, hold_then_finish, &o) == 0);
	while (atomic_load(&o.step) != 1)
		sched_yield();
	if (peek)
		CHECK_ERR(rp_read_consume(e[0], 5), EINVAL);
	else
		CHECK_ERR(rp_write_commit(e[1], 5), EINVAL);
	CHECK(rp_nread(e[0]) == (peek ? 5 : 0));   /* nothing published or freed */
	atomic_store(&o.step, 2);
	CHECK(pthread_join(o.t, NULL) == 0);
	char buf[8];
	if (peek) {
		CHECK(rp_nread(e[0]) == 0);
	} else {
		CHECK(rp_read(e[0], buf, sizeof buf) == 5 && memcmp(buf, "mine!", 5) == 0);
	}
	CHECK(rp_close(e[1]) == 0 && rp_close(e[0]) == 0);
}

TEST(commit_by_a_thread_without_the_reservation_einval)
{
	hold_taken_by_another_thread(false);
}

TEST(consume_by_a_thread_without_the_peek_einval)
{
	hold_taken_by_another_thread(true);
}

/*
 * A close racing a reserve (or a peek) in another thread.  The reserve
 * looked at the end's state before it set its hold, and the close at the
 * hold after it marked the end closed, so each could miss the other: the
 * hold stayed, with the side's lock, which no commit could give back, and
 * every other end of the pipe then waited on it for good.  Each round
 * opens an end of a named pipe, a thread reserves (peeks) in it while the
 * main thread closes it, and another end of the pipe, non-blocking, must
 * then find its side free.  The close comes a varying number of pauses
 * after the go, to sweep it across the reserve.
 */
enum { RACE_ROUNDS = 50000, RACE_MS = 3000 };

/* A pause in a spin (the races below are swept in pauses). */
static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

static void relax_n(unsigned n)
{
	while (n-- > 0)
		relax();
}

/* The race cases' threads go step by step: wait until *step is `want`
 * (true) or STEP_QUIT (false), spinning, or yielding where a third thread
 * needs the CPU. */
enum { STEP_QUIT = 9 };

static bool await_step(atomic_uint *step, unsigned want, bool yield)
{
	unsigned s;
	while ((s = atomic_load(step)) != want && s != STEP_QUIT) {
		if (yield)
			sched_yield();
		else
			relax();
	}
	return s == want;
}

/* A thread that makes one call on e at each go, and says when it is done. */
enum race_call { RACE_RESERVE, RACE_PEEK, RACE_WRITE };

struct racer {
	enum race_call call;
	rp_end *_Atomic e;
	atomic_uint go, done;
};

static void *call_when_told(void *p)
{
	struct racer *x = p;
	for (unsigned round = 1;; round++) {
		unsigned g;
		while ((g = atomic_load(&x->go)) != round && g != UINT_MAX)
			relax();
		if (g == UINT_MAX)
			return NULL;
		rp_end *e = atomic_load(&x->e);
		size_t n;
		/* Only the call is wanted: a span may be unmapped by now,
		 * and any call may fail EBADF. */
		if (x->call == RACE_PEEK)
			(void)rp_read_peek(e, &n);
		else if (x->call == RACE_RESERVE)
			(void)rp_write_reserve(e, 16);
		else
			(void)rp_write(e, "t", 1);
		atomic_store(&x->done, round);
	}
}

/* A named pipe of cap bytes in h, with a non-blocking read end, and a
 * write end opened with wflags if w is not NULL. */
static rp_end *pipe_of(struct hp *h, size_t cap, rp_end **w, int wflags)
{
	hp_make(h, cap);
	rp_end *r = rp_open(h->path, O_RDONLY | O_NONBLOCK);
	CHECK(r != NULL);
	if (w) {
		*w = rp_open(h->path, O_WRONLY | wflags);
		CHECK(*w != NULL);
	}
	return r;
}

/* The races' pipe: 4 KiB, the write end (if asked for) non-blocking. */
static rp_end *race_pipe(struct hp *h, rp_end **w)
{
	return pipe_of(h, 4096, w, O_NONBLOCK);
}

static void close_racing_a_hold(bool peek)
{
	rp_alarm(60);
	struct hp h;
	rp_end *w;
	rp_end *r = race_pipe(&h, &w);
	struct racer x = { .call = peek ? RACE_PEEK : RACE_RESERVE };
	pthread_t t;
	CHECK(pthread_create(&t, NULL, call_when_told, &x) == 0);
	double end = rp_now_ms() + RACE_MS;
	unsigned round;
	for (round = 1; round <= RACE_ROUNDS && rp_now_ms() < end; round++) {
		if (peek)
			CHECK(rp_write(w, "x", 1) == 1);
		rp_end *e = rp_open(h.path, (peek ? O_RDONLY : O_WRONLY) | O_NONBLOCK);
		CHECK(e != NULL);
		atomic_store(&x.e, e);
		atomic_store(&x.go, round);
		relax_n(round % 251);
		CHECK(rp_close(e) == 0);
		while (atomic_load(&x.done) != round)
			sched_yield();
		/* The side is free: no wait (NB_LOCK_NS), no EAGAIN. */
		char c;
		bool side_free = (peek || rp_write(w, "x", 1) == 1) &&
				 rp_read(r, &c, 1) == 1;
		if (!side_free)
			fprintf(stderr, "left held in round %u\n", round);
		CHECK(side_free);
	}
	fprintf(stderr, "%u rounds\n", round - 1);
	atomic_store(&x.go, UINT_MAX);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

TEST(close_racing_a_reserve_in_another_thread_leaves_the_writers_side_free)
{
	close_racing_a_hold(false);
}

TEST(close_racing_a_peek_in_another_thread_leaves_the_readers_side_free)
{
	close_racing_a_hold(true);
}

/* The lock word of a side of h's pipe, mapped from the ring file. */
static _Atomic uint32_t *map_lock_word(const struct hp *h, bool readers)
{
	int fd = open(h->shm, O_RDWR);
	CHECK(fd >= 0);
	struct rp_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
				    MAP_SHARED, fd, 0);
	CHECK(sh != MAP_FAILED);
	close(fd);
	return readers ? &sh->rlock.word : &sh->wlock.word;
}

static void unmap_lock_word(_Atomic uint32_t *word)
{
	munmap((void *)((uintptr_t)word & ~(uintptr_t)4095), sizeof(struct rp_shared));
}

/*
 * A close racing the holder's next use of its hold in another thread: a
 * commit, a consume, or a plain write, which cancels a reservation and
 * goes on under its lock.  Both used to end the hold: the
 * holder having seen it still set, the close before the holder cleared
 * it, so the side's lock was unlocked twice, and the second unlock could
 * free it under whoever took it in between (another writer of the pipe,
 * which then wrote over the committed span).  Here the main thread is
 * that other taker: the moment its close returns it takes the free lock
 * word (in the ring file) and keeps it until the holder's call has
 * returned, and nobody may have freed it meanwhile.  (On the code before,
 * the commit case failed within a few rounds; the consume and write cases
 * never did: they unlock a few instructions after they look at the hold,
 * long before a close returns.  They check the same rule on the other
 * paths.)
 */
enum finish { COMMIT, CONSUME, WRITE_OVER };

struct finisher {
	enum finish how;
	rp_end *_Atomic e;
	atomic_uint step;       /* 1: hold; 2: held; 3: finish; 4: done; 9: quit */
	atomic_uint pauses;     /* before finishing */
};

static bool reads(enum finish how)
{
	return how == CONSUME;
}

static void *hold_then_finish_when_told(void *p)
{
	struct finisher *f = p;
	while (await_step(&f->step, 1, false)) {
		rp_end *e = atomic_load(&f->e);
		size_t n = 0;
		if (reads(f->how))
			CHECK(rp_read_peek(e, &n) != NULL && n == 1);
		else
			CHECK(rp_write_reserve(e, 1) != NULL);
		atomic_store(&f->step, 2);
		if (!await_step(&f->step, 3, false))
			break;
		relax_n(atomic_load(&f->pauses));
		long r = f->how == COMMIT ? rp_write_commit(e, 1) :
			 f->how == CONSUME ? rp_read_consume(e, 1) :
			 rp_write(e, "y", 1) - 1;
		/* A write whose reservation the close ended waits for the
		 * lock, which the main thread may hold by then: EAGAIN. */
		CHECK(r == 0 || errno == EBADF ||
		      (f->how == WRITE_OVER && errno == EAGAIN));
		atomic_store(&f->step, 4);
	}
	return NULL;
}

static void close_racing_a_finish(enum finish how)
{
	rp_alarm(60);
	struct hp h;
	rp_end *w;
	rp_end *r = race_pipe(&h, &w);
	_Atomic uint32_t *word = map_lock_word(&h, reads(how));
	const uint32_t mine = (uint32_t)gettid();
	struct finisher f = { .how = how };
	pthread_t t;
	CHECK(pthread_create(&t, NULL, hold_then_finish_when_told, &f) == 0);
	double end = rp_now_ms() + RACE_MS;
	unsigned round, caught = 0;
	for (round = 1; round <= RACE_ROUNDS && rp_now_ms() < end; round++) {
		if (reads(how))
			CHECK(rp_write(w, "x", 1) == 1);
		rp_end *e = rp_open(h.path, (reads(how) ? O_RDONLY : O_WRONLY) | O_NONBLOCK);
		CHECK(e != NULL);
		atomic_store(&f.e, e);
		/* Either side waits 0-250 pauses before it goes on. */
		unsigned lag = round % 502;
		atomic_store(&f.pauses, lag < 251 ? 0 : lag - 251);
		atomic_store(&f.step, 1);
		while (atomic_load(&f.step) != 2)
			relax();
		atomic_store(&f.step, 3);
		relax_n(lag < 251 ? lag : 0);
		CHECK(rp_close(e) == 0);
		bool taken = false;
		uint32_t w0;
		do {
			w0 = 0;
			taken = atomic_compare_exchange_strong(word, &w0, mine);
		} while (!taken && atomic_load(&f.step) != 4);
		while (atomic_load(&f.step) != 4)
			relax();
		if (taken) {
			caught++;
			/* (a write waiting for it may have marked it) */
			uint32_t now = atomic_exchange(word, 0) & ~RP_LOCK_WAITERS;
			if (now != mine)
				fprintf(stderr, "unlocked twice in round %u\n", round);
			CHECK(now == mine);
		}
		char buf[2];
		while (rp_read(r, buf, sizeof buf) > 0)
			;
	}
	fprintf(stderr, "%u rounds, %u with the lock taken between\n", round - 1, caught);
	atomic_store(&f.step, STEP_QUIT);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	unmap_lock_word(word);
	hp_clean(&h);
}

TEST(close_racing_a_commit_in_another_thread_unlocks_the_writers_side_once)
{
	close_racing_a_finish(COMMIT);
}

TEST(close_racing_a_consume_in_another_thread_unlocks_the_readers_side_once)
{
	close_racing_a_finish(CONSUME);
}

TEST(close_racing_the_holders_write_in_another_thread_unlocks_the_writers_side_once)
{
	close_racing_a_finish(WRITE_OVER);
}


/*
 * A write blocked on the writers' lock of an end that another thread
 * closes while the lock's holder (a reservation in a third thread) is
 * using its hold: the close leaves the hold to the holder, and the holder
 * must then end it, as the end's release would, which the blocked write's
 * reference holds off.  The holder reserves again and again until the
 * close stops it, so the close mostly finds it inside a reserve.  A
 * reserve that looked at the state before the close and cleared its mark
 * after it used to return with the hold (and the lock) kept, and the next
 * call failed EBADF without touching it: the blocked write then waited
 * for good (in round 181, 218 and 400 of three runs on the code before).
 */
struct second_reserve {
	rp_end *_Atomic e;
	atomic_uint step;       /* 1: reserve; 2: held; 3: again; 4: done; 9: quit */
};

static void *reserve_twice_when_told(void *p)
{
	struct second_reserve *s = p;
	while (await_step(&s->step, 1, false)) {
		rp_end *e = atomic_load(&s->e);
		CHECK(rp_write_reserve(e, 16) != NULL);
		atomic_store(&s->step, 2);
		if (!await_step(&s->step, 3, true))     /* the blocked write */
			break;                          /* needs a CPU */
		while (rp_write_reserve(e, 16) != NULL)
			;
		CHECK(errno == EBADF);
		atomic_store(&s->step, 4);
	}
	return NULL;
}

TEST(close_racing_a_second_reserve_leaves_no_write_waiting_for_good)
{
	rp_alarm(60);
	struct hp h;
	rp_end *r = race_pipe(&h, NULL);
	_Atomic uint32_t *word = map_lock_word(&h, false);
	struct second_reserve s = { 0 };
	struct racer ww = { .call = RACE_WRITE };
	pthread_t ts, tw;
	CHECK(pthread_create(&ts, NULL, reserve_twice_when_told, &s) == 0);
	CHECK(pthread_create(&tw, NULL, call_when_told, &ww) == 0);
	double end = rp_now_ms() + RACE_MS;
	unsigned round;
	for (round = 1; round <= RACE_ROUNDS && rp_now_ms() < end; round++) {
		rp_end *e = rp_open(h.path, O_WRONLY);   /* blocking: waits on the lock */
		CHECK(e != NULL);
		atomic_store(&s.e, e);
		atomic_store(&ww.e, e);
		atomic_store(&s.step, 1);
		while (atomic_load(&s.step) != 2)
			relax();
		atomic_store(&ww.go, round);
		/* The write has found the lock held and marked it waited on. */
		while (!(atomic_load(word) & RP_LOCK_WAITERS))
			sched_yield();
		atomic_store(&s.step, 3);
		relax_n(round % 251);
		CHECK(rp_close(e) == 0);
		double until = rp_now_ms() + rp_ms(2000);
		while (atomic_load(&ww.done) != round && rp_now_ms() < until)
			usleep(100);
		if (atomic_load(&ww.done) != round)
			fprintf(stderr, "a write waited for good in round %u\n", round);
		CHECK(atomic_load(&ww.done) == round);
		while (atomic_load(&s.step) != 4)
			relax();
		char buf[64];
		while (rp_read(r, buf, sizeof buf) > 0)
			;
	}
	fprintf(stderr, "%u rounds\n", round - 1);
	atomic_store(&s.step, STEP_QUIT);
	atomic_store(&ww.go, UINT_MAX);
	CHECK(pthread_join(ts, NULL) == 0 && pthread_join(tw, NULL) == 0);
	CHECK(rp_close(r) == 0);
	unmap_lock_word(word);
	hp_clean(&h);
}

/*
 * The hold that a close and its holder both miss (a first reserve's store
 * of its hold and load of the state may pass each other, and the close
 * fences only for a hold it sees): made here by hand, with the holder's
 * busy mark set around the close.  The end's release would end the hold,
 * but a write blocked on the lock holds a reference, so the write's own
 * wait must end it (at its next look, within LOCK_RECHECK_NS).
 */
TEST(hold_missed_by_a_close_is_ended_by_a_write_waiting_on_it)
{
	rp_alarm(30);
	struct hp h;
	rp_end *r = race_pipe(&h, NULL);
	_Atomic uint32_t *word = map_lock_word(&h, false);
	rp_end *e = rp_open(h.path, O_WRONLY);
	CHECK(e != NULL);
	struct second_reserve s = { .e = e };
	pthread_t ts;
	CHECK(pthread_create(&ts, NULL, reserve_twice_when_told, &s) == 0);
	atomic_store(&s.step, 1);
	while (atomic_load(&s.step) != 2)
		relax();
	struct blocked b = { .e = e, .len = 1 };
	start_blocked(&b, write_once);
	CHECK(atomic_load(word) & RP_LOCK_WAITERS);
	struct rp_end *ie = (struct rp_end *)e;
	atomic_store(&ie->held_busy, 1);        /* the holder, using it */
	CHECK(rp_close(e) == 0);
	CHECK(atomic_load(&ie->held) == 1);     /* left to the holder */
	atomic_store(&ie->held_busy, 0);        /* which missed the close */
	joined(&b);
	CHECK(b.r == 1);
	char c;
	CHECK(rp_read(r, &c, 1) == 1 && c == b.buf[0]);
	atomic_store(&s.step, STEP_QUIT);
	CHECK(pthread_join(ts, NULL) == 0);
	CHECK(rp_close(r) == 0);
	unmap_lock_word(word);
	hp_clean(&h);
}

/* Has process pid exec'd `prog` and gone to sleep in it?  Then its exec,
 * which closes the close-on-exec descriptors, is over. */
static bool asleep_in(pid_t pid, const char *prog)
{
	char path[64], exe[256];
	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, exe, sizeof exe - 1);
	if (n < 0)
		return false;
	exe[n] = 0;
	const char *base = strrchr(exe, '/');
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	return base && !strcmp(base + 1, prog) && state_is(path, 'S');
}

/* posix_spawn runs no fork handler: a program it starts while a closed
 * end's call is still in flight must not inherit the end's descriptors,
 * or the writer would not see the reader go until that program exits. */
TEST(program_spawned_under_a_blocked_call_does_not_hold_the_closed_end)
{
	rp_alarm(30);
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
	/* posix_spawn returns before the exec has closed the close-on-exec
	 * descriptors (the kernel wakes the parent first): wait for it. */
	double until = rp_now_ms() + rp_ms(5000);
	while (!asleep_in(kid, "sleep")) {
		CHECK(rp_now_ms() < until);
		usleep(1000);
	}
	CHECK(rp_write(e[1], "x", 1) == 1);
	joined(&b);
	CHECK(b.r == 1);
	CHECK_ERR(rp_write(e[1], "y", 1), EPIPE);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	CHECK(rp_close(e[1]) == 0);
}

/* A sender whose writers' lock is biased to it (hundreds of sends in a
 * row) and that is cancelled asleep inside a message: the next senders,
 * in other threads of the process, get the lock (the cancelled one's
 * cleanup left its bias), and the receiver gets their messages. */
static atomic_int draining;

static void *drain(void *p)
{
	rp_conn *c = p;
	while (atomic_load(&draining)) {
		void *m;
		if (rp_poll(c, 10) == 1 && rp_recv_alloc(c, &m) >= 0)
			free(m);
	}
	return NULL;
}

static void *warm_then_big(void *p)
{
	struct blocked *b = p;
	for (int i = 0; i < 1000; i++)
		CHECK(rp_send(b->c, "warm", 4) == 0);
	atomic_store(&draining, 0);
	return send_big(p);
}

static void *recv_after_warm(void *p)
{
	struct blocked *b = p;
	do
		b->r = rp_recv(b->c, b->buf, sizeof b->buf);
	while (b->r == 4 && !memcmp(b->buf, "warm", 4));
	atomic_store(&b->done, 1);
	return NULL;
}

static void *send_whole(void *p)
{
	struct blocked *b = p;
	return returned(b, rp_send(b->c, "whole", 5));
}

TEST(biased_sender_cancelled_inside_a_message_leaves_the_lock_to_others)
{
	rp_alarm(60);
	rp_conn *c[2];
	CHECK(rp_conn_pipe(c, 0) == 0);
	pthread_t d;
	atomic_store(&draining, 1);
	CHECK(pthread_create(&d, NULL, drain, c[0]) == 0);
	struct blocked b = { .c = c[1] };
	start_blocked(&b, warm_then_big);
	CHECK(pthread_join(d, NULL) == 0);
	cancelled(&b);
	struct blocked r = { .c = c[0] };
	CHECK(pthread_create(&r.t, NULL, recv_after_warm, &r) == 0);
	struct blocked s1 = { .c = c[1] }, s2 = { .c = c[1] };
	CHECK(pthread_create(&s1.t, NULL, send_whole, &s1) == 0);
	joined(&s1);
	CHECK(s1.r == 0);
	joined(&r);
	CHECK(r.r == 5 && memcmp(r.buf, "whole", 5) == 0);
	CHECK(pthread_create(&s2.t, NULL, send_whole, &s2) == 0);
	joined(&s2);
	CHECK(s2.r == 0);
	CHECK(rp_conn_close(c[1]) == 0 && rp_conn_close(c[0]) == 0);
}

/* A receiver cancelled asleep inside a message (its sender, a process,
 * stopped halfway) keeps the part it has for the next receive, as a
 * signal's EINTR does: the next receive gets the message whole. */
static void *recv_big(void *p)
{
	struct blocked *b = p;
	void *m = NULL;
	entering(b);
	b->r = rp_recv_alloc(b->c, &m);
	b->err = errno;
	free(m);
	atomic_store(&b->done, 1);
	return NULL;
}

TEST(recv_cancelled_inside_a_message_leaves_it_to_the_next_receive)
{
	rp_alarm(60);
	enum { BIG = 1 << 20 };
	rp_conn *c[2];
	CHECK(rp_conn_pipe(c, 0) == 0);
	pid_t kid = fork();
	CHECK(kid >= 0);
	if (kid == 0) {
		static char big[BIG];
		memset(big, 'm', sizeof big);
		_exit(rp_send(c[1], big, sizeof big) == 0 ? 0 : 1);
	}
	CHECK(rp_conn_close(c[1]) == 0);
	usleep((useconds_t)(rp_ms(200) * 1000));      /* the ring is full */
	CHECK(kill(kid, SIGSTOP) == 0);
	struct blocked r = { .c = c[0] };
	start_blocked(&r, recv_big);    /* took the ring's part, waits for more */
	cancelled(&r);
	CHECK(kill(kid, SIGCONT) == 0);
	void *m = NULL;
	CHECK(rp_recv_alloc(c[0], &m) == BIG);
	for (size_t i = 0; i < BIG; i++)
		CHECK(((char *)m)[i] == 'm');
	free(m);
	rp_wait_ok(kid);
	CHECK(rp_conn_close(c[0]) == 0);
}

/* rp_open waiting for a partner can be cancelled there, as open(2) of a
 * FIFO can, and leaves nothing behind: the end it was making does not
 * keep the pipe open (a writer whose reader goes gets EPIPE). */
static char fifo_path[64];

static void *open_reader(void *p)
{
	struct blocked *b = p;
	entering(b);
	b->e = rp_open(fifo_path, O_RDONLY);
	atomic_store(&b->done, 1);
	return NULL;
}

TEST(open_cancelled_waiting_for_a_partner_leaves_nothing_open)
{
	rp_alarm(30);
	signal(SIGPIPE, SIG_IGN);
	snprintf(fifo_path, sizeof fifo_path, "/tmp/rp_threads_%d", (int)getpid());
	unlink(fifo_path);
	CHECK(rp_mkfifo(fifo_path, 0600, 4096) == 0);
	struct blocked b = { 0 };
	start_blocked(&b, open_reader);
	cancelled(&b);
	struct blocked r = { 0 };
	CHECK(pthread_create(&r.t, NULL, open_reader, &r) == 0);
	rp_end *w = rp_open(fifo_path, O_WRONLY);
	CHECK(w != NULL);
	joined(&r);
	CHECK(r.e != NULL);
	CHECK(rp_close(r.e) == 0);
	CHECK_ERR(rp_write(w, "x", 1), EPIPE);
	CHECK(rp_close(w) == 0);
	CHECK(rp_unlink(fifo_path) == 0);
}

/* A cancel already pending does not act inside rp_pipe or rp_conn_pipe,
 * which would leak what they half made: they return whole. */
static void *make_with_cancel_pending(void *p)
{
	struct blocked *b = p;
	rp_end *e[2];
	rp_conn *c[2];
	pthread_cancel(pthread_self());
	b->r = rp_pipe(e) == 0 && rp_conn_pipe(c, 1) == 0 &&
	       rp_close(e[0]) == 0 && rp_close(e[1]) == 0 &&
	       rp_conn_close(c[0]) == 0 && rp_conn_close(c[1]) == 0;
	atomic_store(&b->done, 1);
	pthread_testcancel();
	return NULL;
}

TEST(pipe_made_with_a_cancel_pending_is_made_whole)
{
	rp_alarm(30);
	struct blocked b = { 0 };
	CHECK(pthread_create(&b.t, NULL, make_with_cancel_pending, &b) == 0);
	void *ret = NULL;
	CHECK(pthread_join(b.t, &ret) == 0);
	CHECK(ret == PTHREAD_CANCELED);
	CHECK(atomic_load(&b.done) && b.r == 1);
}

/* A cancel pending at a read that wakes a writer blocked for room acts
 * after the read, not in its write(2) of the writer's token: rp_read
 * leaves its cancel state alone until it may reach a cancellation point. */
static rp_end *woken[2];

static void *read_with_cancel_pending(void *p)
{
	struct blocked *b = p;
	/* A first read makes room too small for the writer, and takes the
	 * slow path a new thread takes (it learns its TID there). */
	if (rp_read(woken[0], b->buf, 1) != 1)
		return NULL;
	pthread_cancel(pthread_self());
	b->r = rp_read(woken[0], b->buf, 1);
	atomic_store(&b->done, 1);
	pthread_testcancel();
	return NULL;
}

/* Run fn, a thread that cancels itself and then makes its call, and check
 * that the call completed and the cancel then took effect: its result. */
static ssize_t completed_then_cancelled(void *(*fn)(void *))
{
	struct blocked r = { 0 };
	CHECK(pthread_create(&r.t, NULL, fn, &r) == 0);
	void *ret = NULL;
	CHECK(pthread_join(r.t, &ret) == 0);
	CHECK(ret == PTHREAD_CANCELED);
	CHECK(atomic_load(&r.done));
	return r.r;
}

TEST(read_with_a_cancel_pending_wakes_the_blocked_writer_first)
{
	rp_alarm(30);
	static char full[4096];
	CHECK(rp_pipe2(woken, 0, sizeof full) == 0);
	CHECK(rp_write(woken[1], full, sizeof full) == (ssize_t)sizeof full);
	struct blocked w = { .e = woken[1], .len = 2, .buf = "xy" };
	start_blocked(&w, write_once);
	CHECK(completed_then_cancelled(read_with_cancel_pending) == 1);
	joined(&w);
	CHECK(w.r == 2);
	CHECK(rp_close(woken[0]) == 0 && rp_close(woken[1]) == 0);
}

/* The same for rp_recv waking a sender blocked for room. */
static rp_conn *msg_rx, *msg_tx;
static char msg_big[1800];

static void *send_big_once(void *p)
{
	struct blocked *b = p;
	entering(b);
	return returned(b, rp_send(msg_tx, msg_big, sizeof msg_big));
}

static void *recv_with_cancel_pending(void *p)
{
	struct blocked *b = p;
	static char m[1200];
	/* The first receive leaves too little room for the sender. */
	if (rp_recv(msg_rx, m, sizeof m) != (ssize_t)sizeof m)
		return NULL;
	pthread_cancel(pthread_self());
	b->r = rp_recv(msg_rx, m, sizeof m);
	atomic_store(&b->done, 1);
	pthread_testcancel();
	return NULL;
}

TEST(recv_with_a_cancel_pending_wakes_the_blocked_sender_first)
{
	rp_alarm(30);
	static char m[1200];
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 4096) == 0);
	msg_rx = rp_conn_from_ends(e[0], NULL);
	msg_tx = rp_conn_from_ends(NULL, e[1]);
	CHECK(msg_rx && msg_tx);
	for (int i = 0; i < 3; i++)
		CHECK(rp_send(msg_tx, m, sizeof m) == 0);
	struct blocked s = { 0 };
	start_blocked(&s, send_big_once);
	CHECK(completed_then_cancelled(recv_with_cancel_pending) == (ssize_t)sizeof m);
	joined(&s);
	CHECK(s.r == 0);
	CHECK(rp_conn_close(msg_rx) == 0 && rp_conn_close(msg_tx) == 0);
}

/* A signal handler calling in while its thread is inside (or entering,
 * or leaving) a call: the thread comes out with the cancel state and
 * type it had, whatever the interleaving. */
static rp_end *sig_end[2];

static rp_end *sig_io[2];                /* the handler's reads and writes */

static void call_in_handler(int sig)
{
	int err = errno;
	char ch;
	(void)sig;
	rp_nread(sig_end[0]);
	if (rp_write(sig_io[1], "h", 1) == 1)  /* rp_read/rp_write set it lazily */
		rp_read(sig_io[0], &ch, 1);
	errno = err;
}

static void *call_in_a_loop(void *p)
{
	struct blocked *b = p;
	char ch;
	b->r = 0;
	for (long i = 0; !atomic_load(&b->done); i++) {
		rp_nread(sig_end[0]);
		if (rp_write(sig_end[1], "l", 1) != 1 || rp_read(sig_end[0], &ch, 1) != 1)
			b->r++;
		int state, type;
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &state);
		pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &type);
		if (state != PTHREAD_CANCEL_ENABLE || type != PTHREAD_CANCEL_DEFERRED)
			b->r++;
	}
	return NULL;
}

TEST(calls_from_signal_handlers_leave_the_cancel_state_as_found)
{
	rp_alarm(30);
	struct sigaction sa = { .sa_handler = call_in_handler, .sa_flags = SA_RESTART };
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	CHECK(rp_pipe(sig_end) == 0 && rp_pipe(sig_io) == 0);
	struct blocked b = { 0 };
	CHECK(pthread_create(&b.t, NULL, call_in_a_loop, &b) == 0);
	double until = rp_now_ms() + 1000;
	while (rp_now_ms() < until)
		for (int i = 0; i < 1000; i++)
			pthread_kill(b.t, SIGUSR1);
	atomic_store(&b.done, 1);
	CHECK(pthread_join(b.t, NULL) == 0);
	CHECK(b.r == 0);
	CHECK(rp_close(sig_end[0]) == 0 && rp_close(sig_end[1]) == 0);
	CHECK(rp_close(sig_io[0]) == 0 && rp_close(sig_io[1]) == 0);
}

/* A handler that sleeps in a call while its thread sleeps in another:
 * the thread's own call still returns with its deferred type. */
static rp_end *outer[2], *inner[2];

static void sleep_in_handler(int sig)
{
	int err = errno;
	char ch;
	(void)sig;
	rp_read(inner[0], &ch, 1);
	errno = err;
}

static void *read_keeping_type(void *p)
{
	struct blocked *b = p;
	char buf[8];
	int type;
	entering(b);
	b->r = rp_read(outer[0], buf, sizeof buf);
	pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &type);
	b->err = type;
	atomic_store(&b->done, 1);
	return NULL;
}

TEST(call_sleeping_in_a_signal_handler_keeps_the_outer_cancel_type)
{
	rp_alarm(30);
	struct sigaction sa = { .sa_handler = sleep_in_handler, .sa_flags = SA_RESTART };
	CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
	CHECK(rp_pipe(outer) == 0 && rp_pipe(inner) == 0);
	struct blocked b = { 0 };
	start_blocked(&b, read_keeping_type);
	CHECK(pthread_kill(b.t, SIGUSR2) == 0);
	usleep((useconds_t)(rp_ms(200) * 1000));      /* the handler sleeps */
	CHECK(rp_write(inner[1], "i", 1) == 1);
	usleep((useconds_t)(rp_ms(200) * 1000));      /* back in the outer sleep */
	CHECK(rp_write(outer[1], "o", 1) == 1);
	joined(&b);
	CHECK(b.r == 1 && b.err == PTHREAD_CANCEL_DEFERRED);
}

/*
 * Calls nested past end.c's four full call levels (handlers calling in
 * while the calls they interrupted have not touched the cancel state: the
 * fast paths of rp_read and rp_write) give it back as they found it,
 * enabled or disabled.  White-box: the levels as those calls open them.
 */
TEST(calls_nested_past_the_call_levels_restore_the_cancel_state)
{
	static const int found[] = { PTHREAD_CANCEL_ENABLE, PTHREAD_CANCEL_DISABLE };
	for (int k = 0; k < 2; k++)
		for (int n = 1; n <= 8; n++) {
			int state;
			CHECK(pthread_setcancelstate(found[k], NULL) == 0);
			for (int i = 0; i < n; i++)
				rp__call_enter(true);
			for (int i = 0; i < n; i++)
				rp__call_leave();
			CHECK(pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &state) == 0);
			CHECK(state == found[k]);
		}
}

/*
 * A second reserve cancelled in its sleep for room leaves the end's busy
 * mark set (it never gets to clear it); a later reserve by another thread
 * must not inherit it, or a close would leave that thread's hold to a
 * holder that is not using it, and a write blocked on the lock would wait
 * for good (it did, before a new hold cleared the mark).
 */
static void *reserve_then_more(void *p)
{
	struct blocked *b = p;
	CHECK(rp_write_reserve(b->e, 16) != NULL);
	entering(b);
	(void)rp_write_reserve(b->e, b->len);   /* sleeps for room */
	atomic_store(&b->done, 1);
	return NULL;
}

/* Reserve, then stay alive (a dead holder's lock is taken over) until
 * tid is cleared. */
static void *reserve_16_and_stay(void *p)
{
	struct blocked *b = p;
	b->r = rp_write_reserve(b->e, 16) ? 0 : -1;
	atomic_store(&b->done, 1);
	while (atomic_load(&b->tid) == 0)
		usleep(1000);
	return NULL;
}

TEST(hold_after_a_cancelled_second_reserve_is_ended_by_a_close)
{
	rp_alarm(30);
	struct hp h;
	rp_end *w;
	rp_end *r = race_pipe(&h, &w);
	static char fill[4000];
	CHECK(rp_write(w, fill, sizeof fill) == (ssize_t)sizeof fill);
	rp_end *e = rp_open(h.path, O_WRONLY);
	CHECK(e != NULL);
	struct blocked a = { .e = e, .len = 4096 };
	start_blocked(&a, reserve_then_more);
	cancelled(&a);
	struct blocked f = { .e = e };
	CHECK(pthread_create(&f.t, NULL, reserve_16_and_stay, &f) == 0);
	while (!atomic_load(&f.done))
		usleep(1000);
	CHECK(f.r == 0);                        /* a hold nobody is using */
	struct blocked b = { .e = e, .len = 1 };
	start_blocked(&b, write_once);
	CHECK(rp_close(e) == 0);
	joined(&b);
	CHECK(b.r == 1);
	atomic_store(&f.tid, 1);
	joined(&f);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

/*
 * Once an end is closed, another thread's hold in it can be ended only by
 * whoever takes it (the close, or the end's release): the holder's commit
 * fails EBADF at the handle.  Until then the side's lock stays with the
 * holder's TID, so a signal handler of the closing thread that writes
 * through another (blocking) end of the pipe would wait for it for good,
 * having interrupted the one thread that would give it up.  Here a third
 * thread storms the closing thread with such signals, round after round,
 * the holder committing at a varying time (before the close, or after
 * it): every close finishes and the handlers' writes land.  On the code
 * before, which took pending signals at the return of the close's
 * membarrier with the hold still pending, it hung in each of three runs.
 */
static rp_end *_Atomic storm_w;          /* the handler's end: blocking */
static rp_end *storm_r;
static atomic_uint storm_writes;

static void write_in_handler(int sig)
{
	int err = errno;
	(void)sig;
	rp_end *w = atomic_load(&storm_w);
	/* Never into a full ring: its reader is the thread we interrupt. */
	if (w && rp_nread(storm_r) < 32768 && rp_write(w, "s", 1) == 1)
		atomic_fetch_add(&storm_writes, 1);
	errno = err;
}

struct storm {
	pthread_t target;
	atomic_uint on;          /* 1: storm; 9: quit */
};

static void *storm_signals(void *p)
{
	struct storm *s = p;
	unsigned on;
	while ((on = atomic_load(&s->on)) != STEP_QUIT)
		if (on == 1)
			pthread_kill(s->target, SIGUSR1);
		else
			relax();
	return NULL;
}

struct commit_later {
	rp_end *_Atomic e;
	atomic_uint step;        /* 1: reserve; 2: held; 3: done; 9: quit */
	atomic_uint delay;
};

static void *reserve_then_commit(void *p)
{
	struct commit_later *c = p;
	while (await_step(&c->step, 1, false)) {
		rp_end *e = atomic_load(&c->e);
		CHECK(rp_write_reserve(e, 16) != NULL);
		atomic_store(&c->step, 2);
		relax_n(atomic_load(&c->delay));
		/* Committed before the close, or failing once it took the hold. */
		CHECK(rp_write_commit(e, 16) == 0 || errno == EBADF);
		atomic_store(&c->step, 3);
	}
	return NULL;
}

TEST(close_ending_another_threads_hold_finishes_under_a_storm_of_handlers_that_write)
{
	rp_alarm(60);
	struct hp h;
	rp_end *w;
	/* A blocking write end: a non-blocking write gives up on a held lock
	 * (EAGAIN), where a blocking one waits for it. */
	rp_end *r = pipe_of(&h, 65536, &w, 0);
	storm_r = r;
	struct sigaction sa = { .sa_handler = write_in_handler, .sa_flags = SA_RESTART };
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	struct storm s = { .target = pthread_self() };
	struct commit_later c = { 0 };
	pthread_t ts, tc;
	CHECK(pthread_create(&ts, NULL, storm_signals, &s) == 0);
	CHECK(pthread_create(&tc, NULL, reserve_then_commit, &c) == 0);
	double end = rp_now_ms() + RACE_MS;
	unsigned round;
	for (round = 1; round <= RACE_ROUNDS && rp_now_ms() < end; round++) {
		rp_end *e = rp_open(h.path, O_WRONLY | O_NONBLOCK);
		CHECK(e != NULL);
		atomic_store(&c.e, e);
		atomic_store(&c.delay, round % 509);
		atomic_store(&c.step, 1);
		while (atomic_load(&c.step) == 1)      /* held (or even done) */
			relax();
		atomic_store(&storm_w, w);
		atomic_store(&s.on, 1);
		relax_n(round % 251);
		CHECK(rp_close(e) == 0);
		atomic_store(&s.on, 0);
		atomic_store(&storm_w, NULL);
		while (atomic_load(&c.step) != 3)
			sched_yield();
		char buf[65536];
		while (rp_read(r, buf, sizeof buf) > 0)
			;
	}
	fprintf(stderr, "%u rounds, %u writes from the handler\n", round - 1,
		atomic_load(&storm_writes));
	atomic_store(&s.on, STEP_QUIT);
	atomic_store(&c.step, STEP_QUIT);
	CHECK(pthread_join(ts, NULL) == 0 && pthread_join(tc, NULL) == 0);
	signal(SIGUSR1, SIG_IGN);       /* one may still be on its way */
	CHECK(atomic_load(&storm_writes) > 0);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

/* A close in a threaded process holds signals off and gives the thread
 * its own mask back, whatever it held blocked. */
static void *idle_thread(void *p)
{
	return p;
}

TEST(close_in_a_threaded_process_gives_back_the_signal_mask_it_found)
{
	rp_alarm(30);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, idle_thread, NULL) == 0);
	CHECK(pthread_join(t, NULL) == 0);       /* glibc now counts us threaded */
	sigset_t mine, after;
	sigemptyset(&mine);
	sigaddset(&mine, SIGUSR2);
	sigaddset(&mine, SIGTERM);
	CHECK(pthread_sigmask(SIG_SETMASK, &mine, NULL) == 0);
	rp_end *p[2];
	CHECK(rp_pipe(p) == 0);
	CHECK(rp_close(p[0]) == 0 && rp_close(p[1]) == 0);
	CHECK(pthread_sigmask(SIG_SETMASK, NULL, &after) == 0);
	for (int sig = 1; sig < NSIG; sig++)
		CHECK(sigismember(&after, sig) == sigismember(&mine, sig));
}
