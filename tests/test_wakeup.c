/*
 * test_wakeup.c - wakeups between live processes that wait for different
 * things.
 *
 * Tokens in the wake pipe are not addressed.  A writer woken for room that
 * is too small for its own write may have taken the token of a writer whose
 * write fits (docs/model/README.md, finding 2); it must hand it back.
 */
#include "harness.h"
#include "shmfile.h"
#include "procs.h"
#include "layout.h"

#include <sys/mman.h>

#define CAP    4096
#define ROUNDS 20
#define FIT_MS 500.0    /* a woken writer runs in well under a millisecond */

static const struct rp_shared *map_ring(const struct hp *h)
{
	int fd = open(h->shm, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	void *p = mmap(NULL, RP_HDR_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	close(fd);
	return p;
}

static void read_exactly(rp_end *r, size_t n)
{
	static unsigned char buf[CAP];
	while (n) {
		ssize_t got = rp_read(r, buf, n < sizeof buf ? n : sizeof buf);
		CHECK(got > 0);
		n -= (size_t)got;
	}
}

/*
 * Each round: the ring is full and a child S sleeps in a 1-byte write.  The
 * reader frees one byte, which owes S a token, and reads no more.  A child B,
 * watching the reader's index, starts an atomic write of a whole ring the
 * moment it moves: it finds too little room and goes to sleep while S is
 * still waking, so B's read(2) is usually served S's token first.  S's byte
 * must go in all the same, in every round.
 */
TEST(writer_that_fits_wakes_while_bigger_writer_sleeps)
{
	rp_alarm(60);
	/* No spin: B heads straight for read(2), where the race is. */
	CHECK(setenv("RINGPIPE_SPIN_NS", "0", 1) == 0);
	struct { _Atomic int small_done; } *sh = shared_mem(sizeof *sh);
	static unsigned char big[CAP];
	struct hp h;
	hp_make(&h, CAP);
	const struct rp_shared *ring = map_ring(&h);
	rp_end *r = rp_open(h.path, O_RDONLY | O_NONBLOCK);
	CHECK(r != NULL);
	rp_end *w = rp_open(h.path, O_WRONLY);
	CHECK(w != NULL);
	CHECK(rp_set_nonblock(r, 0) == 0);

	for (int round = 0; round < ROUNDS; round++) {
		atomic_store(&sh->small_done, 0);
		CHECK(rp_write(w, big, CAP) == CAP);

		pid_t small = fork_child();
		if (small == 0) {
			CHECK(rp_write(w, "s", 1) == 1);
			atomic_store(&sh->small_done, 1);
			_exit(0);
		}
		while (rp_sleeper_count(atomic_load(&ring->wr_sleepers)) != 1)
			sleep_ms(1);

		uint64_t tail = atomic_load(&ring->tail);
		pid_t bigw = fork_child();
		if (bigw == 0) {
			while (atomic_load(&ring->tail) == tail)
				;
			CHECK(rp_write(w, big, CAP) == CAP);
			_exit(0);
		}
		sleep_ms(20);                  /* let B reach its watch */
		read_exactly(r, 1);

		double t0 = rp_now_ms();
		while (!atomic_load(&sh->small_done) && rp_now_ms() - t0 < rp_ms(FIT_MS))
			sleep_ms(1);
		if (!atomic_load(&sh->small_done))
			fprintf(stderr, "round %d: the 1-byte writer still asleep "
				"after %.0f ms with room for it\n", round, rp_now_ms() - t0);
		CHECK(atomic_load(&sh->small_done));

		read_exactly(r, CAP);          /* the rest, and S's byte */
		read_exactly(r, CAP);          /* B's record */
		rp_wait_ok(small);
		rp_wait_ok(bigw);
	}
	CHECK(rp_close(w) == 0);
	CHECK(rp_close(r) == 0);
	munmap((void *)ring, RP_HDR_SIZE);
	hp_clean(&h);
}
