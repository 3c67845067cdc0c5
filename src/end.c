/*
 * end.c - the pool of rp_end handles.
 *
 * Handles live in one region that is mapped once and never unmapped, so a
 * stale or closed pointer is still safe to look at: a call on it finds the
 * slot not open and fails with EBADF, as a closed descriptor does, until
 * the slot is reused.  A pointer that is not a slot at all fails the same
 * way instead of being dereferenced.
 *
 * Each open end holds one reference; every call holds another while it
 * runs, so rp_close never unmaps or closes descriptors under a thread
 * still blocked in the end: as with a kernel pipe, the end closes for its
 * peers when that call returns.
 */
#include "internal.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#define POOL_SLOTS 65536

/* Atomic because rp__end_get() reads them without the lock (relaxed: on
 * x86 the same plain loads as before, but no data race with an alloc). */
_Atomic(struct rp_end *) rp__pool;
_Atomic size_t rp__pool_top;            /* slots ever handed out */
static struct rp_end *free_list;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/*
 * The last reference is gone: now the end closes for its peers.  Not at
 * rp_close, when another thread may still be blocked in the end: a call
 * blocked in a pipe keeps its open file until it returns (close(2)
 * NOTES), and that call still sleeps on these descriptors, whose numbers
 * must not be reused under it.  Each descriptor, and the mapping, is
 * forgotten before it is closed (shm.c): a child forked meanwhile finishes
 * what is left (atfork_child) and never closes a number or unmaps a range
 * twice.  Not under the pool's lock, which a signal handler's call could
 * want while its thread is here.
 */
static void release(struct rp_end *e)
{
	rp__call_quiet();                    /* close(2) is a cancellation point */
	int err = errno;                     /* the call's result stands */
	bool opened = e->shm_fd >= 0;        /* not a half-made end's discard */
	if (opened && e->sh)
		rp__hold_abandon(e);         /* set after the close looked */
	rp__close_fds(e);
	if (opened && e->role == RP_READER && e->sh)
		atomic_fetch_add_explicit(&e->sh->rd_closes, 1,
					  memory_order_release);
	rp__unmap(e);
	pthread_mutex_lock(&pool_mu);
	atomic_store(&e->state, RP_FREE);
	e->next_free = free_list;
	free_list = e;
	pthread_mutex_unlock(&pool_mu);
	errno = err;
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&pool_mu);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&pool_mu);
}

/*
 * The child has one thread, so no call is in flight: every open end is back
 * to its single reference, and a closed end that only a parent thread was
 * still using can be released now.  Locks held for a reservation, or by
 * bias, belong to the parent's thread, not to the child's copy of the end.
 */
static void atfork_child(void)
{
	pthread_mutex_init(&pool_mu, NULL);
	rp__lock_atfork_child();
	if (rp__light_publish)
		rp__fence_register();   /* a new address space: register it too */
	struct rp_end *pool = atomic_load(&rp__pool);
	size_t top = atomic_load(&rp__pool_top);
	for (size_t i = 0; i < top; i++) {
		struct rp_end *e = &pool[i];
		uint32_t st = atomic_load(&e->state);
		if (st == RP_OPEN) {
			atomic_store(&e->refs, 1);
			e->held = e->held_busy = 0;
			e->bias_in[0] = e->bias_in[1] = 0;
			atomic_store(&e->streak, 0);
		} else if (st == RP_CLOSED) {
			e->held = 0;            /* the parent's, as above */
			e->bias_in[0] = e->bias_in[1] = 0;
			release(e);
		}
	}
}

static void pool_init(void)
{
	void *p = mmap(NULL, POOL_SLOTS * sizeof(struct rp_end),
		       PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return;
	atomic_store(&rp__pool, p);
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

struct rp_end *rp__end_alloc(void)
{
	struct rp_end *e = NULL;

	pthread_once(&pool_once, pool_init);
	struct rp_end *pool = atomic_load(&rp__pool);
	if (!pool) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&pool_mu);
	if (free_list) {
		e = free_list;
		free_list = e->next_free;
	} else {
		size_t top = atomic_load_explicit(&rp__pool_top, memory_order_relaxed);
		if (top < POOL_SLOTS) {
			e = &pool[top];
			atomic_store_explicit(&rp__pool_top, top + 1, memory_order_relaxed);
		}
	}
	pthread_mutex_unlock(&pool_mu);
	if (!e) {
		errno = EMFILE;
		return NULL;
	}
	*e = (struct rp_end){ .shm_fd = -1, .bell = -1, .wake = -1, .gate = -1,
			     .drain = -1 };
	atomic_store(&e->refs, 1);
	return e;
}

_Static_assert((sizeof(struct rp_end) & (sizeof(struct rp_end) - 1)) == 0,
	       "a handle's slot is found with a mask");

void rp__end_unref(struct rp_end *e)
{
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
		release(e);
}

static void end_unref(void *e)
{
	rp__end_unref(e);
}

/* A reference to an end that is still open, or EBADF. */
static bool ref_open(struct rp_end *e)
{
	if (!rp__ref_take(&e->refs)) {
		errno = EBADF;
		return false;
	}
	/* A close may have slipped in between the check and the reference. */
	if (atomic_load_explicit(&e->state, memory_order_acquire) != RP_OPEN) {
		rp__end_unref(e);
		errno = EBADF;
		return false;
	}
	return true;
}

struct rp_end *rp__end_ref(struct rp_end *e, bool lazy)
{
	rp__call_enter(lazy);
	if (!ref_open(e)) {
		rp__call_leave();
		return NULL;
	}
	rp__call_hold(e, end_unref);
	return e;
}

void rp__end_put_ref(struct rp_end *e)
{
	rp__call_drop();
	rp__end_unref(e);           /* may close descriptors: not cancellable */
	rp__call_leave();
}

/*
 * The calls of this thread in flight, for pthread_cancel(3).  A call that
 * holds references runs with cancellation disabled, so that no system
 * call inside the library acts on a cancel and leaves a reference, a
 * sleeper count or a half-done operation behind.  It may be cancelled
 * only where it sleeps for data or room (rp__cancel_window()), as read(2)
 * may; the sleep's cleanup handlers undo what the sleep holds, and the
 * references of the calls are given back when the cancelled thread exits
 * (calls_abandoned(), a thread-specific destructor: it runs after every
 * cleanup handler, which may still use the ends).
 *
 * One level per public call (a connection's call holds its end's
 * reference in its own level); a second level is a call made by a signal
 * handler that interrupted the first, which may be anywhere, so only a
 * call at the first level is ever cancellable.  Cancellation is disabled
 * before a level opens and its references are taken, and restored after
 * they are given back and it closes, so that even the asynchronous type
 * cannot act in between; each level keeps the state it found, and depth
 * moves before the level is written, so a handler calling in at any
 * instant saves and restores its own.  Deeper levels keep only the state
 * they found, a bit each in `deep` (they set it eagerly and track no
 * references).  Four full levels (a call and three nested handlers) are
 * 192 bytes of the library's static TLS (docs/API.md); eight made the
 * block 408 bytes, and a fresh python3 had room for four such libraries,
 * against seven of 232 bytes.
 */
#define CALL_NEST 4
struct call {
	void *slot[2];
	void (*unref[2])(void *);
	int n, state, type;
};
static __thread struct call held[CALL_NEST] RP_TLS_FAST;
static __thread volatile int depth RP_TLS_FAST;
/* Bit d - CALL_NEST: level d found cancellation enabled (d < CALL_NEST + 64;
 * a level deeper still restores nothing). */
static __thread volatile uint64_t deep RP_TLS_FAST;
#define DEEP_BIT(d) ((uint64_t)1 << ((d) - CALL_NEST))
#define DEEP_MAX    (CALL_NEST + 64)
static __thread bool exit_hook RP_TLS_FAST;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void calls_abandoned(void *unused)
{
	(void)unused;
	while (depth > 0) {
		int d = --depth;
		for (int i = d < CALL_NEST ? held[d].n : 0; i-- > 0;)
			held[d].unref[i](held[d].slot[i]);
	}
}

static void exit_key_init(void)
{
	pthread_key_create(&exit_key, calls_abandoned);
}

/* A lazy level's state before rp__call_quiet(): not yet touched. */
#define CANCEL_UNTOUCHED (-1)

void rp__call_enter(bool lazy)
{
	int state = CANCEL_UNTOUCHED;
	int d = depth;
	if (!lazy || d >= CALL_NEST)
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
	depth = d + 1;
	atomic_signal_fence(memory_order_seq_cst);  /* a handler: level d+1 */
	if (d < CALL_NEST)
		held[d] = (struct call){ .n = 0, .state = state };
	else if (d < DEEP_MAX)
		deep = state == PTHREAD_CANCEL_ENABLE ? deep | DEEP_BIT(d)
						      : deep & ~DEEP_BIT(d);
	if (!exit_hook) {
		/* Once per thread: a non-NULL value makes the destructor run. */
		pthread_once(&exit_once, exit_key_init);
		exit_hook = pthread_setspecific(exit_key, &exit_hook) == 0;
	}
}

void rp__call_leave(void)
{
	int d = depth - 1;
	if (d < 0)
		return;
	int err = errno;
	int state = d < CALL_NEST ? held[d].state
		  : d >= DEEP_MAX ? CANCEL_UNTOUCHED
		  : deep & DEEP_BIT(d) ? PTHREAD_CANCEL_ENABLE : PTHREAD_CANCEL_DISABLE;
	atomic_signal_fence(memory_order_seq_cst);  /* read before a handler */
	depth = d;                                   /* may take level d */
	if (state != CANCEL_UNTOUCHED)
		pthread_setcancelstate(state, NULL);
	errno = err;
}

/* A reference the current level holds (the call's, a connection's end). */
void rp__call_hold(void *slot, void (*unref)(void *))
{
	int d = depth - 1;
	if (d >= 0 && d < CALL_NEST && held[d].n < 2) {
		held[d].slot[held[d].n] = slot;
		held[d].unref[held[d].n] = unref;
		atomic_signal_fence(memory_order_seq_cst);
		held[d].n++;
	}
}

/* The last one held is about to be given back. */
void rp__call_drop(void)
{
	int d = depth - 1;
	if (d >= 0 && d < CALL_NEST && held[d].n > 0)
		held[d].n--;
}

/* A handler calling in between the look and the store saves and restores
 * its own state: ours is the same before and after it. */
void rp__call_quiet(void)
{
	int d = depth - 1;
	if (d >= 0 && d < CALL_NEST && held[d].state == CANCEL_UNTOUCHED)
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &held[d].state);
}

bool rp__call_cancellable(void)
{
	rp__call_quiet();
	return depth == 1 && held[0].state == PTHREAD_CANCEL_ENABLE;
}

void rp__cancel_window(bool open)
{
	int err = errno;
	if (open) {
		/* Deferred, whatever the caller's type: acted on only in the
		 * sleeping system call, whose cleanup is registered. */
		pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &held[0].type);
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	} else {
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		pthread_setcanceltype(held[0].type, NULL);
	}
	errno = err;
}

/* The end of a connection's call: its reference joins the call's level. */
struct rp_end *rp__end_ref_in_call(struct rp_end *e)
{
	if (!ref_open(e))
		return NULL;
	rp__call_hold(e, end_unref);
	return e;
}

void rp__end_put_in_call(struct rp_end *e)
{
	rp__call_drop();
	rp__end_unref(e);
}

/*
 * Once the end is closed, a hold that another thread has in it can no
 * longer be ended by its holder (its commit fails EBADF at the handle),
 * only by whoever takes it: here rp__hold_close(), or the end's release.
 * Until then the side's lock stays with the holder's TID, and a signal
 * handler of ours that wrote (read) through another end of the pipe would
 * wait for it for good, having interrupted the one thread that would give
 * it up (the membarrier of rp__hold_close() alone takes pending signals
 * on its return).  So, where another thread may hold, signals (but those
 * a fault raises) wait until the hold is ended: two system calls a close.
 */
int rp__end_close(struct rp_end *e)
{
	uint32_t open = RP_OPEN;
	sigset_t old;
	bool threads = !__libc_single_threaded;

	if (threads)
		rp__signals_defer(&old);
	bool closed = atomic_compare_exchange_strong(&e->state, &open, RP_CLOSED);
	if (closed)
		rp__hold_close(e);
	if (threads)
		rp__signals_restore(&old);
	if (!closed) {
		errno = EBADF;
		return -1;
	}
	/* A call in another thread may keep the descriptors open a while
	 * (release()): a program exec'd meanwhile (posix_spawn runs no fork
	 * handler) must not inherit them, or peers would miss the close. */
	if (!__libc_single_threaded)
		rp__close_on_exec(e);
	/* Closing the kernel ends is the close that peers observe: release()
	 * does it when no call is left in the end. */
	rp__end_unref(e);              /* the open end's own reference */
	return 0;
}
