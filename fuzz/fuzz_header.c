/*
 * fuzz_header.c - libFuzzer target for what a process reads from a peer's
 * shared page: the header check at open, and every index and counter on
 * every call.
 *
 * Part 1 feeds the input, as a header page, to rp_header_valid() with a
 * file size taken from the input, and checks that what it accepts can be
 * mapped safely (capacity a power of two within the file).
 *
 * Part 2 scribbles the input over the live shared page of a real pipe
 * (head, tail, sleeper counts, flags: everything after the identity
 * fields but the lock words) between calls, and drives non-blocking reads, writes,
 * peeks, reserves and nread.  They must never crash, touch memory outside
 * the mappings (ASan), loop for ever (libFuzzer -timeout), or return more
 * than they were asked for.
 *
 *   make fuzz-smoke        (fuzz/fuzz.mk) runs both targets briefly
 */
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define must(c) do { if (!(c)) __builtin_trap(); } while (0)

static rp_end *ends[2];
static struct rp_shared pristine;

static void setup(void)
{
	if (ends[0])
		return;
	must(rp_pipe2(ends, O_NONBLOCK, 4096) == 0);
	memcpy(&pristine, ends[0]->sh, sizeof(pristine));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rp_shared h;
	uint64_t file_size = 0;

	/* Part 1: the header check alone. */
	memset(&h, 0, sizeof(h));
	memcpy(&h, data, size < sizeof(h) ? size : sizeof(h));
	if (size >= sizeof(h) + 8)
		memcpy(&file_size, data + sizeof(h), 8);
	if (rp_header_valid(&h, file_size)) {
		must(h.capacity >= RP_MIN_CAPACITY && h.capacity <= RP_MAX_CAPACITY);
		must((h.capacity & (h.capacity - 1)) == 0);
		must(file_size >= RP_HDR_SIZE + h.capacity);
	}

	/* Part 2: hostile bytes over the live page, between real calls. */
	setup();
	struct rp_shared *sh = ends[0]->sh;
	size_t from = offsetof(struct rp_shared, head);
	size_t room = sizeof(*sh) - from;
	char buf[8192];
	size_t n;

	for (size_t off = 0; off < size; off += room) {
		size_t k = size - off < room ? size - off : room;
		memcpy((char *)sh + from, data + off, k);
		/* Lock words are left out: a garbage one costs a 20 ms takeover
		 * (tests/test_hostile.c covers them), which would starve the
		 * fuzzer of executions. */
		rp_lockword_reset(&sh->wlock);
		rp_lockword_reset(&sh->rlock);
		ssize_t r = rp_write(ends[1], buf, (size_t)(data[off] + 1) * 16);
		must(r <= (ssize_t)((data[off] + 1) * 16));
		r = rp_read(ends[0], buf, sizeof(buf));
		must(r <= (ssize_t)sizeof(buf));
		r = rp_nread(ends[0]);
		must(r <= 4096);
		const void *p = rp_read_peek(ends[0], &n);
		if (p) {
			must(n <= 4096);
			must(rp_read_consume(ends[0], n) == 0);
		}
		void *w = rp_write_reserve(ends[1], 100);
		if (w) {
			memset(w, 0x5a, 100);       /* must be inside our mapping */
			must(rp_write_commit(ends[1], 100) == 0);
		}
	}
	/* Leave a sane page for the next input. */
	memcpy((char *)sh + from, (char *)&pristine + from, room);
	return 0;
}
