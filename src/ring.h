/*
 * ring.h - ring arithmetic: no system calls, no shared state of its own.
 *
 * head and tail are free-running 64-bit byte counts read from shared
 * memory; another process may have scribbled anything into them, so every
 * derived quantity is checked before it is used to touch memory.
 */
#ifndef RP_RING_H
#define RP_RING_H

#include <stdbool.h>
#include <stdint.h>

struct rp_ring {
	uint64_t cap;    /* power of two, validated at map time, never reread */
	uint64_t mask;
};

/* Bytes queued, or -1 if head/tail are inconsistent (corrupted pages). */
static inline int64_t rp_ring_used(const struct rp_ring *r, uint64_t head,
				   uint64_t tail)
{
	uint64_t used = head - tail;
	return used <= r->cap ? (int64_t)used : -1;
}

/* Offset of a position in the data region: always < cap. */
static inline uint64_t rp_ring_off(const struct rp_ring *r, uint64_t pos)
{
	return pos & r->mask;
}

#endif
