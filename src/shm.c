/*
 * shm.c - the shared segment: creation, validation and the double mapping.
 *
 * The data region is mapped twice, back to back, right after the header
 * page, so that a span of up to `capacity` bytes starting anywhere in the
 * ring is contiguous in our address space: memcpy and the zero-copy calls
 * never split at the wrap point.
 */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t rp__capacity_round(size_t capacity)
{
	uint64_t cap = RP_MIN_CAPACITY;

	if (capacity == 0)
		return RP_DEFAULT_CAPACITY;
	if (capacity > RP_MAX_CAPACITY)
		return 0;
	while (cap < capacity)
		cap <<= 1;
	return cap;
}

int rp__memfd_create(size_t capacity)
{
	int fd = memfd_create("ringpipe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	/* Sealed so no process holding the fd can shrink it under a peer. */
	if (ftruncate(fd, (off_t)(RP_HDR_SIZE + capacity)) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

int rp__shared_init(int fd, uint64_t capacity, uint64_t dev, uint64_t ino,
		     const char *path)
{
	struct rp_shared *sh = mmap(NULL, RP_HDR_SIZE, PROT_READ | PROT_WRITE,
				    MAP_SHARED, fd, 0);
	if (sh == MAP_FAILED)
		return -1;
	memset(sh, 0, sizeof(*sh));
	sh->version = RP_LAYOUT_VERSION;
	sh->hdr_size = RP_HDR_SIZE;
	sh->capacity = capacity;
	sh->fifo_dev = dev;
	sh->fifo_ino = ino;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	sh->created_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	sh->started_ns = sh->created_ns;
	if (path)
		snprintf(sh->path, sizeof(sh->path), "%s", path);
	/* Armed from birth: the first write makes rp_fileno readable. */
	sh->rd_armed = 1;
	sh->msg_start = RP_NO_MSG;
	/* The magic goes last: a reader of a half-made header rejects it. */
	__atomic_store_n(&sh->magic, RP_MAGIC, __ATOMIC_RELEASE);
	munmap(sh, RP_HDR_SIZE);
	return 0;
}

/* Validate the header of `fd` and map header + data twice into `e`. */
int rp__map(struct rp_end *e, int fd)
{
	static pthread_once_t fence_once = PTHREAD_ONCE_INIT;
	struct stat st;
	struct rp_shared hdr;

	pthread_once(&fence_once, rp__fence_register);

	if (fstat(fd, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)RP_HDR_SIZE ||
	    pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		goto invalid;
	if (!rp_header_valid(&hdr, (uint64_t)st.st_size))
		goto invalid;

	uint64_t cap = hdr.capacity;
	size_t len = RP_HDR_SIZE + 2 * cap;
	unsigned char *base = mmap(NULL, len, PROT_NONE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				   -1, 0);
	if (base == MAP_FAILED)
		return -1;
	if (mmap(base, RP_HDR_SIZE + cap, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
	    mmap(base + RP_HDR_SIZE + cap, cap, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, RP_HDR_SIZE) == MAP_FAILED) {
		int err = errno;
		munmap(base, len);
		errno = err;
		return -1;
	}
	e->sh = (struct rp_shared *)base;
	e->ring_dev = st.st_dev;
	e->ring_ino = st.st_ino;
	e->data = base + RP_HDR_SIZE;
	e->map_len = len;
	/* Geometry comes from our validated copy, never from the live page. */
	e->ring.cap = cap;
	e->ring.mask = cap - 1;
	return 0;
invalid:
	errno = EINVAL;
	return -1;
}

/* Forget, then undo (end.c, release()): a fork in between leaves the
 * child the undoing, never a second one. */
void rp__unmap(struct rp_end *e)
{
	void *sh = e->sh;
	e->sh = NULL;
	e->data = NULL;
	atomic_signal_fence(memory_order_seq_cst);
	if (sh)
		munmap(sh, e->map_len);
}

static void close_fd(int *p)
{
	int fd = *p;
	*p = -1;
	atomic_signal_fence(memory_order_seq_cst);
	if (fd >= 0)
		close(fd);
}

void rp__close_on_exec(struct rp_end *e)
{
	int fds[] = { e->bell, e->wake, e->gate, e->drain, e->shm_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFD, FD_CLOEXEC);
}

void rp__close_fds(struct rp_end *e)
{
	close_fd(&e->bell);
	close_fd(&e->wake);
	close_fd(&e->gate);
	close_fd(&e->drain);
	close_fd(&e->shm_fd);
}

/* O_NONBLOCK lives on the end's own open file description of the ring
 * (meaningless to a regular file, so free to borrow): like a pipe's, it is
 * shared with forked copies and survives exec.  Only slow paths ask. */
bool rp__nonblocking(struct rp_end *e)
{
	int fl = fcntl(e->shm_fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

int rp__set_nonblocking(struct rp_end *e, bool on)
{
	int fl = fcntl(e->shm_fd, F_GETFL);
	if (fl < 0)
		return -1;
	e->nb_cache = on;
	return fcntl(e->shm_fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

int rp__reopen(int fd)
{
	return rp__reopen_fifo(fd, O_RDWR);
}

/* Replace *fd, one end of a pipe or FIFO, by a non-blocking O_RDWR open. */
int rp__swap_rdwr(int *fd)
{
	int rw = rp__reopen_fifo(*fd, O_RDWR | O_NONBLOCK);
	if (rw < 0)
		return -1;
	close(*fd);
	*fd = rw;
	return 0;
}

int rp__reopen_fifo(int fd, int flags)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, flags | O_CLOEXEC);
}
