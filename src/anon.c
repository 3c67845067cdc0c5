/*
 * anon.c - anonymous pipes: rp_pipe and rp_pipe2.
 *
 * The ring lives in a sealed memfd; the three kernel pipes are plain
 * pipe2() pairs.  Both ends are inherited by fork like descriptors,
 * because they are descriptors.
 */
#include "internal.h"

#include <fcntl.h>
#include <unistd.h>

static int keep_across_exec(int fd)
{
	return fcntl(fd, F_SETFD, 0);
}

/* Finish an end whose descriptors are set: map it and open it. */
int rp__end_open(struct rp_end *e, int role, int flags)
{
	if (!e->sh && rp__map(e, e->shm_fd) < 0)
		return -1;
	e->role = role;
	if ((flags & O_NONBLOCK) && rp__set_nonblocking(e, true) < 0)
		return -1;
	e->nb_cache = rp__nonblocking(e);   /* an imported OFD may already be */
	e->seen_rd_closes = atomic_load(&e->sh->rd_closes);
	e->next_probe_ns = rp__coarse_ns();
	/* Our role, for anyone inspecting /proc/PID/fdinfo (see layout.h). */
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_len = 1,
			    .l_start = role == RP_READER ? RP_LOCK_READER : RP_LOCK_WRITER };
	if (fcntl(e->shm_fd, F_OFD_SETLK, &fl) < 0)
		return -1;
	/* A second, non-blocking open of the bell lets a reader drain tokens
	 * and ask "any writer left?" without disturbing threads (or forked
	 * copies) asleep on the blocking one. */
	if (role == RP_READER && e->drain < 0 &&
	    (e->drain = rp__reopen_fifo(e->bell, O_RDONLY | O_NONBLOCK)) < 0)
		return -1;
	if (!(flags & O_CLOEXEC)) {
		if (keep_across_exec(e->shm_fd) < 0 || keep_across_exec(e->bell) < 0 ||
		    keep_across_exec(e->wake) < 0 || keep_across_exec(e->gate) < 0 ||
		    (e->drain >= 0 && keep_across_exec(e->drain) < 0))
			return -1;
	}
	atomic_store_explicit(&e->state, RP_OPEN, memory_order_release);
	return 0;
}

/* Undo a half-made end: close what it holds and give the slot back. */
void rp__end_discard(struct rp_end *e)
{
	if (!e)
		return;
	int err = errno;
	rp__close_fds(e);
	atomic_store(&e->state, RP_CLOSED);
	rp__end_unref(e);
	errno = err;
}

int rp_pipe(rp_end *ends[2])
{
	return rp_pipe2(ends, 0, 0);
}

static int make_pipe(rp_end *ends[2], int flags, size_t capacity)
{
	int bell[2] = { -1, -1 }, wake[2] = { -1, -1 }, gate[2] = { -1, -1 };
	struct rp_end *r = NULL, *w = NULL;
	uint64_t cap = rp__capacity_round(capacity);
	int mfd = -1;

	if (!ends || (flags & ~(O_NONBLOCK | O_CLOEXEC)) || !cap) {
		errno = EINVAL;
		return -1;
	}
	/* Everything is made close-on-exec first, so a concurrent exec in
	 * another thread never inherits half a pipe. */
	if ((mfd = rp__memfd_create(cap)) < 0 ||
	    rp__shared_init(mfd, cap, 0, 0, NULL) < 0 ||
	    pipe2(bell, O_CLOEXEC) < 0 || pipe2(wake, O_CLOEXEC) < 0 ||
	    pipe2(gate, O_CLOEXEC | O_NONBLOCK) < 0)
		goto fail;
	/* One page: a single 4 KiB write makes the gate unwritable.  (Not
	 * the token pipes: a one-page pipe refuses a write once 4 KiB have
	 * gone through its page, however few bytes it holds.) */
	fcntl(gate[1], F_SETPIPE_SZ, RP_PIPE_BUF);
	/* Token senders also hold their pipe's read side (O_RDWR), so a token
	 * into a pipe whose sleepers all died never raises SIGPIPE. */
	if (rp__swap_rdwr(&bell[1]) < 0 || rp__swap_rdwr(&wake[1]) < 0)
		goto fail;
	if (!(r = rp__end_alloc()) || !(w = rp__end_alloc()))
		goto fail;

	r->shm_fd = rp__reopen(mfd);
	r->bell = bell[0], r->wake = wake[1], r->gate = gate[0];
	w->shm_fd = mfd, w->bell = bell[1], w->wake = wake[0], w->gate = gate[1];
	mfd = -1;
	bell[0] = bell[1] = wake[0] = wake[1] = gate[0] = gate[1] = -1;
	if (r->shm_fd < 0 || rp__end_open(r, RP_READER, flags) < 0 ||
	    rp__end_open(w, RP_WRITER, flags) < 0)
		goto fail;
	ends[0] = r;
	ends[1] = w;
	return 0;
fail:;
	int err = errno;
	int fds[] = { mfd, bell[0], bell[1], wake[0], wake[1], gate[0], gate[1] };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	rp__end_discard(r);
	rp__end_discard(w);
	errno = err;
	return -1;
}

int rp_pipe2(rp_end *ends[2], int flags, size_t capacity)
{
	int c = rp__cancel_off();
	int r = make_pipe(ends, flags, capacity);
	rp__cancel_back(c);
	return r;
}
