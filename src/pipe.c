/*
 * pipe.c - the pipe state machine: read, write and their rules.
 *
 * The data path is: take the side's lock (a plain store when it is biased
 * to us, else one CAS), copy, publish the index with a release store, drop
 * the lock, and look whether a peer sleeps (loads; a fence only where the
 * peer cannot supply it).  No system call unless somebody has to sleep or
 * be woken.
 */
#include "internal.h"

#include <limits.h>
#include <string.h>

/*
 * Copy out of an iovec array starting `skip` bytes in.  The ring span is
 * contiguous thanks to the double mapping.
 */
static void iov_to_ring(unsigned char *dst, const struct iovec *iov, int cnt,
			size_t skip, size_t len)
{
	for (int i = 0; i < cnt && len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t n = iov[i].iov_len - skip;
		if (n > len)
			n = len;
		memcpy(dst, (const char *)iov[i].iov_base + skip, n);
		dst += n;
		len -= n;
		skip = 0;
	}
}

static void ring_to_iov(const struct iovec *iov, int cnt, size_t skip,
			const unsigned char *src, size_t len)
{
	for (int i = 0; i < cnt && len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t n = iov[i].iov_len - skip;
		if (n > len)
			n = len;
		memcpy((char *)iov[i].iov_base + skip, src, n);
		src += n;
		len -= n;
		skip = 0;
	}
}

static ssize_t iov_total(const struct iovec *iov, int cnt)
{
	size_t total = 0;

	if (cnt < 0 || cnt > 1024 || (cnt && !iov)) {
		errno = EINVAL;
		return -1;
	}
	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len && !iov[i].iov_base) {
			errno = EFAULT;
			return -1;
		}
		if (iov[i].iov_len > (size_t)SSIZE_MAX - total) {
			errno = EINVAL;
			return -1;
		}
		total += iov[i].iov_len;
	}
	return (ssize_t)total;
}

/* Enter the side's lock for a plain write or read.  It cancels this
 * thread's uncommitted reservation or releases its peek (which hold the
 * lock already; a close in another thread may be ending it: zerocopy.c);
 * another thread's makes us wait for its commit or consume (if the end is
 * non-blocking, only briefly: EAGAIN).  0, or -1 EDEADLK, EAGAIN or
 * EBADF. */
static inline RP_HOT int side_enter(struct rp_end *e, int side)
{
	if (rp__held_by_me(e)) {
		if (!rp__hold_use(e))
			return -1;
		rp__hold_clear(e);
		rp__hold_idle(e);
		return 0;
	}
	return rp__lock_call(e, rp__side_lock(e, side), side);
}

static ssize_t write_iov(struct rp_end *e, const struct iovec *iov, int cnt,
			 size_t total);

/* The body of a write, entered holding the writers' lock. */
static ssize_t write_locked(struct rp_end *e, const struct iovec *iov, int cnt,
			    size_t total)
{
	rp__call_quiet();       /* it may sleep, raise SIGPIPE, fcntl */
	struct rp_shared *sh = e->sh;
	bool atomic = total <= RP_PIPE_BUF;
	size_t done = 0;
	int err;

	for (;;) {
		if (rp__readers_gone_hint(e)) {
			rp__unlock(e, &sh->wlock);
			goto no_readers;
		}
		size_t want = total - done;
		uint64_t head = atomic_load_explicit(&sh->head, memory_order_relaxed);
		int64_t used = rp__queued_for_writer(e, head, atomic ? want : 1);
		if (used < 0) {
			err = EIO;
			goto fail;
		}
		uint64_t room = e->ring.cap - (uint64_t)used;
		if (room && (!atomic || room >= want)) {
			size_t n = room < want ? (size_t)room : want;
			/* Publish big writes a quarter ring at a time, so the reader
			 * works on one part while we copy the next. */
			if (!atomic && n > e->ring.cap / 4 && n > RP_PIPE_BUF)
				n = e->ring.cap / 4 > RP_PIPE_BUF ? e->ring.cap / 4 : RP_PIPE_BUF;
			iov_to_ring(e->data + rp_ring_off(&e->ring, head), iov,
				    cnt, done, n);
			rp__publish_head(e, head + n, RP_PUBLISH);
			done += n;
			rp__wake_readers(e);
			if (done == total)
				break;
			continue;
		}
		uint64_t need = atomic ? want : 1;
		if (rp__nb(e)) {
			if (rp__gate_close(e, need) == RP_WAIT_READY)
				continue;
			err = errno;        /* EAGAIN, or EPIPE with no reader */
			goto fail;
		}
		int r = rp__wait_writable(e, need, true, done > 0);
		if (r == RP_WAIT_GONE)
			goto no_readers;
		if (r < 0) {
			err = errno;
			goto fail_unlocked;
		}
		if (rp__lock(e, &sh->wlock) < 0) {
			err = errno;
			goto fail_unlocked;
		}
	}
	rp__unlock(e, &sh->wlock);
	return (ssize_t)done;

no_readers:
	e->widowed = 1;
	/* The kernel raises SIGPIPE even when it returns a partial count. */
	if (rp__raise_epipe(e) < 0)
		return done ? (ssize_t)done : -1;
	if (done)
		return (ssize_t)done;
	/* A reader opened the FIFO meanwhile: start over. */
	return write_iov(e, iov, cnt, total);
fail:
	rp__unlock(e, &sh->wlock);
fail_unlocked:
	if (done)
		return (ssize_t)done;
	errno = err;
	return -1;
}

static ssize_t write_iov(struct rp_end *e, const struct iovec *iov, int cnt,
			 size_t total)
{
	if (side_enter(e, RP_WSIDE) < 0)
		return -1;
	return write_locked(e, iov, cnt, total);
}

/*
 * The common write on its own: at most PIPE_BUF bytes (n >= 1) that fit
 * at once.  It is write_locked()'s first round without the iovec walk,
 * the quarter-ring split and the loop, and with fewer registers to save:
 * a 64-byte write and read cost 385 instructions instead of 567 (and,
 * when it came, 30-33 ns instead of 42 in one process: DESIGN.md, "Small
 * writes").  rp_write, and rp_writev of one buffer, come here; anything
 * else goes the general way, still locked.
 */
static inline RP_HOT ssize_t write_small(struct rp_end *e, const void *buf, size_t n)
{
	struct rp_shared *sh = e->sh;
	const uint64_t cap = e->ring.cap;

	if (side_enter(e, RP_WSIDE) < 0)
		return -1;
	if (__builtin_expect(!rp__readers_gone_hint(e), 1)) {
		uint64_t head = atomic_load_explicit(&sh->head, memory_order_relaxed);
		/* One test for "valid and room for n" (n <= PIPE_BUF < cap):
		 * a corrupt or stale view fails it and takes the long way. */
		if (head - e->peer > cap - n)
			e->peer = atomic_load_explicit(&sh->tail, memory_order_acquire);
		if (__builtin_expect(head - e->peer <= cap - n, 1)) {
			/* Contiguous to the end of the span: the double mapping. */
			memcpy(e->data + rp_ring_off(&e->ring, head), buf, n);
			rp__publish_head(e, head + n, RP_PUBLISH);
			rp__wake_readers(e);
			rp__unlock_at(e, &sh->wlock, RP_WSIDE);
			return (ssize_t)n;
		}
	}
	struct iovec v = { (void *)buf, n };
	return write_locked(e, &v, 1, n);
}

/* The body of a read, entered holding the readers' lock. */
static ssize_t read_locked(struct rp_end *e, const struct iovec *iov, int cnt,
			   size_t total)
{
	rp__call_quiet();       /* it may sleep */
	struct rp_shared *sh = e->sh;
	bool writers_gone = false;

	for (;;) {
		uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_relaxed);
		/* Likewise the head we saw last: reload only if it shows less
		 * than the caller wants (or is behind another reader's tail). */
		int64_t used = rp_ring_used(&e->ring, e->peer, tail);
		if (used < 0 || (uint64_t)used < total) {
			e->peer = atomic_load_explicit(&sh->head, memory_order_acquire);
			used = rp_ring_used(&e->ring, e->peer, tail);
			if (used < 0) {
				rp__unlock(e, &sh->rlock);
				errno = EIO;
				return -1;
			}
		}
		if (used > 0) {
			size_t n = (uint64_t)used < total ? (size_t)used : total;
			ring_to_iov(iov, cnt, 0,
				    e->data + rp_ring_off(&e->ring, tail), n);
			rp__publish_tail(e, tail + n, RP_PUBLISH_UNLOCKED);
			if (n == (uint64_t)used)
				rp__reader_emptied(e);
			rp__unlock(e, &sh->rlock);
			rp__mb_after_unlock(e);
			rp__wake_writers(e);
			return (ssize_t)n;
		}
		if (writers_gone)
			break;
		if (rp__nb(e)) {
			e->polled = 1;
			int r = rp__poll_arm_reader(e);
			if (r == RP_WAIT_READY)
				continue;
			rp__unlock(e, &sh->rlock);
			return r == RP_WAIT_GONE ? 0 : -1;
		}
		int r = rp__wait_readable(e, true);
		if (r < 0)
			return -1;
		/* No writer left: what is still queued is read before EOF. */
		writers_gone = r == RP_WAIT_GONE;
		if (rp__lock(e, &sh->rlock) < 0)
			return -1;
	}
	rp__unlock(e, &sh->rlock);
	return 0;
}

static ssize_t read_iov(struct rp_end *e, const struct iovec *iov, int cnt,
			size_t total)
{
	if (side_enter(e, RP_RSIDE) < 0)
		return -1;
	return read_locked(e, iov, cnt, total);
}

/* The common read on its own (n >= 1): whatever is queued, up to n, as
 * read_locked()'s first round; an empty ring goes the general way. */
static inline RP_HOT ssize_t read_small(struct rp_end *e, void *buf, size_t n)
{
	struct rp_shared *sh = e->sh;
	const uint64_t cap = e->ring.cap;

	if (side_enter(e, RP_RSIDE) < 0)
		return -1;
	uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_relaxed);
	uint64_t used = e->peer - tail;
	if (used < n || used > cap) {
		e->peer = atomic_load_explicit(&sh->head, memory_order_acquire);
		used = e->peer - tail;
	}
	/* 1..cap bytes: anything else is empty or corrupt. */
	if (__builtin_expect(used - 1 < cap, 1)) {
		size_t k = used < n ? (size_t)used : n;
		memcpy(buf, e->data + rp_ring_off(&e->ring, tail), k);
		rp__publish_tail(e, tail + k, RP_PUBLISH_UNLOCKED);
		if (k == used)
			rp__reader_emptied(e);
		rp__unlock_at(e, &sh->rlock, RP_RSIDE);
		rp__mb_after_unlock(e);
		rp__wake_writers(e);
		return (ssize_t)k;
	}
	struct iovec v = { buf, n };
	return read_locked(e, &v, 1, n);
}

/* rp_write and rp_read check their one buffer themselves: iov_total's
 * loop was a tenth of a small call. */
static ssize_t buf_total(const void *buf, size_t n)
{
	if (n > SSIZE_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (n && !buf) {
		errno = EFAULT;
		return -1;
	}
	return (ssize_t)n;
}

/* One buffer, the common case, takes the small paths; total is -1 when
 * the arguments were refused (errno set). */
static inline RP_HOT ssize_t do_write(rp_end *h, const struct iovec *iov, int cnt, ssize_t total)
{
	struct rp_end *e = rp__end_get_as(h, RP_WRITER, true);
	if (!e)
		return -1;
	rp__note_answer();
	ssize_t r = total;
	if (cnt == 1 && (size_t)r - 1 < RP_PIPE_BUF)
		r = write_small(e, iov->iov_base, (size_t)r);
	else if (r > 0)
		r = write_iov(e, iov, cnt, (size_t)r);
	rp__end_put(e);
	return r;
}

static inline RP_HOT ssize_t do_read(rp_end *h, const struct iovec *iov, int cnt, ssize_t total)
{
	struct rp_end *e = rp__end_get_as(h, RP_READER, true);
	if (!e)
		return -1;
	ssize_t r = total;
	if (cnt == 1 && r > 0)
		r = read_small(e, iov->iov_base, (size_t)r);
	else if (r > 0)
		r = read_iov(e, iov, cnt, (size_t)r);
	rp__end_put(e);
	return r;
}

ssize_t rp_write(rp_end *h, const void *buf, size_t n)
{
	struct iovec v = { (void *)buf, n };
	return do_write(h, &v, 1, buf_total(buf, n));
}

ssize_t rp_read(rp_end *h, void *buf, size_t n)
{
	struct iovec v = { buf, n };
	return do_read(h, &v, 1, buf_total(buf, n));
}

ssize_t rp_writev(rp_end *h, const struct iovec *iov, int cnt)
{
	return do_write(h, iov, cnt, iov_total(iov, cnt));
}

ssize_t rp_readv(rp_end *h, const struct iovec *iov, int cnt)
{
	return do_read(h, iov, cnt, iov_total(iov, cnt));
}

int rp_close(rp_end *h)
{
	struct rp_end *e = rp__end_get(h, 0);
	if (!e)
		return -1;
	int r = rp__end_close(e);
	rp__end_put(e);
	return r;
}

int rp_fileno(rp_end *h)
{
	struct rp_end *e = rp__end_get(h, 0);
	if (!e)
		return -1;
	int fd = e->role == RP_READER ? e->bell : e->gate;
	if (e->role == RP_WRITER) {
		/* From now on somebody may poll a write end: a write that fills
		 * the ring shuts the gate, and if it is full now, shut it. */
		if (!atomic_load_explicit(&e->sh->wr_polled, memory_order_relaxed))
			atomic_store(&e->sh->wr_polled, 1);
		rp__gate_shut_full(e);
	} else {
		/* Readers in other processes must keep the tokens exact too
		 * (they may share this end, or empty the ring for it). */
		if (!atomic_load_explicit(&e->sh->rd_polled, memory_order_relaxed))
			atomic_store(&e->sh->rd_polled, 1);
		if (!e->polled) {
			/* From now on somebody may poll: drop stale tokens, arm. */
			e->polled = 1;
			int saved = errno;
			if (rp__lock(e, &e->sh->rlock) == 0) {
				rp__poll_arm_reader(e);
				rp__unlock(e, &e->sh->rlock);
			}
			errno = saved;
		}
	}
	rp__end_put(e);
	return fd;
}

int rp_set_nonblock(rp_end *h, int on)
{
	struct rp_end *e = rp__end_get(h, 0);
	if (!e)
		return -1;
	int r = rp__set_nonblocking(e, on != 0);
	rp__end_put(e);
	return r;
}

ssize_t rp_nread(rp_end *h)
{
	struct rp_end *e = rp__end_get(h, 0);
	if (!e)
		return -1;
	uint64_t head = atomic_load_explicit(&e->sh->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&e->sh->tail, memory_order_acquire);
	int64_t used = rp_ring_used(&e->ring, head, tail);
	rp__end_put(e);
	if (used < 0)
		errno = EIO;
	return used;
}

size_t rp_capacity(rp_end *h)
{
	struct rp_end *e = rp__end_get(h, 0);
	if (!e)
		return 0;
	size_t cap = e->ring.cap;
	rp__end_put(e);
	return cap;
}
