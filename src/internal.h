/*
 * internal.h - what the library's files share; nothing here is public.
 *
 * An end is a mapping of the shared ring plus three kernel pipes that act
 * as its lifeline and its sleeping place:
 *
 *   bell  readers hold the read end (blocking: readers sleep in read(2)
 *         on it, and it is the read end's rp_fileno) and a second,
 *         non-blocking read end (drain); writers hold it O_RDWR and drop
 *         a token in when a reader sleeps or polls.  read(2) returning 0
 *         means "no writer left": the kernel counts writers across fork,
 *         exec and death for us.
 *   wake  the mirror image: writers sleep on its read end, readers hold
 *         it O_RDWR and ring it; read(2) returning 0 means "no reader".
 *   gate  the write end's rp_fileno.  Writers fill it (4 KiB pipe) when
 *         the ring is full so it stops polling writable; readers drain
 *         it when they make room.  Only readers hold its read end, so
 *         POLLERR on it means "no reader left", and a write into it is how
 *         the kernel itself raises EPIPE and SIGPIPE for us.
 *
 * Token senders hold their pipe O_RDWR so that a token dropped into a pipe
 * whose sleepers all died never raises SIGPIPE in the sender.
 */
#ifndef RP_INTERNAL_H
#define RP_INTERNAL_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/single_threaded.h>
#include <sys/types.h>
#include <time.h>

#include "ringpipe.h"
#include "layout.h"
#include "ring.h"

enum rp_role { RP_READER = 1, RP_WRITER = 2 };

/* Inlined even where the compiler would rather not: the fast paths
 * are on every call, and a call costs as much as they do. */
#define RP_HOT __attribute__((always_inline))
/* Every __thread variable of the library.  In a shared library (-fPIC)
 * each access to one is a call of __tls_get_addr: a 64-byte write and
 * read took 28 ns through libringpipe.so against 18 statically linked.
 * initial-exec makes it one load off %fs, as in an executable.  The cost:
 * the library's thread-local block (232 bytes, most of it end.c's call
 * levels) comes out of the static TLS that glibc keeps for libraries
 * loaded by dlopen (Python's import), about 1.6 KiB in a fresh python3
 * here; DESIGN.md, "Through the shared library". */
#define RP_TLS_FAST __attribute__((tls_model("initial-exec")))

enum rp_state { RP_FREE = 0, RP_OPEN = 1, RP_CLOSED = 2 };

#define RP_OWNERS_SEEN 8          /* lock.c: owner_known() */

/* A power of two in size, so that checking a handle is a mask, not a
 * division (it is on every call). */
struct rp_end {
	_Alignas(256)
	_Atomic uint32_t state;
	_Atomic uint32_t refs;        /* 1 while open + 1 per call in flight */
	int role;
	struct rp_shared *sh;         /* the mapping; data follows at +RP_HDR_SIZE */
	unsigned char *data;
	size_t map_len;
	struct rp_ring ring;          /* private, validated copy of the geometry */
	int shm_fd;
	uint64_t ring_dev, ring_ino;   /* identity of the ring file, for lock checks */
	int bell, wake, gate;
	int drain;                    /* readers: the bell again, non-blocking */
	int nb_cache;                 /* see rp__nb() */
	int polled;                   /* rp_fileno was asked for: keep it exact */
	uint64_t peer;                /* writers: tail, readers: head, last seen */
	/* writers: when to next ask the kernel whether readers remain */
	uint32_t seen_rd_closes;
	uint64_t next_probe_ns;
	uint64_t next_reap_ns;      /* wait.c: reap() at most this often */
	_Atomic uint32_t skips;     /* wait.c: wakes that found every sleeper
	                             * marked (skipped()) */
	int widowed;                  /* last probe found no reader */
	_Atomic uint32_t bias_in[2];  /* inside the writers' [0] or readers'
	                               * [1] lock by its bias (rp__side()) */
	_Atomic uint32_t streak;      /* lock.c: uncontended acquisitions (a
	                               * hint: the end's threads may race on it) */
	_Atomic uint32_t owners_seen[RP_OWNERS_SEEN]; /* lock.c: TIDs found to */
	_Atomic uint32_t owners_next;                 /* map the ring */
	_Atomic uint32_t off_cpu_skip; /* lock.c: revocations before we ask again */
	/* zero-copy: a reservation or peek holds the side's lock */
	_Atomic int held;
	_Atomic uint32_t held_tid;          /* the thread that reserved or peeked */
	_Atomic int held_busy;              /* its holder is using it (zerocopy.c) */
	uint64_t held_pos;
	uint64_t held_len;
	struct rp_end *next_free;
};

/*
 * Publishing head or tail, and reading the sleeper counts and flags after
 * it, are the two halves of a Dekker handshake with sleepers (see wait.c).
 * Sequentially consistent operations make it work without fences (which
 * ThreadSanitizer cannot model); on x86 the store is an xchg, as cheap as
 * the mfence it replaces, and the loads are plain moves.
 */
#define RP_PUBLISH memory_order_seq_cst

/*
 * A publish that the side's unlock follows before the sleeper loads can
 * be a plain release store: what the handshake needs between the store
 * and the loads is a full barrier, which rp__mb_after_unlock() supplies
 * (see there).  One locked instruction less per read.
 */
#define RP_PUBLISH_UNLOCKED memory_order_release
#if defined(__SANITIZE_THREAD__)
#define RP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RP_TSAN 1
#endif
#endif

/* Is anything queued?  (Corrupt indices count as "yes": the caller's
 * validation then reports EIO.) */
static inline bool rp__has_data(const struct rp_end *e)
{
	return atomic_load_explicit(&e->sh->head, memory_order_seq_cst) !=
	       atomic_load_explicit(&e->sh->tail, memory_order_seq_cst);
}

/* One more reference to a slot (an end's or a connection's), unless its
 * last one is gone (refs == 0): such a slot is never revived. */
static inline bool rp__ref_take(_Atomic uint32_t *refs)
{
	uint32_t r = atomic_load_explicit(refs, memory_order_relaxed);
	do {
		if (r == 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(refs, &r, r + 1,
			memory_order_acquire, memory_order_relaxed));
	return true;
}

/* end.c: the handle pool.  rp_end pointers stay valid memory forever. */
struct rp_end *rp__end_alloc(void);
extern _Atomic(struct rp_end *) rp__pool;  /* mapped once, never moved */
extern _Atomic size_t rp__pool_top;         /* slots ever handed out */
/* A call's ref, or NULL+EBADF; lazy: rp__call_enter(true). */
struct rp_end *rp__end_ref(struct rp_end *e, bool lazy);
void rp__end_put_ref(struct rp_end *e);             /* its end */
void rp__end_unref(struct rp_end *e);               /* ref--, frees at 0 */

/*
 * Calls in flight and pthread_cancel(3) (end.c): a call holding a
 * reference disables cancellation until it leaves; its sleeps open a
 * window (deferred cancellation in the sleeping system call only), with
 * cleanup handlers for what the sleep holds; the references go when the
 * cancelled thread exits.
 */
void rp__call_enter(bool lazy);                     /* a level, cancel off */
/* Cancel off for a lazy level (rp_read/rp_write: rp__call_enter(true)),
 * before anything that may reach a cancellation point: their small paths
 * make no system call, and pthread_setcancelstate's two atomics were
 * their largest cost in a multi-threaded process. */
void rp__call_quiet(void);
void rp__call_hold(void *slot, void (*unref)(void *)); /* a reference in it */
void rp__call_drop(void);                           /* before giving it back */
/* Calls that make or remove a pipe are no cancellation point at all (a
 * cancel inside would leak what they half made): the caller's state. */
static inline int rp__cancel_off(void)
{
	int old;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	return old;
}
static inline void rp__cancel_back(int old)
{
	int err = errno;
	pthread_setcancelstate(old, NULL);
	errno = err;
}
void rp__call_leave(void);
bool rp__call_cancellable(void);
void rp__cancel_window(bool open);

/* Is h an open end (of that role, if role)?  EBADF if not.  Inline: it
 * begins every call. */
static inline RP_HOT bool rp__end_valid(rp_end *h, int role)
{
	struct rp_end *pool = atomic_load_explicit(&rp__pool, memory_order_relaxed);
	size_t top = atomic_load_explicit(&rp__pool_top, memory_order_relaxed);
	uintptr_t off = (uintptr_t)h - (uintptr_t)pool;

	if (!h || !pool || off >= top * sizeof(struct rp_end) ||
	    (off & (sizeof(struct rp_end) - 1)) ||
	    atomic_load_explicit(&h->state, memory_order_acquire) != RP_OPEN ||
	    (role && h->role != role)) {
		errno = EBADF;
		return false;
	}
	return true;
}

/* The handle behind h, checked (EBADF), and referenced while other
 * threads could close it; lazy for rp_read/rp_write (rp__call_quiet()). */
static inline RP_HOT struct rp_end *rp__end_get_as(rp_end *h, int role, bool lazy)
{
	if (!rp__end_valid(h, role))
		return NULL;
	/* A process with one thread cannot close an end under its own call
	 * (glibc tells us so for free): skip the two atomics per call. */
	if (__libc_single_threaded)
		return h;
	return rp__end_ref(h, lazy);
}

static inline RP_HOT struct rp_end *rp__end_get(rp_end *h, int role)
{
	return rp__end_get_as(h, role, false);
}

static inline RP_HOT void rp__end_put(struct rp_end *e)     /* undo rp__end_get */
{
	if (!__libc_single_threaded)
		rp__end_put_ref(e);
}

/* The same for the end of a connection within the connection's call. */
struct rp_end *rp__end_ref_in_call(struct rp_end *e);
void rp__end_put_in_call(struct rp_end *e);
static inline RP_HOT struct rp_end *rp__end_get_in_call(rp_end *h, int role)
{
	if (!rp__end_valid(h, role))
		return NULL;
	if (__libc_single_threaded)
		return h;
	return rp__end_ref_in_call(h);
}

static inline RP_HOT void rp__end_put_in(struct rp_end *e)
{
	if (!__libc_single_threaded)
		rp__end_put_in_call(e);
}
int rp__end_close(struct rp_end *e);
int rp__end_open(struct rp_end *e, int role, int flags); /* anon.c */
void rp__end_discard(struct rp_end *e);

/* shm.c: creating, mapping and validating the shared segment. */
int rp__memfd_create(size_t capacity);
int rp__shared_init(int fd, uint64_t capacity, uint64_t dev, uint64_t ino,
		     const char *path);
int rp__map(struct rp_end *e, int fd);
void rp__unmap(struct rp_end *e);
uint64_t rp__capacity_round(size_t capacity);      /* 0 on EINVAL */

/* lock.c: the writers' and readers' locks in shared memory. */
/* Take the lock; give up (ETIMEDOUT) after budget_ns (0: never). */
int rp__lock_within(struct rp_end *e, struct rp_lockword *l, uint64_t budget_ns);
extern __thread uint32_t rp__tid_cache RP_TLS_FAST;     /* this thread's TID, once known */
extern __thread uint32_t rp__bias_depth RP_TLS_FAST;    /* biased locks this thread is in */
void rp__bias_revoked(_Atomic uint32_t *busy, uint32_t word);
void rp__unlock_held(struct rp_end *e, struct rp_lockword *l);

/* An end may hold both locks at once (a writer closing the gate holds
 * the readers' lock too), each by its bias or not: bias_in[side] is 0, or
 * the biased word it entered with.  Only the thread that holds the end's
 * own side's lock changes these.  The side is 0 for the writers' lock, 1
 * for the readers'; callers that know it pass it as a constant (the
 * fast paths), which saves working it out twice per call. */
enum { RP_WSIDE = 0, RP_RSIDE = 1 };
static inline int rp__side(const struct rp_end *e, const struct rp_lockword *l)
{
	return l != &e->sh->wlock;
}

static inline struct rp_lockword *rp__side_lock(const struct rp_end *e, int side)
{
	return side == RP_WSIDE ? &e->sh->wlock : &e->sh->rlock;
}

/* Leaving a biased lock entered with word w: clear the busy flag; a
 * revoker that changed the word meanwhile may sleep on it: tell it the
 * owner saw the change (unless noack: another thread leaves for the
 * owner, zerocopy.c), and wake it. */
static inline RP_HOT void rp__bias_leave_as(struct rp_lockword *l, uint32_t w,
					    uint32_t noack)
{
	_Atomic uint32_t *busy = &l->busy[rp_lock_slot(w)];
	atomic_store_explicit(busy, 0, memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);
	uint32_t now = atomic_load_explicit(&l->word, memory_order_relaxed);
	if (__builtin_expect(now != w, 0))
		rp__bias_revoked(busy, now | noack);
}

static inline RP_HOT void rp__bias_leave(struct rp_lockword *l, uint32_t w)
{
	rp__bias_leave_as(l, w, 0);
}

/* Entering a lock biased to us (word w): set our busy flag, then make
 * sure the bias still stands.  A revoker's membarrier orders our store
 * before our load (lock.c), so no fence here. */
static inline RP_HOT bool rp__bias_enter(struct rp_end *e, struct rp_lockword *l,
					 int side, uint32_t w)
{
	/* The depth counts us in before busy is set and out after it is
	 * clear, so a signal handler that finds busy set and the depth 0
	 * knows the flag is not ours (lock.c, take_biased()). */
	rp__bias_depth++;
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&l->busy[rp_lock_slot(w)], 1, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&l->word, memory_order_acquire) == w) {
		atomic_store_explicit(&e->bias_in[side], w, memory_order_relaxed);
		return true;
	}
	rp__bias_leave(l, w);
	atomic_signal_fence(memory_order_seq_cst);
	rp__bias_depth--;
	return false;
}

/* The uncontended cases, inline: they are on every call.  True if ours. */
static inline RP_HOT bool rp__lock_fast(struct rp_end *e, struct rp_lockword *l, int side)
{
	uint32_t me = rp__tid_cache;
	uint32_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
	if (me && (w & ~RP_LOCK_SLOT) == (RP_LOCK_BIASED | me) &&
	    !atomic_load_explicit(&l->busy[rp_lock_slot(w)], memory_order_relaxed) &&
	    rp__bias_enter(e, l, side, w))
		return true;
	return me && w == 0 &&
	       atomic_compare_exchange_strong_explicit(&l->word, &w, me,
			memory_order_acquire, memory_order_relaxed);
}

/* 0, or -1 EDEADLK. */
static inline RP_HOT int rp__lock_at(struct rp_end *e, struct rp_lockword *l, int side)
{
	if (rp__lock_fast(e, l, side))
		return 0;
	return rp__lock_within(e, l, 0);
}

/* The lock a call on an end takes first: as rp__lock_at(), but if the end
 * is non-blocking, -1 EAGAIN rather than a long wait (lock.c). */
int rp__lock_call_slow(struct rp_end *e, struct rp_lockword *l);
static inline RP_HOT int rp__lock_call(struct rp_end *e, struct rp_lockword *l, int side)
{
	if (rp__lock_fast(e, l, side))
		return 0;
	return rp__lock_call_slow(e, l);
}

static inline RP_HOT void rp__unlock_at(struct rp_end *e, struct rp_lockword *l, int side)
{
	_Atomic uint32_t *in = &e->bias_in[side];
	uint32_t w = atomic_load_explicit(in, memory_order_relaxed);
	if (w) {
		atomic_store_explicit(in, 0, memory_order_relaxed);
		rp__bias_leave(l, w);
		atomic_signal_fence(memory_order_seq_cst);
		if (rp__bias_depth)     /* (never below 0) */
			rp__bias_depth--;
		return;
	}
	rp__unlock_held(e, l);
}

static inline RP_HOT int rp__lock(struct rp_end *e, struct rp_lockword *l)
{
	return rp__lock_at(e, l, rp__side(e, l));
}

static inline RP_HOT void rp__unlock(struct rp_end *e, struct rp_lockword *l)
{
	rp__unlock_at(e, l, rp__side(e, l));
}

/* Nobody (alive) holds it: free, or held by a dead process. */
bool rp__lock_abandoned(struct rp_end *e, struct rp_lockword *l);
/* Writes v in decimal at dst (no stdio: signal handlers get here); returns
 * the end, where it puts a NUL. */
char *rp__fmt_u32(char *dst, uint32_t v);
/* Is thread `tid` dead, a zombie, or not a process that maps this ring? */
bool rp__tid_gone(struct rp_end *e, uint32_t tid);
void rp__lock_atfork_child(void);
uint32_t rp__self_tid(void);
/*
 * A reservation or peek, held under the side's lock.  Only the thread
 * that holds it writes these (and a close, which ends it), so plain
 * (relaxed) stores do: a seq_cst store is an exchange on x86, and a
 * reserve, commit, peek and consume made eight.
 * The TID goes first and `held` last, with release, so that a thread that
 * sees `held` set (acquire) sees its holder's TID, never a stale one that
 * could be its own.
 */
static inline void rp__hold_set(struct rp_end *e, uint64_t pos, uint64_t len)
{
	e->held_pos = pos;
	e->held_len = len;
	uint32_t me = rp__tid_cache;    /* known once the lock is ours */
	atomic_store_explicit(&e->held_tid, me ? me : rp__self_tid(),
			      memory_order_relaxed);
	atomic_store_explicit(&e->held, 1, memory_order_release);
}

static inline void rp__hold_clear(struct rp_end *e)
{
	atomic_store_explicit(&e->held, 0, memory_order_relaxed);
}

static inline bool rp__held(const struct rp_end *e)
{
	return atomic_load_explicit(&e->held, memory_order_acquire);
}

/* Take a hold back from whoever set it, once: true if it was set.  A
 * close, the end's release and a reserve (peek) that finds the end closed
 * after setting its hold may race for it; the one that takes it unlocks. */
static inline bool rp__hold_take(struct rp_end *e)
{
	return atomic_exchange(&e->held, 0);
}

/* The end is closed: a hold left in it is taken back and its lock given
 * up (zerocopy.c). */
void rp__hold_abandon(struct rp_end *e);
/* The end was just closed: end its hold unless its holder is using it. */
void rp__hold_close(struct rp_end *e);
/* A wait for the side's lock: a closed end's hold that nobody ended
 * (a close that raced its holder) is ended now. */
void rp__hold_orphaned(struct rp_end *e);

/* Does the calling thread hold this end's reservation or peek? */
static inline bool rp__held_by_me(const struct rp_end *e)
{
	return rp__held(e) &&
	       atomic_load_explicit(&e->held_tid, memory_order_relaxed) == rp__tid_cache;
}

/* wait.c: spinning, sleeping and waking. */
/* A decimal setting from the environment, dflt if unset or not a number
 * of at most max. */
uint64_t rp__env_setting(const char *name, uint64_t max, uint64_t dflt);
enum rp_wait { RP_WAIT_READY = 0, RP_WAIT_GONE = 1 };
/* sleep.c: hold off every signal a handler could take but those a fault
 * raises (a fault while they are blocked kills the process), for a span
 * in which a handler of ours must not run; *old gets the mask back. */
void rp__signals_defer(sigset_t *old);
void rp__signals_restore(const sigset_t *old);
/* sleep.c: how long a sleeper (or rp_poll) trusts the tokens before it
 * looks at the ring again: prev is the last interval, 0 at first; -1 for
 * never.  A peer killed between its publish and its token leaves none. */
int rp__recheck_ms(int prev);
/* Block for a token in fd (nbfd: a non-blocking open of it, or -1) with
 * read(2)'s signal rules, or until ready(e, arg) on a recheck.  partial: a
 * write that has moved bytes, which any handler ends (-1 EINTR).  READY,
 * GONE (EOF), or -1. */
int rp__take_token(int fd, int nbfd, bool partial,
		   bool (*ready)(struct rp_end *, uint64_t), struct rp_end *e,
		   uint64_t arg);
/* Called holding the side's lock; unlock: release it before sleeping. */
int rp__wait_readable(struct rp_end *e, bool unlock); /* READY, GONE (no writers), -1 */
/* This thread's waits for data poll the ring often while it answers, that
 * is while it has written within its last RP_ANSWER_WAITS waits (wait.c,
 * spin_poll()).  Every write and send says so. */
#define RP_ANSWER_WAITS 64
extern __thread uint32_t rp__answering RP_TLS_FAST;
static inline void rp__note_answer(void)
{
	rp__answering = RP_ANSWER_WAITS;
}
/* READY, GONE, -1.  partial: the caller has moved some bytes, so any
 * signal handler ends the wait (-1 EINTR), SA_RESTART or not, as it ends a
 * kernel pipe's write. */
int rp__wait_writable(struct rp_end *e, uint64_t need, bool unlock, bool partial);
/* Wake whoever sleeps on (or polls) the other side.  Inline because every
 * call passes here and almost always finds nobody: loads of a line that
 * stays cached on both sides.  A writer's also shuts the gate if the ring
 * is full and somebody may poll a write end (rp__gate_shut_full()). */
void rp__wake_readers_slow(struct rp_end *e, uint64_t n, uint32_t armed,
			   uint32_t polled);
void rp__wake_writers_slow(struct rp_end *e, uint64_t n, uint32_t gate);
static inline void rp__wake_readers(struct rp_end *e)
{
	uint64_t n = atomic_load_explicit(&e->sh->rd_sleepers, memory_order_seq_cst);
	uint32_t a = atomic_load_explicit(&e->sh->rd_armed, memory_order_seq_cst);
	uint32_t p = atomic_load_explicit(&e->sh->wr_polled, memory_order_relaxed);
	if (__builtin_expect((n | a | p) != 0, 0))
		rp__wake_readers_slow(e, n, a, p);
}
static inline void rp__wake_writers(struct rp_end *e)
{
	uint64_t n = atomic_load_explicit(&e->sh->wr_sleepers, memory_order_seq_cst);
	uint32_t g = atomic_load_explicit(&e->sh->gate_closed, memory_order_seq_cst);
	if (__builtin_expect((n | g) != 0, 0))
		rp__wake_writers_slow(e, n, g);
}
void rp__poller_token(struct rp_end *e);
/* fence.c: this process may publish head without a barrier (registered
 * for membarrier); readers about to sleep fence for it. */
extern bool rp__light_publish;
void rp__fence_register(void);
/* membarrier(2) for the peers' barrier-free stores; false (and
 * heavy_publish set) if refused. */
bool rp__fence_peers(struct rp_end *e);
/* The same for the other threads of this process; where refused, waits
 * long enough for a store to have left any store buffer. */
void rp__fence_threads(struct rp_end *e);

/*
 * The holder is about to use its hold: commit (consume) it, cancel it for
 * a plain call, or reserve (peek) again.  A close in another thread may
 * end the hold meanwhile (rp__hold_close()), so the holder marks it busy,
 * then looks at the state: a close that misses the mark is seen here,
 * and one that sees it leaves the hold to us.  The mark is a plain store
 * where the close can fence for it (fence.c), a full barrier where it
 * cannot.  It belongs to the end, not to a thread, so it is written only
 * under the side's lock (or once the end is closed, when no hold can be
 * used any more): a thread that wrote it after its unlock could clear the
 * mark of the next holder.  True while open.
 */
static inline bool rp__hold_mark(struct rp_end *e, int busy)
{
	if (rp__light_publish)  /* (a variable order would be seq_cst) */
		atomic_store_explicit(&e->held_busy, busy, memory_order_release);
	else
		atomic_store_explicit(&e->held_busy, busy, memory_order_seq_cst);
	atomic_signal_fence(memory_order_seq_cst);
	return __builtin_expect(atomic_load_explicit(&e->state, memory_order_seq_cst) ==
				RP_OPEN, 1);
}

/* Closed: the hold is given back if the close did not take it, and the
 * call fails EBADF, as if the close had come first. */
static inline bool rp__hold_use(struct rp_end *e)
{
	if (rp__hold_mark(e, 1))
		return true;
	atomic_store_explicit(&e->held_busy, 0, memory_order_release);
	rp__hold_abandon(e);
	errno = EBADF;
	return false;
}

/* Done with it, the hold ended (cleared) and the lock still ours: a close
 * that sees the mark gone sees the hold gone too. */
static inline void rp__hold_idle(struct rp_end *e)
{
	atomic_store_explicit(&e->held_busy, 0, memory_order_release);
}

/*
 * The barrier after an unlock that followed a RP_PUBLISH_UNLOCKED store.
 * An unlock by exchange is one on x86 (every locked instruction is), so
 * nothing is needed there (as the kernel's smp_mb__after_atomic()); a
 * biased unlock is a plain store, and then the peers going to sleep fence
 * for us (fence.c) unless one could not.  Under ThreadSanitizer nothing is
 * biased (fence.c), so every unlock is an exchange; and TSan models no
 * fence (GCC refuses one when optimising).  Elsewhere, a seq_cst fence.
 */
static inline void rp__mb_after_unlock(struct rp_end *e)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(RP_TSAN)
	(void)e;
	atomic_signal_fence(memory_order_seq_cst);
#elif defined(__x86_64__) || defined(__i386__)
	if (rp__light_publish &&
	    !atomic_load_explicit(&e->sh->heavy_publish, memory_order_relaxed)) {
		atomic_signal_fence(memory_order_seq_cst);
		return;
	}
	atomic_thread_fence(memory_order_seq_cst);
#else
	(void)e;
	atomic_thread_fence(memory_order_seq_cst);
#endif
}
void rp__gate_open(struct rp_end *e);
/*
 * Bytes queued, as a writer holding the lock sees them at `head`, or -1 if
 * the indices are corrupt.  The tail it saw last (e->peer) can only be too
 * small, so the readers' line is loaded only when that shows less than
 * `room` free (every load takes the line away from a busy reader).
 */
static inline int64_t rp__queued_for_writer(struct rp_end *e, uint64_t head,
					    uint64_t room)
{
	int64_t used = rp_ring_used(&e->ring, head, e->peer);
	if (used < 0 || e->ring.cap - (uint64_t)used < room) {
		e->peer = atomic_load_explicit(&e->sh->tail, memory_order_acquire);
		used = rp_ring_used(&e->ring, head, e->peer);
	}
	return used;
}
/*
 * Publishing head (writers) or tail (readers), holding the side's lock.
 * A poller of the other side's rp_fileno is told first (wait.c): a peer
 * killed between its publish and its wakeup then leaves no poller waiting.
 * mo: RP_PUBLISH, or RP_PUBLISH_UNLOCKED before an unlock.
 */
static inline void rp__publish_head(struct rp_end *e, uint64_t head, memory_order mo)
{
	if (atomic_load_explicit(&e->sh->rd_armed, memory_order_relaxed))
		rp__poller_token(e);
	if (mo == RP_PUBLISH && rp__light_publish &&
	    !atomic_load_explicit(&e->sh->heavy_publish, memory_order_relaxed)) {
		/* Sleeping readers supply the barrier (fence.c); the compiler
		 * must still keep the store before the loads that follow. */
		atomic_store_explicit(&e->sh->head, head, memory_order_release);
		atomic_signal_fence(memory_order_seq_cst);
		return;
	}
	atomic_store_explicit(&e->sh->head, head, mo);
}

static inline void rp__publish_tail(struct rp_end *e, uint64_t tail, memory_order mo)
{
	if (atomic_load_explicit(&e->sh->gate_closed, memory_order_relaxed))
		rp__gate_open(e);
	atomic_store_explicit(&e->sh->tail, tail, mo);
}
int rp__poll_arm_reader(struct rp_end *e);  /* READY, GONE (EOF), -1 EAGAIN */
/* A reader emptied the ring: if somebody polls a read end, keep its
 * tokens exact (wait.c).  Inline: most readers are not polled. */
void rp__reader_emptied_slow(struct rp_end *e);
static inline void rp__reader_emptied(struct rp_end *e)
{
	if (e->polled || atomic_load_explicit(&e->sh->rd_polled, memory_order_relaxed))
		rp__reader_emptied_slow(e);
}
int rp__gate_close(struct rp_end *e, uint64_t need); /* READY, -1 EAGAIN */
void rp__gate_shut_full(struct rp_end *e);
bool rp__readers_gone(struct rp_end *e);
/* A clock good to a few ms: the writers read it on every call. */
static inline uint64_t rp__coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
/*
 * The writers' fast-path check for readers: true if none is left.  It
 * trusts a hint (readers bump rd_closes when they close) and a coarse
 * clock, and only then asks the kernel (wait.c), so a reader killed
 * without closing is noticed within PROBE_NS (wait.c) by a writer that
 * never blocks, at no per-write system call.
 */
bool rp__readers_gone_slow(struct rp_end *e, uint32_t closes);
static inline bool rp__readers_gone_hint(struct rp_end *e)
{
	uint32_t c = atomic_load_explicit(&e->sh->rd_closes, memory_order_relaxed);
	if (__builtin_expect(c == e->seen_rd_closes && !e->widowed, 1) &&
	    rp__coarse_ns() < e->next_probe_ns)
		return false;
	return rp__readers_gone_slow(e, c);
}
int rp__raise_epipe(struct rp_end *e);
bool rp__nonblocking(struct rp_end *e);      /* the end's O_NONBLOCK (fcntl) */
/*
 * O_NONBLOCK as the slow paths need it, without a system call when the
 * end is blocking: nb_cache is what this process last saw.  A blocking end
 * re-asks the kernel just before it would sleep (wait.c), a non-blocking
 * one just before it would return EAGAIN, so a change made through a
 * forked copy of the end is seen where it matters.
 */
static inline bool rp__nb(struct rp_end *e)
{
	return e->nb_cache && (e->nb_cache = rp__nonblocking(e));
}
int rp__set_nonblocking(struct rp_end *e, bool on);
uint64_t rp__now_ns(void);

/* fd helpers (shm.c) */
int rp__reopen(int fd);                     /* a new OFD for the same file */
int rp__reopen_fifo(int fd, int flags);
int rp__swap_rdwr(int *fd);
void rp__close_fds(struct rp_end *e);
void rp__close_on_exec(struct rp_end *e);   /* FD_CLOEXEC on each */

#endif
