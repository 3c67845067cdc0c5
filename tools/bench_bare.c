/*
 * bench_bare.c - the bare ring: `ringpipe bench`'s reference ring.
 *
 * The least a byte ring in shared memory can do between two processes:
 * one writer and one reader, a head and a tail on cache lines of their
 * own, each side working from its last view of the other's index and
 * reading the shared one only when that view runs short, copies split at
 * the wrap, and waits that spin.  No locks, no sleeping, no atomic writes
 * (one writer needs none), no EOF when a side dies: none of a pipe's
 * rules.  What it moves on a machine says what the plain idea of a ring
 * makes of that machine, next to which ringpipe's rows show what its
 * rules cost (or its tricks gain: it publishes a big write a quarter ring
 * at a time, and beats this ring there).  The bench runs each side on a
 * CPU of its own, so spinning costs the other side nothing.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tool.h"

struct bare_shared {
	_Alignas(64) _Atomic uint64_t head;   /* the writer's */
	_Alignas(64) _Atomic uint64_t tail;   /* the reader's */
	_Alignas(64) _Atomic int eof;         /* the writer is done */
	_Atomic int gone;                     /* the reader is done */
};

#define BARE_HDR 4096

/* One process's hold on the ring: it writes it or reads it, not both. */
struct bare {
	struct bare_shared *sh;
	unsigned char *data;
	uint64_t cap;
	uint64_t pos;        /* our index: head for the writer, tail for the reader */
	uint64_t seen;       /* the other side's index when we last read it */
	int wrote, read;
};

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

struct bare *bare_open(uint64_t cap)
{
	if (!cap || (cap & (cap - 1))) {
		errno = EINVAL;        /* offsets are masks */
		return NULL;
	}
	struct bare *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	void *m = mmap(NULL, BARE_HDR + cap, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		free(b);
		return NULL;
	}
	b->sh = m;
	b->data = (unsigned char *)m + BARE_HDR;
	b->cap = cap;
	return b;
}

void bare_free(struct bare *b)
{
	if (!b)
		return;
	munmap(b->sh, BARE_HDR + b->cap);
	free(b);
}

uint64_t bare_capacity(const struct bare *b)
{
	return b->cap;
}

void bare_close_side(struct bare *b, int writer)
{
	/* Only the process that used a side ends it: the other processes'
	 * copies of the handle close theirs too, and the ring keeps no count. */
	if (writer && b->wrote)
		atomic_store_explicit(&b->sh->eof, 1, memory_order_release);
	if (!writer && b->read)
		atomic_store_explicit(&b->sh->gone, 1, memory_order_release);
}

int bare_write(struct bare *b, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	b->wrote = 1;
	while (n) {
		uint64_t room = b->cap - (b->pos - b->seen);
		if (room < n)
			room = b->cap - (b->pos - (b->seen = atomic_load_explicit(
				&b->sh->tail, memory_order_acquire)));
		while (!room) {
			if (atomic_load_explicit(&b->sh->gone, memory_order_relaxed)) {
				errno = EPIPE;
				return -1;
			}
			relax();
			b->seen = atomic_load_explicit(&b->sh->tail, memory_order_acquire);
			room = b->cap - (b->pos - b->seen);
		}
		size_t k = n < room ? n : (size_t)room;
		size_t off = (size_t)(b->pos & (b->cap - 1));
		size_t first = k < b->cap - off ? k : (size_t)(b->cap - off);
		memcpy(b->data + off, p, first);
		memcpy(b->data, p + first, k - first);
		b->pos += k;
		atomic_store_explicit(&b->sh->head, b->pos, memory_order_release);
		p += k;
		n -= k;
	}
	return 0;
}

ssize_t bare_read(struct bare *b, void *buf, size_t n)
{
	unsigned char *p = buf;

	b->read = 1;
	if (!n)
		return 0;
	uint64_t avail = b->seen - b->pos;
	if (avail < n)
		avail = (b->seen = atomic_load_explicit(&b->sh->head,
							memory_order_acquire)) - b->pos;
	while (!avail) {
		if (atomic_load_explicit(&b->sh->eof, memory_order_acquire)) {
			/* The last bytes were published before the EOF. */
			b->seen = atomic_load_explicit(&b->sh->head, memory_order_acquire);
			if (b->seen == b->pos)
				return 0;
		} else {
			relax();
			b->seen = atomic_load_explicit(&b->sh->head, memory_order_acquire);
		}
		avail = b->seen - b->pos;
	}
	size_t k = n < avail ? n : (size_t)avail;
	size_t off = (size_t)(b->pos & (b->cap - 1));
	size_t first = k < b->cap - off ? k : (size_t)(b->cap - off);
	memcpy(p, b->data + off, first);
	memcpy(p + first, b->data, k - first);
	b->pos += k;
	atomic_store_explicit(&b->sh->tail, b->pos, memory_order_release);
	return (ssize_t)k;
}
