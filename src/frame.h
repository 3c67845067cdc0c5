/*
 * frame.h - how a message travels through a byte ring: as chunks.
 *
 *   struct rp_frame (16 bytes) | payload (len bytes)
 *
 * A message is one or more chunks: the first carries RP_FRAME_FIRST and the
 * message's total length, the others their offset in the message; the last
 * carries RP_FRAME_LAST.  Each chunk is published with one store of head,
 * so a chunk is in the ring whole or not at all.  A sender holds the
 * writers' lock for its whole message, so chunks of two messages never
 * interleave; only a sender's death can cut a message short, and the next
 * FIRST chunk (from a surviving sender) tells the receiver to discard it.
 *
 * Frames come from another process: rp_frame_check trusts nothing.
 */
#ifndef RP_FRAME_H
#define RP_FRAME_H

#include <stdbool.h>
#include <stdint.h>

#define RP_FRAME_MAGIC 0x52504d00u     /* "\0MPR" */
#define RP_FRAME_FIRST 1u
#define RP_FRAME_LAST  2u
#define RP_FRAME_FLAGS (RP_FRAME_FIRST | RP_FRAME_LAST)

struct rp_frame {
	uint32_t tag;          /* RP_FRAME_MAGIC | flags */
	uint32_t len;          /* payload bytes in this chunk */
	uint64_t pos;          /* FIRST: total length; else: offset in message */
};

_Static_assert(sizeof(struct rp_frame) == 16, "frame header is 16 bytes");

/* Largest payload per chunk for a ring of `cap` bytes: a quarter of the
 * ring, so sender and receiver work on different chunks at once. */
static inline uint32_t rp_frame_max_payload(uint64_t cap)
{
	uint64_t m = cap / 4 - sizeof(struct rp_frame);
	return m > (1u << 30) ? (1u << 30) : (uint32_t)m;
}

/* Is this header plausible with `avail` bytes (header included) queued? */
static inline bool rp_frame_check(const struct rp_frame *f, uint64_t avail)
{
	uint32_t flags = f->tag & 0xffu;
	if ((f->tag & ~0xffu) != RP_FRAME_MAGIC || (flags & ~RP_FRAME_FLAGS))
		return false;
	if (avail < sizeof(*f) || f->len > avail - sizeof(*f))
		return false;
	if (flags & RP_FRAME_FIRST) {
		if (f->pos > INT64_MAX || f->len > f->pos)
			return false;
		if ((flags & RP_FRAME_LAST) && f->len != f->pos)
			return false;
	}
	return true;
}

#endif
