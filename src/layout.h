/*
 * layout.h - the shared segment of one pipe, as every process maps it.
 *
 *   offset 0            struct rp_shared (one page)
 *   offset PAGE         data ring, `capacity` bytes, mapped twice back to back
 *                       so any span of up to `capacity` bytes is contiguous.
 *
 * Everything here is written by other processes and is therefore untrusted:
 * identity fields are copied and validated once at map time; head and tail
 * are validated on every load (see ring.h).
 */
#ifndef RP_LAYOUT_H
#define RP_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#define RP_MAGIC         0x45504950474e4952ULL /* "RINGPIPE" little-endian */
/* Bumped whenever processes sharing a ring must agree on something new, and
 * never reused: 2, sleeper slots; 3 (6db7afe, withdrawn in 7a5a9eb, which
 * went back to 2's protocol), writers woke sleepers after their unlock;
 * 4, writers publish without a barrier and readers fence for them
 * (fence.c), which a reader of any earlier version would not do; 5, the
 * locks moved off the index lines; 6 (82f0ac8), a lock may be biased to
 * one thread (lock.c), which a process of an earlier version would take
 * as held; 7, the lock counts its revocations (the bias backs off); 8,
 * the lock keeps the time of its last revocation instead (no bias for a
 * while after one); 9, it keeps a rate of revocations instead (a bias
 * comes back at once unless revocations come faster than that); 10, an
 * owner that finds its bias revoked says so in its busy flag
 * (RP_BUSY_ACK), which a revoker of 9 would take for "inside" for ever;
 * 11, wakers skip sleepers that a token was already dropped for (rd_rung,
 * wr_rung), which a sleeper of 10 would never clear. */
#define RP_LAYOUT_VERSION 11u
#define RP_HDR_SIZE      4096u
#define RP_CACHELINE     64
#define RP_NO_MSG        UINT64_MAX

/* OFD lock bytes of the ring file.  Each end's own open file description of
 * the ring holds a read lock on its role byte, which is how `ringpipe ls`
 * (through /proc/PID/fdinfo) tells readers from writers. */
#define RP_LOCK_SESSION  0   /* named pipes: held by every open end */
#define RP_LOCK_OPENING  1   /* named pipes: serialises opens */
#define RP_LOCK_READER   2
#define RP_LOCK_WRITER   3
#define RP_LOCK_WOPENING 4   /* named pipes: a writer inside rp_open, up to
                              * its open of the gate (fifo.c) */

/* A sleeper count: bit i (i < RP_SLEEP_SLOTS) for the sleeper named in slot
 * i of rd_who / wr_who, plus in the high half those that found no free
 * slot.  One word, so that a sleeper counts in or out with one atomic. */
#define RP_SLEEP_SLOTS   32
#define RP_SLEEP_ANON    ((uint64_t)1 << 32)

static inline uint64_t rp_sleeper_count(uint64_t w)
{
	return (uint64_t)__builtin_popcount((uint32_t)w) + (w >> 32);
}

/* The writers' or the readers' lock (lock.c).  word: 0 (free), the
 * holder's TID (| RP_LOCK_WAITERS when somebody sleeps on it; |
 * RP_LOCK_NOACK when it took the word from a bias it may give back), or
 * RP_LOCK_BIASED | slot << RP_LOCK_SLOT_SHIFT | TID: biased to that thread,
 * which holds the lock while busy[slot] is set.  A slot belongs to the
 * thread named in owner[slot] (claimed by CAS, freed when that thread is
 * gone), so a thread writes only its own busy flag: one whose bias was
 * revoked while it was on its way in cannot clear the next owner's.
 * busy is 0 (out), 1 (inside) or RP_BUSY_ACK: out, having seen the word
 * changed by a revoker (lock.c, await_owner()); a claim resets it to 0.
 * TIDs are below 2^22 (the kernel's PID_MAX_LIMIT). */
#define RP_LOCK_TID        0x003fffffu
#define RP_LOCK_SLOT_SHIFT 22
#define RP_LOCK_SLOT       (7u << RP_LOCK_SLOT_SHIFT)
#define RP_LOCK_NOACK      0x20000000u
#define RP_LOCK_WAITERS    0x40000000u
#define RP_LOCK_BIASED     0x80000000u
#define RP_BIAS_SLOTS      8
#define RP_BUSY_ACK        2
/* rp_lockword.rebias_at counts CLOCK_MONOTONIC in units of 2^10 ns, modulo
 * 2^32 (73 minutes). */
#define RP_BIAS_CLOCK_SHIFT 10

struct rp_lockword {
	_Atomic uint32_t word;
	_Atomic uint32_t last;        /* the TID that last held it by the word */
	_Atomic uint32_t rebias_at;   /* RP_BIAS_CLOCK: revocations so far
	                               * run to here, 0 for none (lock.c) */
	_Atomic uint32_t owner[RP_BIAS_SLOTS];
	_Atomic uint32_t busy[RP_BIAS_SLOTS];
};

static inline void rp_lockword_reset(struct rp_lockword *l)
{
	atomic_store(&l->word, 0);
	atomic_store(&l->last, 0);
	atomic_store(&l->rebias_at, 0);
	for (int i = 0; i < RP_BIAS_SLOTS; i++) {
		atomic_store(&l->owner[i], 0);
		atomic_store(&l->busy[i], 0);
	}
}

static inline unsigned rp_lock_slot(uint32_t w)
{
	return (w & RP_LOCK_SLOT) >> RP_LOCK_SLOT_SHIFT;
}

/* No holder writes slot bits without the bias bit: such a word is garbage. */
static inline int rp_lock_garbage(uint32_t w)
{
	return !(w & RP_LOCK_BIASED) && (w & RP_LOCK_SLOT);
}

/* Who is inside the lock (a snapshot): the word's TID, or for a lock biased
 * to a thread, that thread while its busy flag is set; 0 if nobody. */
static inline uint32_t rp_lock_holder(const struct rp_lockword *l)
{
	struct rp_lockword *m = (struct rp_lockword *)l;  /* loads only */
	uint32_t w = atomic_load(&m->word);
	if ((w & RP_LOCK_BIASED) && atomic_load(&m->busy[rp_lock_slot(w)]) != 1)
		return 0;
	return w & RP_LOCK_TID;
}

struct rp_shared {
	/* Identity: written once by the creator.  These fields keep their
	 * place in every layout version, so that `ringpipe ls` can name a
	 * ring made by a release with another layout. */
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t capacity;
	uint64_t fifo_dev;            /* named pipes: the FIFO's st_dev/st_ino */
	uint64_t fifo_ino;
	uint64_t created_ns;          /* CLOCK_REALTIME at creation, for stat */
	char path[256];               /* named pipes: the path at mkfifo time */

	/* Each index and each lock has a line of its own: the other side
	 * reads the index on every call, and a lock sharing its line would
	 * make every acquisition wait for that line to come back. */
	_Alignas(RP_CACHELINE)
	_Atomic uint64_t head;        /* free-running count of bytes published */
	_Alignas(RP_CACHELINE)
	struct rp_lockword wlock;     /* the writers' lock */
	_Atomic uint64_t msg_start;   /* rp_conn: where the message being sent
	                               * starts (RP_NO_MSG: none); lock holder only */
	_Alignas(RP_CACHELINE)
	_Atomic uint64_t tail;        /* free-running count of bytes consumed */
	_Alignas(RP_CACHELINE)
	struct rp_lockword rlock;     /* the readers' lock */

	/* Sleeping and closing: read on every call but written rarely, so the
	 * line stays cached on both sides instead of bouncing with head/tail. */
	_Alignas(RP_CACHELINE)
	_Atomic uint64_t rd_sleepers; /* readers blocked on the doorbell pipe */
	_Atomic uint64_t wr_sleepers; /* writers blocked on the wake pipe: see
	                               * rp_sleeper_count() */
	_Atomic uint32_t rd_armed;    /* a poller waits for a doorbell token */
	_Atomic uint32_t gate_closed; /* the writers' poll gate pipe is full */
	_Atomic uint32_t rd_closes;   /* bumped by every reader close: EPIPE hint */
	_Atomic uint32_t wr_polled;   /* a write end's rp_fileno was asked for:
	                               * writes that fill the ring shut the gate
	                               * (wait.c, rp__gate_shut_full()) */
	_Atomic uint32_t rd_polled;   /* a read end's rp_fileno was asked for:
	                               * every reader that empties the ring drops
	                               * stale tokens (rp__reader_emptied()) */
	_Atomic uint32_t heavy_publish; /* a reader cannot fence for writers
	                               * (fence.c): publish with a barrier */
	_Atomic uint32_t rd_rung;     /* rd_rung, wr_rung: the slots that a
	                               * token was dropped for since they
	                               * counted in, with no token taken since
	                               * (wait.c, owed()) */
	_Atomic uint32_t wr_rung;

	/* Statistics, for `ringpipe stat`: advisory only.  Bytes moved are
	 * head and tail themselves, so the data path pays nothing for them. */
	_Alignas(RP_CACHELINE)
	_Atomic uint64_t wr_blocked_ns;
	_Atomic uint64_t rd_blocked_ns;
	/* Where each side last waited: CPU + 1, 0 if unknown.  A waiter
	 * yields at once only to a peer that may share its CPU (wait.c).
	 * Advisory too: a process that never sets them leaves 0. */
	_Atomic uint32_t rd_cpu;
	_Atomic uint32_t wr_cpu;
	/* CLOCK_REALTIME when the ring last started afresh (made, or opened
	 * with no end open): the start of what head and the blocked times
	 * count.  0 from a process that never set it: stat then uses
	 * created_ns. */
	_Atomic uint64_t started_ns;

	/* Who sleeps: slot i names (by TID) the sleeper that set bit i of
	 * rd_sleepers / wr_sleepers, so that the count of a sleeper killed
	 * in its sleep can be taken back, and only that one (wait.c).
	 * Written only on the way into and out of a sleep. */
	_Alignas(RP_CACHELINE)
	_Atomic uint32_t rd_who[RP_SLEEP_SLOTS];
	_Atomic uint32_t wr_who[RP_SLEEP_SLOTS];
	_Atomic uint64_t wr_need[RP_SLEEP_SLOTS]; /* room the writer waits for */
};

_Static_assert(sizeof(struct rp_shared) <= RP_HDR_SIZE, "header fits its page");

/* Is `h` (a private copy of a header) the header of a ring file of
 * `file_size` bytes?  Pure arithmetic, so it can be fuzzed on its own. */
static inline int rp_header_valid(const struct rp_shared *h, uint64_t file_size)
{
	uint64_t cap = h->capacity;
	return h->magic == RP_MAGIC && h->version == RP_LAYOUT_VERSION &&
	       h->hdr_size == RP_HDR_SIZE && cap >= 4096 && !(cap & (cap - 1)) &&
	       cap <= ((uint64_t)1 << 32) && file_size >= RP_HDR_SIZE &&
	       file_size - RP_HDR_SIZE >= cap;
}

#endif
