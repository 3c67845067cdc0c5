/*
 * test_stress.c - volume and concurrency: atomic records from many writer
 * processes, long checksummed streams through tiny and huge rings, many
 * readers and writers at once, and the zero-copy path.
 *
 * Every case is named stress_* and sized to stay under 60 s with sanitizers.
 */
#include "harness.h"
#include <ringpipe.h>

#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#define UNUSED __attribute__((unused))
#define STRESS_ALARM 110 /* hang guard only; a healthy run is far shorter */
#define RP_CHILD_ALARM (STRESS_ALARM + 10)
#include "procs.h"

/* ---------------------------------------------------------------- helpers */

static UNUSED uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/*
 * A streaming 64-bit checksum, word at a time (FNV-style multiply and
 * xor-shift per 8 bytes), independent of how the stream is cut into chunks.
 */
struct shash { uint64_t h, acc; unsigned nacc; };

static void sh_init(struct shash *s)
{
	s->h = 0xcbf29ce484222325ULL;
	s->acc = 0;
	s->nacc = 0;
}

static inline void sh_mix(struct shash *s, uint64_t w)
{
	s->h = (s->h ^ w) * 0x100000001b3ULL;
	s->h ^= s->h >> 29;
}

static void sh_update(struct shash *s, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	while (n > 0 && (s->nacc != 0 || n < 8)) {
		s->acc |= (uint64_t)*p++ << (8 * s->nacc);
		n--;
		if (++s->nacc == 8) {
			sh_mix(s, s->acc);
			s->acc = 0;
			s->nacc = 0;
		}
	}
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		sh_mix(s, w);
		p += 8;
		n -= 8;
	}
	while (n > 0) {
		s->acc |= (uint64_t)*p++ << (8 * s->nacc);
		n--;
		s->nacc++;
	}
}

static uint64_t sh_final(const struct shash *s)
{
	uint64_t h = s->h;
	if (s->nacc)
		h = (h ^ s->acc ^ ((uint64_t)s->nacc << 56)) * 0x100000001b3ULL;
	return h ^ (h >> 32);
}

/*
 * A deterministic byte stream: byte i is pat[i % PAT_PERIOD].  The period is
 * prime so that a chunk delivered at the wrong offset never matches.
 */
#define PAT_PERIOD 1048573u
static unsigned char *pattern_make(size_t extra)
{
	size_t n = PAT_PERIOD + extra;
	unsigned char *p = malloc(n);
	CHECK(p != NULL);
	uint64_t s = 0x1234;
	for (size_t i = 0; i < PAT_PERIOD; i += 8) {
		uint64_t w = rng_next(&s);
		memcpy(p + i, &w, PAT_PERIOD - i < 8 ? PAT_PERIOD - i : 8);
	}
	for (size_t i = PAT_PERIOD; i < n; i++)
		p[i] = p[i - PAT_PERIOD];
	return p;
}

static UNUSED void write_all(rp_end *w, const void *buf, size_t n)
{
	const char *b = buf;
	while (n > 0) {
		ssize_t r = rp_write(w, b, n);
		CHECK(r > 0);
		b += r;
		n -= (size_t)r;
	}
}

/*
 * Stream `total` bytes of the pattern through a pipe: a writer child writes
 * chunks of 1..max_wr bytes and publishes the FNV of what it wrote; the
 * parent reads chunks of 1..max_rd bytes, compares every byte with the
 * pattern at its offset, and checks count and checksum.
 */
static UNUSED void stream_through(size_t capacity, uint64_t total, size_t max_wr, size_t max_rd)
{
	struct { uint64_t wsum; uint64_t wtotal; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, capacity) == 0);
	CHECK(rp_capacity(e[0]) >= capacity);
	CHECK(rp_capacity(e[1]) == rp_capacity(e[0]));
	size_t extra = max_wr > max_rd ? max_wr : max_rd;
	unsigned char *pat = pattern_make(extra);
	double t0 = rp_now_ms();
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		uint64_t off = 0, s = 42;
		struct shash h;
		sh_init(&h);
		while (off < total) {
			size_t n = 1 + rng_next(&s) % max_wr;
			if (n > total - off)
				n = (size_t)(total - off);
			const unsigned char *src = pat + off % PAT_PERIOD;
			write_all(e[1], src, n);
			sh_update(&h, src, n);
			off += n;
		}
		sh->wsum = sh_final(&h);
		sh->wtotal = off;
		CHECK(rp_close(e[1]) == 0);
		_exit(0);
	}
	CHECK(rp_close(e[1]) == 0);
	unsigned char *buf = malloc(max_rd);
	CHECK(buf != NULL);
	uint64_t off = 0, s = 4242;
	struct shash h;
	sh_init(&h);
	for (;;) {
		size_t want = 1 + rng_next(&s) % max_rd;
		ssize_t r = rp_read(e[0], buf, want);
		CHECK(r >= 0);
		if (r == 0)
			break;
		CHECK((size_t)r <= want);
		CHECK(off + (uint64_t)r <= total);
		if (memcmp(buf, pat + off % PAT_PERIOD, (size_t)r) != 0) {
			size_t i = 0;
			while (buf[i] == pat[(off + i) % PAT_PERIOD])
				i++;
			fprintf(stderr, "stream corrupt at byte %llu\n", (unsigned long long)(off + i));
			CHECK(0);
		}
		sh_update(&h, buf, (size_t)r);
		off += (uint64_t)r;
	}
	rp_wait_ok(pid);
	double t1 = rp_now_ms();
	fprintf(stderr, "%llu bytes through a %zu-byte ring in %.0f ms (%.2f GB/s)\n",
		(unsigned long long)off, rp_capacity(e[0]), t1 - t0, off / ((t1 - t0) * 1e6));
	CHECK(off == total);
	CHECK(sh->wtotal == total);
	CHECK(sh_final(&h) == sh->wsum);
	CHECK(rp_close(e[0]) == 0);
	free(buf);
	free(pat);
	munmap(sh, sizeof *sh);
}

/* --- self-describing records (<= RP_PIPE_BUF, written in one rp_write) --- */

#define REC_MAGIC 0x31434552u /* "REC1" */
struct rec_hdr {
	uint32_t magic;
	uint16_t writer;
	uint16_t len; /* whole record, header included */
	uint32_t seq;
	uint32_t pad;
	uint64_t sum; /* hash of the record with sum = 0 */
};
_Static_assert(sizeof(struct rec_hdr) == 24, "record header");

static uint64_t hash64(const void *p, size_t n, uint64_t h)
{
	const unsigned char *b = p;
	h ^= 0xcbf29ce484222325ULL;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
		b += 8;
		n -= 8;
	}
	while (n--)
		h = (h ^ *b++) * 0x100000001b3ULL;
	return h ^ (h >> 32);
}

/* Record sizes: mostly small, many mid, some large, 1 in 32 exactly PIPE_BUF. */
static size_t rec_len(uint64_t *s)
{
	uint64_t r = rng_next(s);
	unsigned k = (unsigned)(r % 32);
	r >>= 8;
	if (k == 0)
		return RP_PIPE_BUF;
	if (k < 5)
		return 1024 + (size_t)(r % (RP_PIPE_BUF - 1024));
	if (k < 12)
		return 128 + (size_t)(r % 896);
	return sizeof(struct rec_hdr) + (size_t)(r % 104);
}

static void make_record(unsigned char *buf, unsigned writer, uint32_t seq, size_t len)
{
	struct rec_hdr h = { REC_MAGIC, (uint16_t)writer, (uint16_t)len, seq, 0, 0 };
	memcpy(buf, &h, sizeof h);
	uint64_t s = ((uint64_t)writer << 32) ^ seq;
	for (size_t i = sizeof h; i < len; i += 8) {
		uint64_t w = rng_next(&s);
		memcpy(buf + i, &w, len - i < 8 ? len - i : 8);
	}
	h.sum = hash64(buf, len, 0);
	memcpy(buf, &h, sizeof h);
}

/* ------------------------------------------------------------------ cases */

/*
 * 4 writer processes x 100,000 self-describing records of 24..4096 bytes
 * (each one rp_write, so each must be atomic); one reader checks that no
 * record is torn or interleaved, each writer's order holds, none is missing.
 */
#define SW_WRITERS 4

static void records_through(size_t capacity, uint32_t nrec)
{
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, capacity) == 0);
	double t0 = rp_now_ms();
	pid_t w[SW_WRITERS];
	for (unsigned id = 0; id < SW_WRITERS; id++) {
		w[id] = fork_child();
		if (w[id] == 0) {
			CHECK(rp_close(e[0]) == 0);
			unsigned char buf[RP_PIPE_BUF];
			uint64_t s = 77 + id;
			for (uint32_t seq = 0; seq < nrec; seq++) {
				size_t len = rec_len(&s);
				make_record(buf, id, seq, len);
				CHECK(rp_write(e[1], buf, len) == (ssize_t)len);
			}
			CHECK(rp_close(e[1]) == 0);
			_exit(0);
		}
	}
	CHECK(rp_close(e[1]) == 0);

	size_t cap = 65536 + RP_PIPE_BUF;
	unsigned char *buf = malloc(cap);
	CHECK(buf != NULL);
	uint32_t next[SW_WRITERS] = { 0 };
	uint64_t bytes = 0, records = 0, s = 3;
	size_t have = 0;
	for (;;) {
		/* read sizes vary so that reads split records anywhere */
		size_t want = 1 + rng_next(&s) % (cap - have);
		ssize_t n = rp_read(e[0], buf + have, want);
		CHECK(n >= 0);
		if (n == 0)
			break;
		have += (size_t)n;
		bytes += (uint64_t)n;
		size_t pos = 0;
		while (have - pos >= sizeof(struct rec_hdr)) {
			struct rec_hdr h;
			memcpy(&h, buf + pos, sizeof h);
			if (h.magic != REC_MAGIC || h.writer >= SW_WRITERS ||
			    h.len < sizeof h || h.len > RP_PIPE_BUF) {
				fprintf(stderr, "torn record at stream byte %llu\n",
					(unsigned long long)(bytes - (uint64_t)(have - pos)));
				CHECK(0);
			}
			if (have - pos < h.len)
				break;
			uint64_t sum = h.sum;
			struct rec_hdr z = h;
			z.sum = 0;
			memcpy(buf + pos, &z, sizeof z);
			if (hash64(buf + pos, h.len, 0) != sum) {
				fprintf(stderr, "interleaved/corrupt record: writer %u seq %u len %u\n",
					h.writer, h.seq, h.len);
				CHECK(0);
			}
			if (h.seq != next[h.writer]) {
				fprintf(stderr, "writer %u: seq %u, want %u\n", h.writer, h.seq,
					next[h.writer]);
				CHECK(0);
			}
			next[h.writer]++;
			records++;
			pos += h.len;
		}
		memmove(buf, buf + pos, have - pos);
		have -= pos;
	}
	CHECK(have == 0);
	for (unsigned id = 0; id < SW_WRITERS; id++) {
		rp_wait_ok(w[id]);
		CHECK(next[id] == nrec);
	}
	double t1 = rp_now_ms();
	fprintf(stderr, "%llu records, %llu bytes through a %zu-byte ring in %.0f ms\n",
		(unsigned long long)records, (unsigned long long)bytes, rp_capacity(e[0]), t1 - t0);
	CHECK(records == (uint64_t)SW_WRITERS * nrec);
	free(buf);
	CHECK(rp_close(e[0]) == 0);
}

/*
 * 4 writer processes x 100,000 self-describing records of 24..4096 bytes
 * (each one rp_write, so each must be atomic); one reader checks that no
 * record is torn or interleaved, each writer's order holds, none is missing.
 */
TEST(stress_four_writers_records_atomic_ordered_complete)
{
	rp_alarm(STRESS_ALARM);
	records_through(0, 100000);
}

/* The same through the smallest ring (4 KiB): a 4096-byte record needs the
 * whole ring, and must still never be split or interleaved. */
TEST(stress_four_writers_records_atomic_through_min_ring)
{
	rp_alarm(STRESS_ALARM);
	records_through(RP_MIN_CAPACITY, 25000);
}

/* 256 MiB, checksummed and compared byte for byte, through a 4 KiB ring. */
TEST(stress_256mib_checksum_through_4k_ring)
{
	rp_alarm(STRESS_ALARM);
	stream_through(4096, 256ull << 20, 16384, 16384);
}

/* 256 MiB through a 1 GiB ring, in chunks of up to 8 MiB. */
TEST(stress_256mib_through_1gib_ring)
{
	rp_alarm(STRESS_ALARM);
	stream_through((size_t)1 << 30, 256ull << 20, 8u << 20, 8u << 20);
}

/* 256 MiB through the default ring, with reads and writes of 1..64 KiB. */
TEST(stress_256mib_checksum_through_default_ring)
{
	rp_alarm(STRESS_ALARM);
	stream_through(0, 256ull << 20, 65536, 65536);
}

/*
 * 4 writers and 4 readers on one pipe, all processes, random sizes on both
 * sides.  Every byte written is read exactly once: byte count and byte-value
 * sum are conserved.
 */
#define MM_WRITERS 4
#define MM_READERS 4
#define MM_PER_WRITER (32ull << 20)

TEST(stress_many_readers_many_writers_bytes_conserved)
{
	rp_alarm(STRESS_ALARM);
	struct {
		uint64_t wcount[MM_WRITERS], wsum[MM_WRITERS];
		uint64_t rcount[MM_READERS], rsum[MM_READERS];
	} *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	unsigned char *pat = pattern_make(20000);
	pid_t w[MM_WRITERS], r[MM_READERS];
	for (int i = 0; i < MM_WRITERS; i++) {
		w[i] = fork_child();
		if (w[i] == 0) {
			CHECK(rp_close(e[0]) == 0);
			uint64_t s = 500 + (uint64_t)i, off = (uint64_t)i * 77777, count = 0, sum = 0;
			while (count < MM_PER_WRITER) {
				size_t n = 1 + rng_next(&s) % 20000;
				if (n > MM_PER_WRITER - count)
					n = (size_t)(MM_PER_WRITER - count);
				const unsigned char *src = pat + off % PAT_PERIOD;
				ssize_t k = rp_write(e[1], src, n);
				CHECK(k > 0);
				for (ssize_t j = 0; j < k; j++)
					sum += src[j];
				count += (uint64_t)k;
				off += (uint64_t)k;
			}
			sh->wcount[i] = count;
			sh->wsum[i] = sum;
			_exit(0);
		}
	}
	for (int i = 0; i < MM_READERS; i++) {
		r[i] = fork_child();
		if (r[i] == 0) {
			CHECK(rp_close(e[1]) == 0);
			static unsigned char buf[20000];
			uint64_t s = 900 + (uint64_t)i, count = 0, sum = 0;
			for (;;) {
				ssize_t k = rp_read(e[0], buf, 1 + rng_next(&s) % sizeof buf);
				CHECK(k >= 0);
				if (k == 0)
					break;
				for (ssize_t j = 0; j < k; j++)
					sum += buf[j];
				count += (uint64_t)k;
			}
			sh->rcount[i] = count;
			sh->rsum[i] = sum;
			_exit(0);
		}
	}
	CHECK(rp_close(e[0]) == 0);
	CHECK(rp_close(e[1]) == 0);
	for (int i = 0; i < MM_WRITERS; i++)
		rp_wait_ok(w[i]);
	for (int i = 0; i < MM_READERS; i++)
		rp_wait_ok(r[i]);
	uint64_t wc = 0, ws = 0, rc = 0, rs = 0;
	for (int i = 0; i < MM_WRITERS; i++) {
		wc += sh->wcount[i];
		ws += sh->wsum[i];
	}
	for (int i = 0; i < MM_READERS; i++) {
		rc += sh->rcount[i];
		rs += sh->rsum[i];
		fprintf(stderr, "reader %d: %llu bytes\n", i, (unsigned long long)sh->rcount[i]);
	}
	CHECK(wc == MM_WRITERS * MM_PER_WRITER);
	CHECK(rc == wc);
	CHECK(rs == ws);
	free(pat);
}

/*
 * The zero-copy path under load: reserve/commit spans of 1..capacity bytes,
 * peek/consume random amounts, 128 MiB through a 64 KiB ring, checked byte
 * for byte and by checksum.
 */
TEST(stress_zero_copy_stream_checksum)
{
	rp_alarm(STRESS_ALARM);
	const uint64_t total = 128ull << 20;
	struct { uint64_t wsum; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 65536) == 0);
	size_t cap = rp_capacity(e[1]);
	unsigned char *pat = pattern_make(cap);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		uint64_t off = 0, s = 11;
		struct shash h;
		sh_init(&h);
		while (off < total) {
			size_t n = 1 + rng_next(&s) % cap;
			if (n > total - off)
				n = (size_t)(total - off);
			unsigned char *p = rp_write_reserve(e[1], n);
			CHECK(p != NULL);
			memcpy(p, pat + off % PAT_PERIOD, n);
			CHECK(rp_write_commit(e[1], n) == 0);
			sh_update(&h, pat + off % PAT_PERIOD, n);
			off += n;
		}
		sh->wsum = sh_final(&h);
		CHECK(rp_close(e[1]) == 0);
		_exit(0);
	}
	CHECK(rp_close(e[1]) == 0);
	uint64_t off = 0, s = 12;
	struct shash h;
	sh_init(&h);
	for (;;) {
		size_t n = 0;
		const unsigned char *p = rp_read_peek(e[0], &n);
		if (p == NULL) {
			CHECK(n == 0);
			break;
		}
		CHECK(n > 0 && n <= cap);
		size_t k = 1 + rng_next(&s) % n;
		CHECK(off + k <= total);
		if (memcmp(p, pat + off % PAT_PERIOD, k) != 0) {
			fprintf(stderr, "zero-copy stream corrupt near byte %llu\n",
				(unsigned long long)off);
			CHECK(0);
		}
		sh_update(&h, p, k);
		CHECK(rp_read_consume(e[0], k) == 0);
		off += k;
	}
	rp_wait_ok(pid);
	CHECK(off == total);
	CHECK(sh_final(&h) == sh->wsum);
	free(pat);
	CHECK(rp_close(e[0]) == 0);
}

/*
 * Nonblocking ends driven by poll(2) on rp_fileno: 2 writers and 2 readers,
 * all processes.  Every EAGAIN is followed by poll(); a poll that waits 5 s
 * while the other side is busy is a lost wakeup and fails the case.  Byte
 * count and byte sum are conserved; readers finish on EOF (POLLHUP).
 */
#define NB_WRITERS 2
#define NB_READERS 2
#define NB_PER_WRITER (32ull << 20)

TEST(stress_nonblocking_poll_driven_ends_conserve_bytes)
{
	rp_alarm(STRESS_ALARM);
	struct {
		uint64_t wcount[NB_WRITERS], wsum[NB_WRITERS];
		uint64_t rcount[NB_READERS], rsum[NB_READERS];
	} *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe2(e, O_NONBLOCK, 16384) == 0);
	unsigned char *pat = pattern_make(20000);
	pid_t w[NB_WRITERS], r[NB_READERS];
	for (int i = 0; i < NB_WRITERS; i++) {
		w[i] = fork_child();
		if (w[i] == 0) {
			CHECK(rp_close(e[0]) == 0);
			struct pollfd pfd = { .fd = rp_fileno(e[1]), .events = POLLOUT };
			CHECK(pfd.fd >= 0);
			uint64_t s = 600 + (uint64_t)i, off = (uint64_t)i * 4099, count = 0, sum = 0;
			while (count < NB_PER_WRITER) {
				size_t n = 1 + rng_next(&s) % 20000;
				if (n > NB_PER_WRITER - count)
					n = (size_t)(NB_PER_WRITER - count);
				const unsigned char *src = pat + off % PAT_PERIOD;
				ssize_t k = rp_write(e[1], src, n);
				if (k < 0) {
					CHECK(errno == EAGAIN);
					pfd.revents = 0;
					int pr = poll(&pfd, 1, 5000);
					if (pr != 1) {
						fprintf(stderr, "writer %d: poll(POLLOUT) = %d after 5 s\n", i, pr);
						CHECK(0);
					}
					CHECK(!(pfd.revents & (POLLERR | POLLNVAL)));
					continue;
				}
				CHECK(k > 0);
				for (ssize_t j = 0; j < k; j++)
					sum += src[j];
				count += (uint64_t)k;
				off += (uint64_t)k;
			}
			sh->wcount[i] = count;
			sh->wsum[i] = sum;
			_exit(0);
		}
	}
	for (int i = 0; i < NB_READERS; i++) {
		r[i] = fork_child();
		if (r[i] == 0) {
			CHECK(rp_close(e[1]) == 0);
			struct pollfd pfd = { .fd = rp_fileno(e[0]), .events = POLLIN };
			CHECK(pfd.fd >= 0);
			static unsigned char buf[20000];
			uint64_t s = 700 + (uint64_t)i, count = 0, sum = 0;
			for (;;) {
				ssize_t k = rp_read(e[0], buf, 1 + rng_next(&s) % sizeof buf);
				if (k < 0) {
					CHECK(errno == EAGAIN);
					pfd.revents = 0;
					int pr = poll(&pfd, 1, 5000);
					if (pr != 1) {
						fprintf(stderr, "reader %d: poll(POLLIN) = %d after 5 s\n", i, pr);
						CHECK(0);
					}
					continue;
				}
				if (k == 0)
					break;
				for (ssize_t j = 0; j < k; j++)
					sum += buf[j];
				count += (uint64_t)k;
			}
			sh->rcount[i] = count;
			sh->rsum[i] = sum;
			_exit(0);
		}
	}
	CHECK(rp_close(e[0]) == 0);
	CHECK(rp_close(e[1]) == 0);
	for (int i = 0; i < NB_WRITERS; i++)
		rp_wait_ok(w[i]);
	for (int i = 0; i < NB_READERS; i++)
		rp_wait_ok(r[i]);
	uint64_t wc = 0, ws = 0, rc = 0, rs = 0;
	for (int i = 0; i < NB_WRITERS; i++) {
		wc += sh->wcount[i];
		ws += sh->wsum[i];
	}
	for (int i = 0; i < NB_READERS; i++) {
		rc += sh->rcount[i];
		rs += sh->rsum[i];
	}
	CHECK(wc == NB_WRITERS * NB_PER_WRITER);
	CHECK(rc == wc);
	CHECK(rs == ws);
	free(pat);
}
