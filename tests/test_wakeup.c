/*
 * test_wakeup.c - wakeups between live processes that wait for different
 * things.
 *
 * Tokens in the wake pipe are not addressed.  A writer woken for room that
 * is too small for its own write may have taken the token of a writer whose
 * write fits (docs/model/README.md, finding 2); it must hand it back.
 *
 * A sleeper that has been dropped a token stays counted in until it runs;
 * the publishes meanwhile must not drop it more (wait.c, owed()).
 */
#include "harness.h"
#include "shmfile.h"
#include "procs.h"
#include "layout.h"

#include <signal.h>
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

/* A named pipe of CAP bytes with its header mapped, and a blocking reader
 * and writer open on it. */
static const struct rp_shared *open_pair(struct hp *h, rp_end **r, rp_end **w)
{
	hp_make(h, CAP);
	const struct rp_shared *ring = map_ring(h);
	*r = rp_open(h->path, O_RDONLY | O_NONBLOCK);
	CHECK(*r != NULL);
	*w = rp_open(h->path, O_WRONLY);
	CHECK(*w != NULL);
	CHECK(rp_set_nonblock(*r, 0) == 0);
	return ring;
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
	rp_end *r, *w;
	const struct rp_shared *ring = open_pair(&h, &r, &w);

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

/* write(2) calls made by this process so far (/proc/self/io, syscw), or
 * -1 if the kernel does not count them (no task I/O accounting). */
static long long write_calls(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	if (!f)
		return -1;
	char line[128];
	long long n = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "syscw: %lld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* The state letter of /proc/PID/stat. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	CHECK(p != NULL && p[1] == ' ');
	return p[2];
}

/*
 * A reader asleep on the empty ring is stopped (SIGSTOP), so that once
 * woken it cannot run and count itself out: the first of 100 writes drops
 * it a token, the other 99 none (before layout 11, each dropped one more:
 * on a CPU busy with other work, a woken reader can wait a time slice to
 * run, and every write meanwhile paid a write(2)).  Then it runs, and every
 * byte arrives once, in order.
 */
TEST(writes_drop_a_stopped_sleeper_one_token)
{
	rp_alarm(30);
	if (write_calls() < 0)
		SKIP("/proc/self/io does not count write(2) calls here");
	struct hp h;
	rp_end *r, *w;
	const struct rp_shared *ring = open_pair(&h, &r, &w);
	unsigned char *got = shared_mem(1);

	pid_t child = fork_child();
	if (child == 0) {
		CHECK(rp_close(w) == 0);
		CHECK(rp_read(r, got, 1) == 1);
		_exit(0);
	}
	while (rp_sleeper_count(atomic_load(&ring->rd_sleepers)) != 1)
		sleep_ms(1);
	CHECK(kill(child, SIGSTOP) == 0);
	while (proc_state(child) != 'T')
		sleep_ms(1);

	/* The first write drops the reader its token (woken, it stays
	 * stopped, counted in); the other 99 must drop none. */
	unsigned char msg[16];
	memset(msg, 0, sizeof msg);
	CHECK(rp_write(w, msg, sizeof msg) == (ssize_t)sizeof msg);
	long long before = write_calls();
	for (int i = 1; i < 100; i++) {
		memset(msg, i, sizeof msg);
		CHECK(rp_write(w, msg, sizeof msg) == (ssize_t)sizeof msg);
	}
	long long calls = write_calls() - before;
	CHECK(rp_sleeper_count(atomic_load(&ring->rd_sleepers)) == 1);  /* still in */
	fprintf(stderr, "99 writes to a woken, stopped reader: %lld write(2) calls\n",
		calls);
	CHECK(calls == 0);

	CHECK(kill(child, SIGCONT) == 0);
	rp_wait_ok(child);
	CHECK(*got == 0);
	unsigned char rest[100 * sizeof msg];
	size_t left = sizeof rest - 1, at = 0;
	while (left) {
		ssize_t n = rp_read(r, rest + at, left);
		CHECK(n > 0);
		at += (size_t)n;
		left -= (size_t)n;
	}
	for (size_t i = 0; i < at; i++)
		CHECK(rest[i] == (i + 1) / sizeof msg);
	CHECK(rp_close(w) == 0);
	CHECK(rp_close(r) == 0);
	munmap((void *)ring, RP_HDR_SIZE);
	hp_clean(&h);
}
