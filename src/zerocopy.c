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
 * Another thread closed the end while we slept for room (or data): no
 * commit (consume) could follow, and the span would be unmapped when we
 * return, so there is none to hand out: EBADF, as for any call on a
 * closed end.
 */
static bool closed_meanwhile(struct rp_end *e)
{
	if (atomic_load_explicit(&e->state, memory_order_acquire) == RP_OPEN)
		return false;
	errno = EBADF;
	return true;
}

void *rp_write_reserve(rp_end *h, size_t n)
{
	struct rp_end *e = rp__end_get(h, RP_WRITER);
	if (!e)
		return NULL;
	struct rp_shared *sh = e->sh;
	void *span = NULL;

	if (n > e->ring.cap) {
		errno = EINVAL;
		goto out;
	}
	/* A second reserve by the same thread replaces the first. */
	if (!rp__held_by_me(e) && rp__lock_call(e, &sh->wlock, RP_WSIDE) < 0)
		goto out;
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
			if (closed_meanwhile(e))
				break;
			rp__hold_set(e, head, n);
			span = e->data + rp_ring_off(&e->ring, head);
			goto out;
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
	rp__unlock(e, &sh->wlock);
	errno = err;
out:
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
		errno = EINVAL;
	} else {
		rp__publish_head(e, e->held_pos + n, RP_PUBLISH);
		rp__hold_clear(e);
		rp__wake_readers(e);        /* under the lock: see rp__reader_emptied */
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
	bool writers_gone = false;

	if (!np) {
		errno = EINVAL;
		goto out;
	}
	*np = 0;
	if (!rp__held_by_me(e) && rp__lock_call(e, &sh->rlock, RP_RSIDE) < 0)
		goto out;
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
			if (closed_meanwhile(e))
				break;
			rp__hold_set(e, tail, (uint64_t)used);
			*np = (size_t)used;
			span = e->data + rp_ring_off(&e->ring, tail);
			goto out;
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
	rp__unlock(e, &sh->rlock);
	errno = err;
out:
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
		errno = EINVAL;
	} else {
		rp__publish_tail(e, e->held_pos + n, RP_PUBLISH_UNLOCKED);
		if (n == e->held_len)   /* all we saw: keep poll(2) exact, as a read */
			rp__reader_emptied(e);
		rp__hold_clear(e);
		rp__unlock(e, &e->sh->rlock);
		rp__mb_after_unlock(e);
		rp__wake_writers(e);
		r = 0;
	}
	rp__end_put(e);
	return r;
}
