/*
 * test_hostile.c - a damaged or hostile shared segment.
 *
 * Everything in the ring file is writable by other processes and therefore
 * untrusted.  These cases corrupt the /dev/shm ring of a named pipe with
 * pwrite (identity fields before rp_open, indices and lock words while ends
 * are open) and require a clean error - EINVAL at open, EIO on I/O - or a
 * clean completion, never a crash and never a hang.  Each call that could
 * hang runs under rp_alarm(5) with the default SIGALRM action, so a hang kills
 * the case.
 */
#include "harness.h"
#include <ringpipe.h>
#include "shmfile.h"

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>

/* rp_open must fail with EINVAL, quickly, for every open mode. */
static UNUSED void expect_open_einval(const char *path)
{
	static const int modes[] = { O_RDONLY | O_NONBLOCK, O_WRONLY | O_NONBLOCK, O_RDONLY,
				     O_WRONLY };
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		rp_alarm(5);
		errno = 0;
		rp_end *e = rp_open(path, modes[i]);
		int err = errno;
		alarm(0);
		if (e != NULL || err != EINVAL) {
			fprintf(stderr, "rp_open(flags 0x%x) = %p errno %d (%s), want NULL EINVAL\n",
				modes[i], (void *)e, err, strerror(err));
			CHECK(0);
		}
	}
}

/* An open pair on h: r blocking reader, w blocking writer, `fill` bytes queued. */
static UNUSED void hp_open_pair(struct hp *h, rp_end **r, rp_end **w, size_t fill)
{
	*r = rp_open(h->path, O_RDONLY | O_NONBLOCK);
	CHECK(*r != NULL);
	*w = rp_open(h->path, O_WRONLY);
	CHECK(*w != NULL);
	CHECK(rp_set_nonblock(*r, 0) == 0);
	CHECK(rp_capacity(*r) == h->cap);
	char buf[256];
	memset(buf, 'q', sizeof buf);
	CHECK(fill <= sizeof buf);
	if (fill)
		CHECK(rp_write(*w, buf, fill) == (ssize_t)fill);
}

/* Closing after corruption: must not crash or hang (any result is fine). */
static UNUSED void hp_close_pair(rp_end *r, rp_end *w)
{
	rp_alarm(5);
	rp_close(r);
	rp_close(w);
	alarm(0);
}

#define EXPECT_EIO(expr)                          \
	do {                                      \
		rp_alarm(5);                         \
		CHECK_ERR(expr, EIO);             \
		alarm(0);                         \
	} while (0)

static UNUSED void expect_peek_eio(rp_end *r)
{
	size_t n = 12345;
	rp_alarm(5);
	errno = 0;
	const void *p = rp_read_peek(r, &n);
	int err = errno;
	alarm(0);
	if (p != NULL || err != EIO) {
		fprintf(stderr, "rp_read_peek = %p n=%zu errno %d (%s), want NULL EIO\n", p, n, err,
			strerror(err));
		CHECK(0);
	}
}

static UNUSED void expect_reserve_eio(rp_end *w)
{
	rp_alarm(5);
	errno = 0;
	void *p = rp_write_reserve(w, 1);
	int err = errno;
	alarm(0);
	if (p != NULL || err != EIO) {
		fprintf(stderr, "rp_write_reserve = %p errno %d (%s), want NULL EIO\n", p, err,
			strerror(err));
		CHECK(0);
	}
}

/* head := tail + capacity + 1: more bytes "queued" than the ring holds. */
static UNUSED void scribble_head_past_capacity(struct hp *h)
{
	uint64_t tail = peek64(h->shm, OFF(tail));
	poke64(h->shm, OFF(head), tail + h->cap + 1);
}

static UNUSED uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* A pid that surely belongs to no live process: a reaped child's. */
static UNUSED pid_t dead_pid(void)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(0);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	return pid;
}

/* ------------------------------------------- damaged identity: rp_open */

TEST(open_corrupt_magic_einval)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	poke64(h.shm, OFF(magic), 0x4141414141414141ULL);
	expect_open_einval(h.path);
	poke64(h.shm, OFF(magic), 0);
	expect_open_einval(h.path);
	poke64(h.shm, OFF(magic), RP_MAGIC ^ 1);
	expect_open_einval(h.path);
	hp_clean(&h);
}

TEST(open_corrupt_version_einval)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	static const uint32_t bad[] = { 0, RP_LAYOUT_VERSION + 1, 0xffffffffu, 0x01000000u };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		poke32(h.shm, OFF(version), bad[i]);
		expect_open_einval(h.path);
	}
	hp_clean(&h);
}

TEST(open_corrupt_capacity_einval)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	const uint64_t bad[] = {
		12345, (uint64_t)1 << 60, 0, UINT64_MAX, 1,
		(uint64_t)h.cap * 2,     /* larger than the file holds */
		(uint64_t)h.cap + 1,     /* not a page multiple */
		(uint64_t)RP_MAX_CAPACITY * 2,
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		poke64(h.shm, OFF(capacity), bad[i]);
		expect_open_einval(h.path);
	}
	hp_clean(&h);
}

TEST(open_corrupt_hdr_size_einval)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	static const uint32_t bad[] = { 0, 12345, 64, 0xffffffffu };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		poke32(h.shm, OFF(hdr_size), bad[i]);
		expect_open_einval(h.path);
	}
	hp_clean(&h);
}

/* The ring's header names a different FIFO than the one at the path. */
TEST(open_mismatched_fifo_identity_einval)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	uint64_t ino = peek64(h.shm, OFF(fifo_ino));
	poke64(h.shm, OFF(fifo_ino), ino + 1);
	expect_open_einval(h.path);
	poke64(h.shm, OFF(fifo_ino), ino);
	uint64_t dev = peek64(h.shm, OFF(fifo_dev));
	poke64(h.shm, OFF(fifo_dev), dev ^ 0x55);
	expect_open_einval(h.path);
	hp_clean(&h);
}

/* A ring file shorter than header + capacity (a mapping beyond its end
 * would SIGBUS): EINVAL, at every truncation. */
TEST(open_truncated_shm_file_einval)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	const off_t sizes[] = { (off_t)(RP_HDR_SIZE + h.cap - 1), (off_t)(RP_HDR_SIZE + h.cap / 2),
				RP_HDR_SIZE, RP_HDR_SIZE - 1, 100, 8, 0 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		CHECK(truncate(h.shm, sizes[i]) == 0);
		expect_open_einval(h.path);
	}
	hp_clean(&h);
}

/* The FIFO exists but its ring file is gone: not a ringpipe, EINVAL. */
TEST(open_missing_shm_ring_einval)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	CHECK(unlink(h.shm) == 0);
	expect_open_einval(h.path);
	hp_clean(&h);
}

/* The ring file replaced by garbage of the right size: EINVAL. */
TEST(open_garbage_shm_file_einval)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 4096);
	unsigned char junk[RP_HDR_SIZE];
	uint64_t s = 5;
	for (size_t i = 0; i < sizeof junk; i += 8) {
		uint64_t v = rng_next(&s);
		memcpy(junk + i, &v, 8);
	}
	poke(h.shm, 0, junk, sizeof junk);
	expect_open_einval(h.path);
	hp_clean(&h);
}

/* ---------------------------- damaged indices with ends open: EIO */

TEST(scribbled_head_read_eio)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 100);
	scribble_head_past_capacity(&h);
	char buf[64];
	EXPECT_EIO(rp_read(r, buf, sizeof buf));
	hp_close_pair(r, w);
	hp_clean(&h);
}

TEST(scribbled_head_write_eio)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 100);
	scribble_head_past_capacity(&h);
	EXPECT_EIO(rp_write(w, "x", 1));
	hp_close_pair(r, w);
	hp_clean(&h);
}

TEST(scribbled_head_nread_eio)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 100);
	scribble_head_past_capacity(&h);
	EXPECT_EIO(rp_nread(r));
	hp_close_pair(r, w);
	hp_clean(&h);
}

TEST(scribbled_head_read_peek_eio)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 100);
	scribble_head_past_capacity(&h);
	expect_peek_eio(r);
	hp_close_pair(r, w);
	hp_clean(&h);
}

TEST(scribbled_head_write_reserve_eio)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 100);
	scribble_head_past_capacity(&h);
	expect_reserve_eio(w);
	hp_close_pair(r, w);
	hp_clean(&h);
}

/* An empty ring whose head is scribbled: a blocking read must not sleep
 * forever on what looks like "no data", it must fail with EIO. */
TEST(scribbled_head_on_empty_ring_blocking_read_eio)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 0);
	scribble_head_past_capacity(&h);
	char buf[64];
	EXPECT_EIO(rp_read(r, buf, sizeof buf));
	hp_close_pair(r, w);
	hp_clean(&h);
}

/* tail moved past head (consumed more than was ever written).  Every call
 * that reads tail fails with EIO; a writer whose last-seen tail still shows
 * room does not read it (that is the point of caching it) and may succeed,
 * writing inside the ring. */
TEST(scribbled_tail_past_head_all_calls_eio)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 100);
	uint64_t head = peek64(h.shm, OFF(head));
	poke64(h.shm, OFF(tail), head + 1);
	char buf[64];
	EXPECT_EIO(rp_read(r, buf, sizeof buf));
	EXPECT_EIO(rp_nread(r));
	expect_peek_eio(r);
	errno = 0;                  /* last: a successful write heals the page */
	ssize_t wr = rp_write(w, "x", 1);
	CHECK(wr == 1 || (wr == -1 && errno == EIO));
	hp_close_pair(r, w);
	hp_clean(&h);
}

/* Random 64-bit head and tail values (fixed seed): every call fails EIO. */
TEST(scribbled_random_indices_all_calls_eio)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 100);
	uint64_t s = 0xfeedface;
	char buf[64];
	for (int i = 0; i < 100; i++) {
		uint64_t head = rng_next(&s), tail = rng_next(&s);
		if (i % 3 == 0)
			tail = peek64(h.shm, OFF(tail)); /* only head random */
		if (head - tail <= h.cap)
			continue; /* valid by chance */
		poke64(h.shm, OFF(tail), tail);
		poke64(h.shm, OFF(head), head);
		EXPECT_EIO(rp_nread(r));
		EXPECT_EIO(rp_read(r, buf, sizeof buf));
		EXPECT_EIO(rp_write(w, "x", 1));
		expect_peek_eio(r);
	}
	hp_close_pair(r, w);
	hp_clean(&h);
}

/* A scribbled index is seen by another process too (validation on every
 * load, not a per-process cache): a child that has already used the ring
 * fails with EIO once the parent has scribbled the head. */
TEST(scribbled_head_seen_by_other_process_eio)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 100);
	int go[2], done[2];
	CHECK(pipe(go) == 0 && pipe(done) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		rp_alarm(10);
		char buf[128], c;
		CHECK(rp_read(r, buf, sizeof buf) == 100);
		CHECK(write(done[1], "r", 1) == 1);
		CHECK(read(go[0], &c, 1) == 1);
		EXPECT_EIO(rp_nread(r));
		EXPECT_EIO(rp_read(r, buf, sizeof buf));
		EXPECT_EIO(rp_write(w, "x", 1));
		_exit(0);
	}
	char c;
	CHECK(read(done[0], &c, 1) == 1);
	scribble_head_past_capacity(&h);
	CHECK(write(go[1], "g", 1) == 1);
	rp_wait_ok(pid);
	close(go[0]); close(go[1]); close(done[0]); close(done[1]);
	hp_close_pair(r, w);
	hp_clean(&h);
}

/* ------------------------------------ scribbled lock and wait words */

/* Garbage in the lock words (no live holder can be named by them): reads
 * and writes still complete, or fail cleanly, within a few seconds. */
TEST(scribbled_lock_words_calls_complete_or_fail_cleanly)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	pid_t dead = dead_pid();
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 0);
	const uint32_t garbage[] = {
		0xffffffffu, 0xdeadbeefu, 0x80000000u, 0x40000000u, 0xc0000000u,
		0x3fffffffu, 0x7fffffffu, (uint32_t)dead, (uint32_t)dead | 0x80000000u,
		4194305u, /* above any pid_max */
	};
	for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
		poke32(h.shm, OFF(wlock), garbage[i]);
		poke32(h.shm, OFF(rlock), garbage[i]);
		char buf[64];
		fprintf(stderr, "lock words = 0x%08x; a hang here dies by SIGALRM\n", garbage[i]);
		double t0 = rp_now_ms();
		rp_alarm(5);
		errno = 0;
		ssize_t wr = rp_write(w, "lockword", 8);
		int werr = errno;
		errno = 0;
		ssize_t rd = wr == 8 ? rp_read(r, buf, sizeof buf) : -1;
		int rerr = errno;
		errno = 0;
		ssize_t nr = rp_nread(r);
		alarm(0);
		double t1 = rp_now_ms();
		fprintf(stderr, "lock words 0x%08x: write %zd (%d) read %zd (%d) nread %zd, %.0f ms\n",
			garbage[i], wr, werr, rd, rerr, nr, t1 - t0);
		CHECK(wr == 8 || (wr == -1 && werr != 0));
		if (wr == 8) {
			CHECK(rd == 8 || (rd == -1 && rerr != 0));
			if (rd == 8)
				CHECK(memcmp(buf, "lockword", 8) == 0);
		}
		CHECK(t1 - t0 < rp_ms(5000));
	}
	hp_close_pair(r, w);
	hp_clean(&h);
}

/* Garbage in the sleeper / wake bookkeeping words: calls still complete. */
TEST(scribbled_sleeper_words_calls_complete)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 0);
	const uint64_t garbage[] = { ~0ULL, 0x12345678u, 0x80000000u, 1,
				     0xffffffff00000000ULL };
	for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
		poke64(h.shm, OFF(wr_sleepers), garbage[i]);
		poke64(h.shm, OFF(rd_sleepers), garbage[i]);
		poke32(h.shm, OFF(gate_closed), (uint32_t)garbage[i]);
		poke32(h.shm, OFF(rd_armed), (uint32_t)garbage[i]);
		poke32(h.shm, OFF(rd_closes), (uint32_t)garbage[i]);
		for (int s = 0; s < RP_SLEEP_SLOTS; s += 7) {
			poke32(h.shm, OFF(rd_who[s]), (uint32_t)garbage[i]);
			poke32(h.shm, OFF(wr_who[s]), (uint32_t)garbage[i]);
		}
		char buf[64];
		rp_alarm(5);
		errno = 0;
		ssize_t wr = rp_write(w, "sleepers", 8);
		int werr = errno;
		errno = 0;
		ssize_t rd = wr == 8 ? rp_read(r, buf, sizeof buf) : -1;
		int rerr = errno;
		alarm(0);
		CHECK(wr == 8 || (wr == -1 && werr != 0));
		if (wr == 8)
			CHECK(rd == 8 || (rd == -1 && rerr != 0));
	}
	hp_close_pair(r, w);
	hp_clean(&h);
}

/* A lock word naming a dead holder while a peer process blocks behind it:
 * the blocked writer (child, ring full) gets through once the parent reads. */
TEST(dead_holder_in_writer_lock_does_not_block_writers)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 4096);
	pid_t dead = dead_pid();
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 0);
	poke32(h.shm, OFF(wlock), (uint32_t)dead);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		rp_alarm(10);
		rp_close(r);
		static char buf[8192];
		memset(buf, 'd', sizeof buf);
		CHECK(rp_write(w, buf, sizeof buf) == (ssize_t)sizeof buf);
		rp_close(w);
		_exit(0);
	}
	CHECK(rp_close(w) == 0);
	static char buf[8192];
	size_t got = 0;
	ssize_t n;
	rp_alarm(10);
	while ((n = rp_read(r, buf, sizeof buf)) > 0)
		got += (size_t)n;
	rp_alarm(20);
	CHECK(n == 0);
	CHECK(got == 8192);
	rp_wait_ok(pid);
	CHECK(rp_close(r) == 0);
	hp_clean(&h);
}

/* Lock words that name a live process which has nothing to do with the
 * pipe (a sleeping child that never opened it) are garbage too: the calls
 * complete or fail cleanly within a few seconds, no hang.  (A process whose
 * /proc/PID/maps we may not read, such as another user's, cannot be told
 * from a real holder and is waited for: see docs/DESIGN.md.) */
TEST(scribbled_lock_word_naming_unrelated_live_process_no_hang)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 0);
	pid_t idle = fork();
	CHECK(idle >= 0);
	if (idle == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		rp_alarm(30);
		for (;;)
			pause();
	}
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 0);
	const uint32_t live[] = { (uint32_t)idle, (uint32_t)idle | 0x80000000u };
	for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
		poke32(h.shm, OFF(wlock), live[i]);
		poke32(h.shm, OFF(rlock), live[i]);
		char buf[64];
		fprintf(stderr, "lock words = 0x%08x (a live process); a hang here dies by SIGALRM\n",
			live[i]);
		rp_alarm(5);
		errno = 0;
		ssize_t wr = rp_write(w, "livelock", 8);
		int werr = errno;
		errno = 0;
		ssize_t rd = rp_read(r, buf, sizeof buf);
		int rerr = errno;
		alarm(0);
		CHECK(wr == 8 || (wr == -1 && werr != 0));
		CHECK(rd >= 0 || (rd == -1 && rerr != 0));
	}
	hp_close_pair(r, w);
	kill(idle, SIGKILL);
	waitpid(idle, NULL, 0);
	hp_clean(&h);
}

/* The identity fields are validated once, at open: scribbling them while
 * ends are open must not crash the I/O that follows (it may go on using the
 * validated copy, or fail cleanly). */
TEST(scribbled_identity_with_ends_open_no_crash)
{
	rp_alarm(20);
	struct hp h;
	hp_make(&h, 4096);
	rp_end *r, *w;
	hp_open_pair(&h, &r, &w, 0);
	poke64(h.shm, OFF(magic), 0);
	poke32(h.shm, OFF(version), 0xffffffffu);
	poke32(h.shm, OFF(hdr_size), 1);
	poke64(h.shm, OFF(capacity), (uint64_t)1 << 60);
	static char big[3 * 4096], out[3 * 4096];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)(i * 7);
	rp_alarm(5);
	/* 3 rounds of 3000 bytes through the 4096-byte ring: crosses the wrap */
	for (int round = 0; round < 3; round++) {
		errno = 0;
		ssize_t wr = rp_write(w, big + round * 3000, 3000);
		if (wr == -1) {
			CHECK(errno != 0);
			break;
		}
		CHECK(wr == 3000);
		size_t got = 0;
		while (got < 3000) {
			ssize_t n = rp_read(r, out + got, 3000 - got);
			if (n == -1) {
				CHECK(errno != 0);
				break;
			}
			CHECK(n > 0);
			got += (size_t)n;
		}
		if (got == 3000)
			CHECK(memcmp(out, big + round * 3000, 3000) == 0);
	}
	alarm(0);
	CHECK(rp_capacity(r) == 4096); /* the validated copy, not the scribble */
	hp_close_pair(r, w);
	hp_clean(&h);
}

/* The companion FIFOs of a named pipe missing or replaced by a regular
 * file: rp_open fails with EINVAL, without hanging. */
TEST(open_with_damaged_companion_fifos_einval)
{
	rp_alarm(20);
	static const char *const sfx[] = { ".wake", ".gate" };
	for (int i = 0; i < 2; i++) {
		struct hp h;
		hp_make(&h, 0);
		char comp[300];
		snprintf(comp, sizeof comp, "%s%s", h.shm, sfx[i]);
		CHECK(unlink(comp) == 0);
		expect_open_einval(h.path);
		int fd = open(comp, O_CREAT | O_EXCL | O_WRONLY, 0600);
		CHECK(fd >= 0);
		close(fd);
		expect_open_einval(h.path);
		unlink(comp);
		hp_clean(&h);
	}
}
