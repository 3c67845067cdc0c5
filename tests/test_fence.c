/*
 * test_fence.c - writers publish head without a barrier of their own, and a
 * reader on its way to sleep supplies it with membarrier(2) (src/fence.c).
 * A reader that may not make that call must send the writers back to full
 * barriers; and across processes, with the readers sleeping at once and
 * nothing but tokens to wake them, no wakeup may go missing.
 */
#include "harness.h"
#include "shmfile.h"
#include "procs.h"

#include <stdbool.h>
#include <stddef.h>

/* Only tokens wake a sleeper here: no spin before it sleeps, no looks at
 * the ring by itself afterwards, so a missed wakeup hangs (and the alarm
 * fails the case). */
static void sleep_at_once_and_trust_tokens(void)
{
	setenv("RINGPIPE_SPIN_NS", "0", 1);
	setenv("RINGPIPE_RECHECK_MS", "0", 1);
}

TEST(reader_refused_membarrier_makes_writers_publish_with_a_barrier)
{
	rp_alarm(30);
	sleep_at_once_and_trust_tokens();
	struct hp h;
	hp_make(&h, 4096);
	rp_end *r = rp_open(h.path, O_RDONLY | O_NONBLOCK);
	CHECK(r != NULL);
	rp_end *w = rp_open(h.path, O_WRONLY);
	CHECK(w != NULL);
	CHECK(rp_set_nonblock(r, 0) == 0);
	CHECK(peek32(h.shm, OFF(heavy_publish)) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		rp_close(w);
		refuse_membarrier();
		char c = 0;
		ssize_t n = rp_read(r, &c, 1);     /* sleeps; its fence fails */
		_exit(n == 1 && c == 'x' ? 0 : 1);
	}
	for (int i = 0; i < 2000 && !peek32(h.shm, OFF(heavy_publish)); i++)
		sleep_ms(5);
	CHECK(peek32(h.shm, OFF(heavy_publish)) == 1);
	CHECK(rp_write(w, "x", 1) == 1);
	rp_wait_ok(pid);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

/* A named pipe opened afresh by a lone end starts with light publishes
 * again: the flag belongs to the session that set it. */
TEST(heavy_publish_is_cleared_when_a_named_pipe_starts_afresh)
{
	rp_alarm(30);
	struct hp h;
	hp_make(&h, 4096);
	poke32(h.shm, OFF(heavy_publish), 1);
	rp_end *r = rp_open(h.path, O_RDONLY | O_NONBLOCK);
	CHECK(r != NULL);
	CHECK(peek32(h.shm, OFF(heavy_publish)) == 0);
	CHECK(rp_close(r) == 0);
	hp_clean(&h);
}

/* Busy for a varying 0-63 us, so that writes land at every point of the
 * other side's way into its sleep: before, during and after it counts
 * itself in. */
static void jitter(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	double until = rp_now_ms() + (double)((*seed >> 16) % 64) / 1000.0;
	while (rp_now_ms() < until)
		;
}

/*
 * Ping-pong between two processes through two pipes, each side writing
 * after a jitter.  A lost wakeup would stop the exchange for good.  The
 * window the fence closes is a store-buffer drain, tens of nanoseconds on
 * x86: 20 runs of this case with the reader's membarrier(2) removed all
 * passed, so it guards the handshake as a whole (registration, the light
 * and heavy publishes, the sleeps); the model's asym-no-fence check is
 * what shows the fence itself is needed.
 */
static void ping_pong(rp_end *in, rp_end *out, int rounds, bool first)
{
	unsigned seed = first ? 1 : 2;
	for (int i = 0; i < rounds; i++) {
		unsigned char b = (unsigned char)i;
		if (first) {
			jitter(&seed);
			CHECK(rp_write(out, &b, 1) == 1);
		}
		unsigned char got = 0;
		CHECK(rp_read(in, &got, 1) == 1);
		CHECK(got == (unsigned char)i);
		if (!first) {
			jitter(&seed);
			CHECK(rp_write(out, &b, 1) == 1);
		}
	}
}

TEST(sleeping_readers_miss_no_write_across_processes)
{
	rp_alarm(60);
	sleep_at_once_and_trust_tokens();
	rp_end *ab[2], *ba[2];
	CHECK(rp_pipe(ab) == 0 && rp_pipe(ba) == 0);
	const int rounds = 3000;
	pid_t pid = fork_child();
	if (pid == 0) {
		rp_alarm(60);
		rp_close(ab[1]);
		rp_close(ba[0]);
		ping_pong(ab[0], ba[1], rounds, false);
		_exit(0);
	}
	rp_close(ab[0]);
	rp_close(ba[1]);
	ping_pong(ba[0], ab[1], rounds, true);
	rp_wait_ok(pid);
	CHECK(rp_close(ab[1]) == 0 && rp_close(ba[0]) == 0);
}
