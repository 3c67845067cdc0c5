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

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

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
