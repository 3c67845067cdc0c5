/*
 * conn.c - messages over byte pipes, in the model of multiprocessing.Pipe().
 *
 * See frame.h for the chunk format.  A sender holds the writers' lock for
 * its whole message, sleeping with it if the ring is full, so messages of
 * any size never interleave and stream through a ring smaller than they
 * are.  A receiver holds the readers' lock while it is inside a message,
 * for the same reason.  Both use the byte pipe's machinery for sleeping,
 * waking, EOF and EPIPE.
 */
#include "internal.h"
#include "frame.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define CONN_SLOTS 65536

struct rp_conn {
	_Atomic uint32_t state;
	/* The open connection's, and one per call in a threaded process, as
	 * an end's (end.c): rp_conn_close frees nothing under another
	 * thread's call. */
	_Atomic uint32_t refs;
	rp_end *rd, *wr;
	uint64_t max_msg;
	/* A message that a signal interrupted, kept for the next call. */
	unsigned char *stage;
	uint64_t stage_total, stage_got;
	struct rp_conn *next_free;
};

/* Slots are never unmapped, for the same reason as the ends' (end.c).
 * Atomic because conn_get() reads them without the lock. */
static _Atomic(struct rp_conn *) pool;
static _Atomic size_t pool_top;
static struct rp_conn *free_list;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_lock(void)
{
	pthread_mutex_lock(&pool_mu);
}

static void pool_unlock(void)
{
	pthread_mutex_unlock(&pool_mu);
}

static void conn_release(struct rp_conn *c);

/* The child has one thread: every open connection is back to its own
 * reference, and one that a parent thread closed under its call goes. */
static void pool_child(void)
{
	pthread_mutex_init(&pool_mu, NULL);
	struct rp_conn *p = atomic_load(&pool);
	size_t top = atomic_load(&pool_top);
	for (size_t i = 0; i < top; i++) {
		uint32_t st = atomic_load(&p[i].state);
		if (st == RP_OPEN)
			atomic_store(&p[i].refs, 1);
		else if (st == RP_CLOSED)
			conn_release(&p[i]);
	}
}

static void pool_init(void)
{
	void *p = mmap(NULL, CONN_SLOTS * sizeof(struct rp_conn),
		       PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return;
	atomic_store(&pool, p);
	pthread_atfork(pool_lock, pool_unlock, pool_child);
}

static struct rp_conn *conn_alloc(void)
{
	struct rp_conn *c = NULL;

	pthread_once(&pool_once, pool_init);
	struct rp_conn *p = atomic_load(&pool);
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	pool_lock();
	size_t top = atomic_load_explicit(&pool_top, memory_order_relaxed);
	if (free_list) {
		c = free_list;
		free_list = c->next_free;
	} else if (top < CONN_SLOTS) {
		c = &p[top];
		atomic_store_explicit(&pool_top, top + 1, memory_order_relaxed);
	}
	pool_unlock();
	if (!c) {
		errno = EMFILE;
		return NULL;
	}
	atomic_store(&c->refs, 1);
	c->rd = c->wr = NULL;
	c->max_msg = RP_DEFAULT_MAX_MESSAGE;
	c->stage = NULL;
	c->next_free = NULL;
	return c;
}

/* Back on the free list, with what the connection owned. */
static void conn_release(struct rp_conn *c)
{
	int err = errno;
	unsigned char *stage = c->stage;
	c->stage = NULL;            /* forgotten first: a fork frees it once */
	atomic_signal_fence(memory_order_seq_cst);
	free(stage);
	pool_lock();
	atomic_store(&c->state, RP_FREE);
	c->next_free = free_list;
	free_list = c;
	pool_unlock();
	errno = err;
}

static void conn_unref(struct rp_conn *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		conn_release(c);
}

static void conn_unref_any(void *c)
{
	conn_unref(c);
}

/* The connection behind h, checked (EBADF), and referenced for the call
 * while other threads could close it; conn_put() when done.  lazy: the
 * cancel state is left alone until rp__call_quiet() (rp_send, rp_recv). */
static inline RP_HOT struct rp_conn *conn_get_as(rp_conn *h, bool lazy)
{
	struct rp_conn *p = atomic_load_explicit(&pool, memory_order_relaxed);
	size_t top = atomic_load_explicit(&pool_top, memory_order_relaxed);
	uintptr_t off = (uintptr_t)h - (uintptr_t)p;
	if (!h || !p || off >= top * sizeof(struct rp_conn) ||
	    off % sizeof(struct rp_conn) ||
	    atomic_load_explicit(&h->state, memory_order_acquire) != RP_OPEN) {
		errno = EBADF;
		return NULL;
	}
	if (__libc_single_threaded)
		return h;
	rp__call_enter(lazy);
	if (!rp__ref_take(&h->refs)) {
		rp__call_leave();
		errno = EBADF;
		return NULL;
	}
	/* A close may have slipped in between the check and the reference. */
	if (atomic_load_explicit(&h->state, memory_order_acquire) != RP_OPEN) {
		conn_unref(h);
		rp__call_leave();
		errno = EBADF;
		return NULL;
	}
	rp__call_hold(h, conn_unref_any);
	return h;
}

static inline RP_HOT struct rp_conn *conn_get(rp_conn *h)
{
	return conn_get_as(h, false);
}

static inline RP_HOT void conn_put(struct rp_conn *c)
{
	if (!__libc_single_threaded) {
		rp__call_drop();
		conn_unref(c);
		rp__call_leave();
	}
}

/* poll(2) where the call may be cancelled, as poll(2) may (end.c): it
 * holds nothing that its references' release would not undo. */
static int cancellable_poll(struct pollfd *p, int ms)
{
	bool cancel = rp__call_cancellable();
	if (cancel)
		rp__cancel_window(true);
	int n = poll(p, 1, ms);
	if (cancel) {
		int err = errno;
		rp__cancel_window(false);
		errno = err;
	}
	return n;
}

rp_conn *rp_conn_from_ends(rp_end *rd, rp_end *wr)
{
	struct rp_end *r = NULL, *w = NULL;

	if (!rd && !wr) {
		errno = EINVAL;
		return NULL;
	}
	if ((rd && !(r = rp__end_get(rd, RP_READER))) ||
	    (wr && !(w = rp__end_get(wr, RP_WRITER)))) {
		if (r)
			rp__end_put(r);
		return NULL;
	}
	struct rp_conn *c = conn_alloc();
	if (c) {
		c->rd = rd;
		c->wr = wr;
		atomic_store_explicit(&c->state, RP_OPEN, memory_order_release);
	}
	if (r)
		rp__end_put(r);
	if (w)
		rp__end_put(w);
	return c;
}

static int make_conn_pipe(rp_conn *conns[2], int duplex)
{
	rp_end *a[2] = { NULL, NULL }, *b[2] = { NULL, NULL };

	if (!conns) {
		errno = EINVAL;
		return -1;
	}
	if (rp_pipe(a) < 0)
		return -1;
	if (duplex && rp_pipe(b) < 0)
		goto fail;
	/* One-way: conns[0] receives, conns[1] sends.  Duplex: a carries
	 * 1 -> 0 and b carries 0 -> 1. */
	conns[0] = rp_conn_from_ends(a[0], duplex ? b[1] : NULL);
	if (!conns[0])
		goto fail;
	conns[1] = rp_conn_from_ends(duplex ? b[0] : NULL, a[1]);
	if (!conns[1]) {
		conn_release(conns[0]);     /* its ends go below */
		goto fail;
	}
	return 0;
fail:;
	int err = errno;
	for (int i = 0; i < 2; i++) {
		if (a[i])
			rp_close(a[i]);
		if (b[i])
			rp_close(b[i]);
	}
	errno = err;
	return -1;
}

int rp_conn_pipe(rp_conn *conns[2], int duplex)
{
	int c = rp__cancel_off();
	int r = make_conn_pipe(conns, duplex);
	rp__cancel_back(c);
	return r;
}

int rp_conn_close(rp_conn *h)
{
	struct rp_conn *c = conn_get(h);
	if (!c)
		return -1;
	uint32_t open = RP_OPEN;
	if (!atomic_compare_exchange_strong(&c->state, &open, RP_CLOSED)) {
		conn_put(c);            /* another thread's close came first */
		errno = EBADF;
		return -1;
	}
	int r = 0;
	if (c->rd && rp_close(c->rd) < 0)
		r = -1;
	if (c->wr && rp_close(c->wr) < 0)
		r = -1;
	conn_unref(c);              /* the open connection's own reference */
	conn_put(c);
	return r;
}

int rp_conn_set_max_message(rp_conn *h, size_t max)
{
	struct rp_conn *c = conn_get(h);
	if (!c)
		return -1;
	c->max_msg = max;
	conn_put(c);
	return 0;
}

int rp_conn_fileno(rp_conn *h)
{
	struct rp_conn *c = conn_get(h);
	if (!c)
		return -1;
	int fd = rp_fileno(c->rd ? c->rd : c->wr);
	conn_put(c);
	return fd;
}

/* ---- sending ---- */

/*
 * A sender cancelled (pthread_cancel) asleep inside a message, holding
 * the writers' lock: give the message up and the lock back, as the error
 * path does, so that the receivers drop the part sent and the next sender
 * goes on (a biased lock is left by its owner only: end.c).
 */
struct sending { struct rp_end *e; bool multi; };

static void send_cancelled(void *arg)
{
	struct sending *s = arg;
	if (s->multi)
		atomic_store_explicit(&s->e->sh->msg_start, RP_NO_MSG,
				      memory_order_seq_cst);
	rp__unlock(s->e, &s->e->sh->wlock);
}

static int wait_room_in_message(struct rp_end *e, uint64_t need, bool multi)
{
	struct sending s = { e, multi };
	int r;
	pthread_cleanup_push(send_cancelled, &s);
	r = rp__wait_writable(e, need, false, false);
	pthread_cleanup_pop(0);
	return r;
}

static int send_msg(struct rp_end *e, const unsigned char *msg, uint64_t len)
{
	struct rp_shared *sh = e->sh;
	uint32_t maxp = rp_frame_max_payload(e->ring.cap);
	/* A message of one chunk appears whole with the publish of head, or
	 * not at all: only longer ones need msg_start (cut_message_len()),
	 * and a small message saves its two stores, each a full barrier. */
	bool multi = len > maxp;
	uint64_t off = 0;
	int err;

	if (rp__lock_call(e, &sh->wlock, RP_WSIDE) < 0)
		return -1;
	/* Whatever a previous holder (perhaps now dead) was sending is over. */
	if (atomic_load_explicit(&sh->msg_start, memory_order_seq_cst) != RP_NO_MSG)
		atomic_store_explicit(&sh->msg_start, RP_NO_MSG, memory_order_seq_cst);
	do {
		uint32_t n = len - off < maxp ? (uint32_t)(len - off) : maxp;
		uint64_t need = sizeof(struct rp_frame) + n;
		uint64_t head;
		for (;;) {
			if (rp__readers_gone_hint(e))
				goto epipe;
			head = atomic_load_explicit(&sh->head, memory_order_relaxed);
			int64_t used = rp__queued_for_writer(e, head, need);
			if (used < 0) {
				err = EIO;
				goto fail;
			}
			if (e->ring.cap - (uint64_t)used >= need)
				break;
			/* Non-blocking applies to starting a message; once started,
			 * it is finished, so that it is never left half sent. */
			if (off == 0 && rp__nb(e)) {
				if (rp__gate_close(e, need) == RP_WAIT_READY)
					continue;
				err = errno;
				goto fail;
			}
			/* Sleep with the lock held: the next sender must wait. */
			int r = wait_room_in_message(e, need, multi);
			if (r == RP_WAIT_GONE)
				goto epipe;
			if (r < 0) {
				err = errno;   /* EINTR: the receiver drops the part sent */
				goto fail;
			}
		}
		uint32_t flags = (off == 0 ? RP_FRAME_FIRST : 0) |
				 (off + n == len ? RP_FRAME_LAST : 0);
		struct rp_frame f = { RP_FRAME_MAGIC | flags, n, off == 0 ? len : off };
		unsigned char *dst = e->data + rp_ring_off(&e->ring, head);
		if (off == 0 && multi)
			atomic_store_explicit(&sh->msg_start, head, memory_order_seq_cst);
		memcpy(dst, &f, sizeof(f));
		if (n)
			memcpy(dst + sizeof(f), msg + off, n);
		rp__publish_head(e, head + need, RP_PUBLISH);
		rp__wake_readers(e);
		off += n;
	} while (off < len);
	/* After the LAST chunk is published: see cut_message_len(). */
	if (multi)
		atomic_store_explicit(&sh->msg_start, RP_NO_MSG, memory_order_seq_cst);
	rp__unlock(e, &sh->wlock);
	return 0;
epipe:
	if (multi)
		atomic_store_explicit(&sh->msg_start, RP_NO_MSG, memory_order_seq_cst);
	rp__unlock(e, &sh->wlock);
	e->widowed = 1;
	rp__raise_epipe(e);
	errno = EPIPE;
	return -1;
fail:
	/* Given up mid-message: the receiver will drop what was sent. */
	if (multi)
		atomic_store_explicit(&sh->msg_start, RP_NO_MSG, memory_order_seq_cst);
	rp__unlock(e, &sh->wlock);
	errno = err;
	return -1;
}

static inline RP_HOT int send_conn(struct rp_conn *c, const void *msg, size_t len)
{
	if (!c->wr) {
		errno = EBADF;
		return -1;
	}
	if (len && !msg) {
		errno = EFAULT;
		return -1;
	}
	if ((uint64_t)len > INT64_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	struct rp_end *e = rp__end_get_in_call(c->wr, RP_WRITER);
	if (!e)
		return -1;
	int r = send_msg(e, msg, len);
	rp__end_put_in(e);
	return r;
}

int rp_send(rp_conn *h, const void *msg, size_t len)
{
	struct rp_conn *c = conn_get_as(h, true);
	if (!c)
		return -1;
	rp__note_answer();
	int r = send_conn(c, msg, len);
	conn_put(c);
	return r;
}

/* ---- receiving ---- */

struct rx {
	unsigned char *dst;      /* where the message goes (NULL: skipping) */
	bool own;                /* dst was malloc'd here */
	bool in_msg, skipping;
	uint64_t total, got;
};

static void rx_drop(struct rx *x)
{
	if (x->own)
		free(x->dst);
	*x = (struct rx){ 0 };
}

/* A signal interrupted us inside a message: keep what we have. */
static void rx_stash(struct rp_conn *c, struct rx *x)
{
	/* A refused message has nothing worth keeping: the rest of it is
	 * skipped as orphan chunks by the next call. */
	if (!x->skipping) {
		unsigned char *keep = x->own ? x->dst : malloc(x->total ? x->total : 1);
		if (keep && !x->own && x->got)
			memcpy(keep, x->dst, x->got);
		if (keep) {
			c->stage = keep;
			c->stage_total = x->total;
			c->stage_got = x->got;
			x->own = false;
		}
	}
	rx_drop(x);
}

/*
 * Scan the chunks queued from `tail` (a FIRST chunk): 1 if the message's
 * LAST chunk is there, -1 if another message starts first (this one was
 * cut), 0 if neither; *end is where the scan stopped.
 */
static int scan_message(struct rp_end *e, uint64_t tail, uint64_t *end)
{
	uint64_t head = atomic_load_explicit(&e->sh->head, memory_order_seq_cst);
	uint64_t pos = tail;
	int r = 0;

	if (head - tail > e->ring.cap)
		head = tail;                /* corrupt: the decoder reports it */
	for (bool first = true; pos != head; first = false) {
		struct rp_frame f;
		memcpy(&f, e->data + rp_ring_off(&e->ring, pos), sizeof(f));
		if (!rp_frame_check(&f, head - pos))
			break;
		if (!first && (f.tag & RP_FRAME_FIRST)) {
			r = -1;
			break;
		}
		if (f.tag & RP_FRAME_LAST) {
			r = 1;
			break;
		}
		pos += sizeof(f) + f.len;
	}
	*end = pos;
	return r;
}

/*
 * The message whose FIRST chunk is at `tail` is too big for the caller.
 * EMSGSIZE keeps it queued for a retry, but only a message that can ever
 * be received deserves that: one that was cut short (its sender died, or
 * gave up on a signal) would wedge the connection.  The sender of the
 * message in progress records where it starts (msg_start) while it holds
 * the writers' lock, so a message is still coming only if msg_start names
 * it and a live process holds that lock.  Returns the bytes to skip to
 * drop a cut message, or 0 if it is whole or still being sent.
 */
static uint64_t cut_message_len(struct rp_end *e, uint64_t tail)
{
	uint64_t end;
	int r = scan_message(e, tail, &end);
	if (r != 0)
		return r > 0 ? 0 : end - tail;
	uint64_t start = atomic_load_explicit(&e->sh->msg_start, memory_order_seq_cst);
	if (start == tail && !rp__lock_abandoned(e, &e->sh->wlock))
		return 0;                   /* still being sent */
	/* The sender publishes LAST before it clears msg_start: look again. */
	r = scan_message(e, tail, &end);
	return r > 0 ? 0 : end - tail;
}

/* Start a message whose FIRST chunk says `total`; 0, or -1 (left queued). */
static int rx_begin(struct rp_conn *c, struct rx *x, uint64_t total, void *ubuf,
		    size_t cap, bool alloc)
{
	*x = (struct rx){ .in_msg = true, .total = total };
	if (alloc) {
		if (total > c->max_msg) {
			x->skipping = true;      /* refuse it, but do not wedge */
			return 0;
		}
		x->dst = malloc(total ? total : 1);
		if (!x->dst) {
			*x = (struct rx){ 0 };
			errno = ENOMEM;
			return -1;
		}
		x->own = true;
		return 0;
	}
	if (total > cap) {
		*x = (struct rx){ 0 };
		errno = EMSGSIZE;
		return -1;
	}
	x->dst = ubuf;
	return 0;
}

/* A receiver cancelled asleep inside a message, holding the readers'
 * lock: keep what it has for the next call, as a signal's EINTR does,
 * and give the lock back.  x comes by value, so that the receiver's own
 * stays in registers: a cancelled call never goes back to it. */
struct receiving { struct rp_conn *c; struct rp_end *e; struct rx x; };

static void recv_cancelled(void *arg)
{
	struct receiving *r = arg;
	rx_stash(r->c, &r->x);
	rp__unlock(r->e, &r->e->sh->rlock);
}

static int wait_data_in_message(struct rp_conn *c, struct rp_end *e, struct rx x)
{
	struct receiving rc = { c, e, x };
	int r;
	pthread_cleanup_push(recv_cancelled, &rc);
	r = rp__wait_readable(e, false);
	pthread_cleanup_pop(0);
	return r;
}

static ssize_t recv_msg(struct rp_conn *c, struct rp_end *e, void *ubuf,
			size_t cap, void **out)
{
	struct rp_shared *sh = e->sh;
	struct rx x = { 0 };
	bool writers_gone = false;
	int err;

	if (rp__lock_call(e, &sh->rlock, RP_RSIDE) < 0)
		return -1;
	if (c->stage) {
		if (!out && c->stage_total > cap) {
			err = EMSGSIZE;
			goto fail;
		}
		x = (struct rx){ .dst = c->stage, .own = true, .in_msg = true,
				 .total = c->stage_total, .got = c->stage_got };
		c->stage = NULL;
		if (!out) {
			memcpy(ubuf, x.dst, x.got);
			free(x.dst);
			x.dst = ubuf;
			x.own = false;
		}
	}
	for (;;) {
		uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_relaxed);
		/* As read_iov(): the head we saw last, reloaded when it shows
		 * nothing (or is behind another receiver's tail).  Writers
		 * publish whole frames, so it lies on a frame boundary. */
		bool fresh = false;
		int64_t used = rp_ring_used(&e->ring, e->peer, tail);
		if (used <= 0) {
			e->peer = atomic_load_explicit(&sh->head, memory_order_acquire);
			used = rp_ring_used(&e->ring, e->peer, tail);
			fresh = true;
		}
		uint64_t head = e->peer;
		if (used < 0) {
			err = EIO;
			goto fail;
		}
		if (used == 0) {
			if (writers_gone) {
				err = ENODATA;          /* a cut message is dropped */
				goto fail;
			}
			if (!x.in_msg && rp__nb(e)) {
				int r = rp__poll_arm_reader(e);
				if (r == RP_WAIT_READY)
					continue;
				if (r == RP_WAIT_GONE) {
					writers_gone = true;
					continue;
				}
				err = errno;
				goto fail;
			}
			/* Between messages, let other receivers in while we wait. */
			int r = x.in_msg ? wait_data_in_message(c, e, x) :
					   rp__wait_readable(e, true);
			err = errno;
			if (!x.in_msg && rp__lock(e, &sh->rlock) < 0)
				return -1;
			if (r == RP_WAIT_GONE) {
				writers_gone = true;
			} else if (r < 0) {
				if (x.in_msg)
					rx_stash(c, &x);
				goto fail;
			}
			continue;
		}
		struct rp_frame f;
		const unsigned char *src = e->data + rp_ring_off(&e->ring, tail);
		memcpy(&f, src, sizeof(f));
		if (!rp_frame_check(&f, (uint64_t)used)) {
			if (!fresh) {
				e->peer = tail;  /* stale head: reload, look again */
				continue;
			}
			/* Garbage: no boundary to resync on, so drop what is queued. */
			rp__publish_tail(e, head, RP_PUBLISH);
			rp__wake_writers(e);
			err = EBADMSG;
			goto fail;
		}
		uint32_t flags = f.tag & 0xffu;
		if (flags & RP_FRAME_FIRST) {
			/* Mid-message?  Its sender died or gave up: drop it. */
			rx_drop(&x);
			if (rx_begin(c, &x, f.pos, ubuf, cap, out != NULL) < 0) {
				uint64_t skip;
				if (errno == EMSGSIZE &&
				    (skip = cut_message_len(e, tail)) != 0) {
					rp__publish_tail(e, tail + skip, RP_PUBLISH);
					rp__wake_writers(e);
					continue;
				}
				err = errno;
				goto fail;
			}
		} else if (!x.in_msg || f.pos != x.got || f.len > x.total - x.got) {
			/* A piece of a message nobody is receiving: skip it. */
			rp__publish_tail(e, tail + sizeof(f) + f.len, RP_PUBLISH);
			rp__wake_writers(e);
			continue;
		}
		if (!x.skipping && f.len)
			memcpy(x.dst + x.got, src + sizeof(f), f.len);
		x.got += f.len;
		if ((flags & RP_FRAME_LAST) && x.got == x.total && !x.skipping) {
			/* Received whole: wake writers after the unlock, whose
			 * exchange is the handshake's barrier (RP_PUBLISH_UNLOCKED). */
			rp__publish_tail(e, tail + sizeof(f) + f.len,
					 RP_PUBLISH_UNLOCKED);
			rp__reader_emptied(e);
			rp__unlock(e, &sh->rlock);
			rp__mb_after_unlock(e);
			rp__wake_writers(e);
			if (out)
				*out = x.dst;
			return (ssize_t)x.total;
		}
		rp__publish_tail(e, tail + sizeof(f) + f.len, RP_PUBLISH);
		rp__wake_writers(e);
		if (flags & RP_FRAME_LAST) {
			/* Torn, or over the limit (refused and discarded). */
			err = x.got != x.total ? EBADMSG : EMSGSIZE;
			goto fail;           /* which drops it */
		}
	}
fail:
	rx_drop(&x);
	rp__unlock(e, &sh->rlock);
	errno = err;
	return -1;
}

static inline RP_HOT ssize_t recv_conn(struct rp_conn *c, void *buf, size_t cap, void **out)
{
	if (!c->rd) {
		errno = EBADF;
		return -1;
	}
	if (!out && cap && !buf) {
		errno = EFAULT;
		return -1;
	}
	struct rp_end *e = rp__end_get_in_call(c->rd, RP_READER);
	if (!e)
		return -1;
	ssize_t r = recv_msg(c, e, buf, cap, out);
	rp__end_put_in(e);
	return r;
}

static ssize_t recv_common(rp_conn *h, void *buf, size_t cap, void **out)
{
	struct rp_conn *c = conn_get_as(h, true);
	if (!c)
		return -1;
	ssize_t r = recv_conn(c, buf, cap, out);
	conn_put(c);
	return r;
}

ssize_t rp_recv(rp_conn *h, void *buf, size_t cap)
{
	return recv_common(h, buf, cap, NULL);
}

ssize_t rp_recv_alloc(rp_conn *h, void **msg)
{
	if (!msg) {
		errno = EFAULT;
		return -1;
	}
	*msg = NULL;
	return recv_common(h, NULL, 0, msg);
}

/* ---- waiting ---- */

static int64_t now_ms(void)
{
	return (int64_t)(rp__now_ns() / 1000000);
}

static int poll_conn(struct rp_conn *c, int timeout_ms)
{
	if (!c->rd) {
		errno = EBADF;
		return -1;
	}
	struct rp_end *e = rp__end_get_in_call(c->rd, RP_READER);
	if (!e)
		return -1;
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int r, recheck = rp__recheck_ms(0);
	bool spurious = false;
	for (;;) {
		if (rp__has_data(e) || c->stage) {
			r = 1;
			break;
		}
		e->polled = 1;
		int a = rp__poll_arm_reader(e);
		if (a == RP_WAIT_READY || a == RP_WAIT_GONE) {
			r = 1;              /* data, or EOF: recv will not block */
			break;
		}
		int wait = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				r = 0;
				break;
			}
			wait = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		/* Tokens we could not drain (a writer held its lock) make poll
		 * return at once: back off rather than spin on them. */
		if (spurious)
			poll(NULL, 0, 1);
		/* Look again now and then, in case a writer died between its
		 * publish and its token (wait.c) and no other writer comes by:
		 * nothing else would wake us. */
		if (recheck >= 0 && (wait < 0 || wait > recheck))
			wait = recheck;
		struct pollfd p = { .fd = e->bell, .events = POLLIN };
		int n = cancellable_poll(&p, wait);
		if (n < 0) {
			r = -1;             /* EINTR too, as poll(2) gives it */
			break;
		}
		spurious = n > 0;
		if (n == 0 && recheck >= 0)
			recheck = rp__recheck_ms(recheck);
	}
	rp__end_put_in(e);
	return r;
}

int rp_poll(rp_conn *h, int timeout_ms)
{
	struct rp_conn *c = conn_get(h);
	if (!c)
		return -1;
	int r = poll_conn(c, timeout_ms);
	conn_put(c);
	return r;
}
