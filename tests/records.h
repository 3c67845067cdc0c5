/*
 * records.h - records that check a byte stream shared by several writers:
 * each write is one record (writer id, sequence number, length, then
 * bytes the three determine), at most RP_PIPE_BUF long so that it is
 * atomic, and a reader checks that every record arrives whole and each
 * writer's in order.  Include after harness.h.
 */
#ifndef RP_RECORDS_H
#define RP_RECORDS_H

#include <ringpipe.h>
#include <stdint.h>

#ifndef UNUSED
#define UNUSED __attribute__((unused))
#endif

struct rec { uint32_t id, seq, len; };

static size_t rec_fill(unsigned char *buf, uint32_t id, uint32_t seq)
{
	struct rec h = { id, seq, 1 + (id * 131 + seq * 7) % (RP_PIPE_BUF - sizeof h) };
	memcpy(buf, &h, sizeof h);
	for (uint32_t i = 0; i < h.len; i++)
		buf[sizeof h + i] = (unsigned char)(id * 31 + seq + i);
	return sizeof h + h.len;
}

/* Writer id's records from..from+n-1. */
static UNUSED void write_recs(rp_end *w, uint32_t id, uint32_t from, uint32_t n)
{
	unsigned char buf[RP_PIPE_BUF];
	for (uint32_t s = from; s < from + n; s++) {
		size_t len = rec_fill(buf, id, s);
		CHECK(rp_write(w, buf, len) == (ssize_t)len);
	}
}

static UNUSED void read_exact(rp_end *r, void *p, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t k = rp_read(r, (char *)p + got, n - got);
		CHECK(k > 0);
		got += (size_t)k;
	}
}

/* Read records of up to 8 writers until EOF: each whole, each writer's in
 * order.  Returns how many. */
static UNUSED uint32_t check_recs(rp_end *r, uint32_t nwriters)
{
	uint32_t next[8] = { 0 }, total = 0;
	unsigned char buf[RP_PIPE_BUF], want[RP_PIPE_BUF];
	struct rec h;
	CHECK(nwriters <= 8);
	for (;;) {
		ssize_t k = rp_read(r, &h, sizeof h);
		if (k == 0)
			return total;
		CHECK(k > 0);
		read_exact(r, (char *)&h + k, sizeof h - (size_t)k);
		CHECK(h.id < nwriters && h.seq == next[h.id]);
		CHECK(h.len <= RP_PIPE_BUF - sizeof h);
		read_exact(r, buf, h.len);
		rec_fill(want, h.id, h.seq);
		CHECK(memcmp(buf, want + sizeof h, h.len) == 0);
		next[h.id]++;
		total++;
	}
}

#endif
