/*
 * zerocopy.c - reserve/commit and peek/consume.
 *
 * A reservation (or a peek) holds its side's lock until the commit (or the
 * consume), which is what makes a committed span atomic whatever its size,
 * and what keeps a second reserver from being handed the same bytes.  The
 * position is remembered privately, so the publish never trusts what the
 * shared page says in between.
 */
#include "internal.h"

/*
 * Hold the span at pos, unless another thread closed the end while we
 * slept for room (or data), or closes it now: no commit (consume) could
 * follow, and the span would be unmapped when we return, so there is none
 * to hand out: EBADF, as for any call on a closed end.  The hold is set
 * before the state is looked at, so that a close either finds the hold
 * and ends it or is seen here; one that is neither (the store and the load
 * may pass each other) leaves the hold to the end's release, which comes
 * after this call.  False, with the side's lock still ours to give up, or
 * lost to the close that took the hold (*lost).
 */
static bool hold(struct rp_end *e, uint64_t pos, uint64_t len, bool *lost)
{
	rp__hold_set(e, pos, len);
	if (atomic_load_explicit(&e->state, memory_order_acquire) == RP_OPEN)
		return true;
	*lost = !rp__hold_take(e);
	errno = EBADF;
	return false;
}

/* A new hold, under the side's lock, which no holder is using now: a
 * busy mark still set was left by a second reserve (peek) that lost the
 * lock on its way or was cancelled in its sleep, and would make a close
 * leave this hold to nobody. */
static inline void fresh_mark(struct rp_end *e)
{
	atomic_store_explicit(&e->held_busy, 0, memory_order_relaxed);
}

/* A second reserve (peek) made a new hold, and keeps the lock for it:
 * the mark goes, and a close that saw the mark (and left the hold to us)
 * is seen now, as in rp__hold_use().  False if the end was closed (the
 * hold is gone). */
static bool hold_kept(struct rp_end *e)
{
	if (rp__hold_mark(e, 0))
		return true;
	rp__hold_abandon(e);
	return false;
}

/* No hold of ours to end: EINVAL, or EBADF once another thread's close
 * has ended it. */
static int not_held_errno(const struct rp_end *e)
{
	return atomic_load_explicit(&e->state, memory_order_acquire) == RP_OPEN ?
	       EINVAL : EBADF;
}

/*
 * The end is closed (by us, or a wait of ours on its lock found it so):
 * end the hold unless its holder is using it, which it then ends itself
 * (rp__hold_idle(), hold_kept()).  The fence is for the holder's plain
 * stores of the mark, and not needed where the holder is us.  A hold that
 * both miss (a first reserve's store and load may pass each other:
 * hold()) is ended by the end's release, or sooner by a call of ours
 * waiting for its lock (lock.c), whose reference keeps the release away.
 */
void rp__hold_close(struct rp_end *e)
{
	if (rp__light_publish && !__libc_single_threaded &&
	    atomic_load_explicit(&e->held, memory_order_seq_cst) &&
	    atomic_load_explicit(&e->held_tid, memory_order_relaxed) != rp__tid_cache)
		rp__fence_threads(e);
	if (!atomic_load_explicit(&e->held_busy, memory_order_seq_cst))
		rp__hold_abandon(e);
}

void rp__hold_orphaned(struct rp_end *e)
{
	if (atomic_load_explicit(&e->state, memory_order_acquire) != RP_OPEN &&
	    atomic_load_explicit(&e->held, memory_order_acquire))
		rp__hold_close(e);
}

/*
 * Any thread may end a hold this way, so the lock is given up as
 * rp__unlock_at() would, except for the count of biased locks its thread
 * is in (rp__bias_depth), which is the holder's: a count too low would let
 * a signal handler of the closing thread take a lock that thread holds.
 * A holder in another thread keeps a count too high (it is not told),
 * which costs at most an EDEADLK where a dead thread of its TID left a
 * busy flag.
 *
 * Signals (but a fault's) are held off from the take to the unlock:
 * between the two the lock belongs to nobody who will give it up but us,
 * and a handler of ours that wrote (read) through another end of the pipe
 * would wait for it for good.  Two system calls, only when there is a
 * hold to end.  (A close holds them off from before its state store:
 * rp__end_close().)
 */
static void abandon_taken(struct rp_end *e);

void rp__hold_abandon(struct rp_end *e)
{
	/* seq_cst, as the exchange was: after the close's store of the state. */
	if (!atomic_load_explicit(&e->held, memory_order_seq_cst))
		return;
	sigset_t old;
	rp__signals_defer(&old);
	if (rp__hold_take(e))
		abandon_taken(e);
	rp__signals_restore(&old);
}

static void abandon_taken(struct rp_end *e)
{
	uint32_t tid = atomic_load_explicit(&e->held_tid, memory_order_relaxed);
	int side = e->role == RP_WRITER ? RP_WSIDE : RP_RSIDE;
	struct rp_lockword *l = rp__side_lock(e, side);
	uint32_t w = atomic_load_explicit(&e->bias_in[side], memory_order_relaxed);
	if (!w) {
		rp__unlock_held(e, l);
		return;
	}
	atomic_store_explicit(&e->bias_in[side], 0, memory_order_relaxed);
	if (tid == rp__tid_cache) {
		rp__bias_leave(l, w);
		atomic_signal_fence(memory_order_seq_cst);
		if (rp__bias_depth)
			rp__bias_depth--;
		return;
	}
	/* Another thread's bias: a revoker waiting for it is woken but not
	 * told that its owner saw the revocation (the owner did not: lock.c),
	 * so it fences before it goes in. */
	rp__bias_leave_as(l, w, RP_LOCK_NOACK);
}

void *rp_write_reserve(rp_end *h, size_t n)
{
	struct rp_end *e = rp__end_get(h, RP_WRITER);
	if (!e)
		return NULL;
	struct rp_shared *sh = e->sh;
	void *span = NULL;
	bool again = false;

	if (n > e->ring.cap) {
		errno = EINVAL;
		goto out;
	}
	/* A second reserve by the same thread replaces the first. */
	again = rp__held_by_me(e);
	if (again ? !rp__hold_use(e) : rp__lock_call(e, &sh->wlock, RP_WSIDE) < 0)
		goto out;
	if (!again)
		fresh_mark(e);
	rp__hold_clear(e);
	for (;;) {
		uint64_t head = atomic_load_explicit(&sh->head, memory_order_relaxed);
		int64_t used = rp__queued_for_writer(e, head, n);
		if (used < 0) {
			errno = EIO;
			break;
		}
		if (rp__readers_gone_hint(e)) {
			rp__unlock(e, &sh->wlock);
			if (rp__raise_epipe(e) < 0)
				goto out;
			if (rp__lock(e, &sh->wlock) < 0)
				goto out;
			continue;
		}
		if (e->ring.cap - (uint64_t)used >= n) {
			bool lost = false;
			if (hold(e, head, n, &lost))
				span = e->data + rp_ring_off(&e->ring, head);
			if (span || lost)
				goto out;
			break;
		}
		if (rp__nb(e)) {
			if (rp__gate_close(e, n) == RP_WAIT_READY)
				continue;
			break;
		}
		int r = rp__wait_writable(e, n, true, false);
		if (r == RP_WAIT_GONE) {
			if (rp__raise_epipe(e) < 0)
				goto out;
		} else if (r < 0) {
			goto out;
		}
		if (rp__lock(e, &sh->wlock) < 0)
			goto out;
	}
	int err = errno;
	if (again)
		rp__hold_idle(e);       /* (no hold: cleared above) */
	rp__unlock(e, &sh->wlock);
	errno = err;
out:
	/* A lock lost on the way leaves the mark for the next new hold. */
	if (again && span && !hold_kept(e)) {
		span = NULL;
		errno = EBADF;
	}
	rp__end_put(e);
	return span;
}

int rp_write_commit(rp_end *h, size_t n)
{
	struct rp_end *e = rp__end_get(h, RP_WRITER);
	if (!e)
		return -1;
	rp__note_answer();
	int r = -1;
	if (!rp__held_by_me(e) || n > e->held_len) {
		errno = not_held_errno(e);
	} else if (rp__hold_use(e)) {
		rp__publish_head(e, e->held_pos + n, RP_PUBLISH);
		rp__hold_clear(e);
		rp__wake_readers(e);        /* under the lock: see rp__reader_emptied */
		rp__hold_idle(e);
		rp__unlock(e, &e->sh->wlock);
		r = 0;
	}
	rp__end_put(e);
	return r;
}

const void *rp_read_peek(rp_end *h, size_t *np)
{
	struct rp_end *e = rp__end_get(h, RP_READER);
	if (!e) {
		if (np)
			*np = 0;
		return NULL;
	}
	struct rp_shared *sh = e->sh;
	const void *span = NULL;
	bool writers_gone = false, again = false;

	if (!np) {
		errno = EINVAL;
		goto out;
	}
	*np = 0;
	again = rp__held_by_me(e);      /* a second peek replaces the first */
	if (again ? !rp__hold_use(e) : rp__lock_call(e, &sh->rlock, RP_RSIDE) < 0)
		goto out;
	if (!again)
		fresh_mark(e);
	rp__hold_clear(e);
	for (;;) {
		uint64_t head = atomic_load_explicit(&sh->head, memory_order_acquire);
		uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_relaxed);
		int64_t used = rp_ring_used(&e->ring, head, tail);
		if (used < 0) {
			errno = EIO;
			break;
		}
		if (used > 0) {
			bool lost = false;
			if (hold(e, tail, (uint64_t)used, &lost)) {
				*np = (size_t)used;
				span = e->data + rp_ring_off(&e->ring, tail);
			}
			if (span || lost)
				goto out;
			break;
		}
		if (writers_gone) {
			errno = 0;          /* EOF */
			break;
		}
		if (rp__nb(e)) {
			e->polled = 1;
			int r = rp__poll_arm_reader(e);
			if (r == RP_WAIT_READY)
				continue;
			if (r == RP_WAIT_GONE)
				errno = 0;
			break;
		}
		int r = rp__wait_readable(e, true);
		if (r < 0)
			goto out;
		writers_gone = r == RP_WAIT_GONE;
		if (rp__lock(e, &sh->rlock) < 0)
			goto out;
	}
	int err = errno;
	if (again)
		rp__hold_idle(e);       /* (no hold: cleared above) */
	rp__unlock(e, &sh->rlock);
	errno = err;
out:
	/* A lock lost on the way leaves the mark for the next new hold. */
	if (again && span && !hold_kept(e)) {
		span = NULL;
		*np = 0;
		errno = EBADF;
	}
	rp__end_put(e);
	return span;
}

int rp_read_consume(rp_end *h, size_t n)
{
	struct rp_end *e = rp__end_get(h, RP_READER);
	if (!e)
		return -1;
	int r = -1;
	if (!rp__held_by_me(e) || n > e->held_len) {
		errno = not_held_errno(e);
	} else if (rp__hold_use(e)) {
		rp__publish_tail(e, e->held_pos + n, RP_PUBLISH_UNLOCKED);
		if (n == e->held_len)   /* all we saw: keep poll(2) exact, as a read */
			rp__reader_emptied(e);
		rp__hold_clear(e);
		rp__hold_idle(e);
		rp__unlock(e, &e->sh->rlock);
		rp__mb_after_unlock(e);
		rp__wake_writers(e);
		r = 0;
	}
	rp__end_put(e);
	return r;
}
