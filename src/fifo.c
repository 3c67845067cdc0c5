/*
 * fifo.c - named pipes: rp_mkfifo, rp_open, rp_unlink.
 *
 * The path is a real kernel FIFO and doubles as the bell, so the kernel
 * gives us its open rules for free: blocking opens that pair a reader with
 * a writer, ENXIO, EACCES, the umask, EEXIST, ENOENT.  The ring and the two
 * companion FIFOs live in /dev/shm (tmpfs: never on disk), named after the
 * FIFO's device and inode so that any process that can see the path finds
 * them:
 *
 *   /dev/shm/ringpipe.<dev>.<ino>        the ring
 *   /dev/shm/ringpipe.<dev>.<ino>.wake   where writers sleep
 *   /dev/shm/ringpipe.<dev>.<ino>.gate   the writers' poll gate
 *
 * A FIFO's data lives only while an end is open.  Every end holds a shared
 * OFD lock on byte 0 of the ring file; the kernel drops it when the end's
 * last descriptor goes, by close, exec or death.  An opener that finds no
 * such lock is alone and starts the ring afresh.
 */
#include "internal.h"

#include <pthread.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"

struct names {
	char ring[96], wake[104], gate[104];
};

static void make_names(struct names *n, const struct stat *st)
{
	snprintf(n->ring, sizeof(n->ring), SHM_DIR "/ringpipe.%llx.%llu",
		 (unsigned long long)st->st_dev, (unsigned long long)st->st_ino);
	snprintf(n->wake, sizeof(n->wake), "%s.wake", n->ring);
	snprintf(n->gate, sizeof(n->gate), "%s.gate", n->ring);
}

/* Whoever may open the FIFO either way needs read and write on the ring. */
static mode_t rw_mode(mode_t fifo_mode)
{
	mode_t m = 0;
	if (fifo_mode & (S_IRUSR | S_IWUSR))
		m |= S_IRUSR | S_IWUSR;
	if (fifo_mode & (S_IRGRP | S_IWGRP))
		m |= S_IRGRP | S_IWGRP;
	if (fifo_mode & (S_IROTH | S_IWOTH))
		m |= S_IROTH | S_IWOTH;
	return m;
}

static void unlink_companions(const struct names *n)
{
	int err = errno;
	unlink(n->wake);
	unlink(n->gate);
	unlink(n->ring);
	errno = err;
}

/*
 * Make a companion FIFO with mode `m` exactly (not filtered by the umask),
 * without ever following a symlink that someone slipped in meanwhile:
 * /dev/shm is a shared, world-writable directory.
 */
static int make_companion(const char *path, mode_t m)
{
	char proc[32];
	struct stat st;

	if (mkfifo(path, 0600) < 0)
		return -1;
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int r = fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) ? chmod(proc, m) : -1;
	int err = errno;
	close(fd);
	errno = err;
	return r;
}

/* Open a companion FIFO; anything else where it should be is damage. */
static int open_companion(const char *path, int flags)
{
	struct stat st;
	int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP || errno == ENXIO)
			errno = EINVAL;
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

static int make_fifo(const char *path, mode_t mode, size_t capacity)
{
	uint64_t cap = rp__capacity_round(capacity);
	struct stat st;
	struct names n;
	int fd = -1, err;

	if (!path || !cap) {
		errno = EINVAL;
		return -1;
	}
	if (mkfifo(path, mode) < 0)
		return -1;
	if (stat(path, &st) < 0)
		goto fail_fifo;
	make_names(&n, &st);
	mode_t m = rw_mode(st.st_mode);
	/* Recorded for `ringpipe ls`; informational only, never trusted. */
	char abspath[PATH_MAX];
	if (!realpath(path, abspath))
		snprintf(abspath, sizeof(abspath), "%s", path);
	/* Leftovers of an earlier FIFO that had this inode number. */
	unlink_companions(&n);
	fd = open(n.ring, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail_fifo;
	/* Reserve the memory now: ENOSPC here beats SIGBUS later. */
	if ((err = posix_fallocate(fd, 0, (off_t)(RP_HDR_SIZE + cap)))) {
		errno = err;
		goto fail_all;
	}
	if (rp__shared_init(fd, cap, st.st_dev, st.st_ino, abspath) < 0 ||
	    fchmod(fd, m) < 0 ||
	    make_companion(n.wake, m) < 0 || make_companion(n.gate, m) < 0)
		goto fail_all;
	close(fd);
	return 0;
fail_all:
	err = errno;
	close(fd);
	unlink_companions(&n);
	errno = err;
fail_fifo:
	err = errno;
	unlink(path);
	errno = err;
	return -1;
}

int rp_mkfifo(const char *path, mode_t mode, size_t capacity)
{
	int c = rp__cancel_off();
	int r = make_fifo(path, mode, capacity);
	rp__cancel_back(c);
	return r;
}

/* Stat `path` and check it is a ringpipe: 0, or -1 with errno. */
static int lookup(const char *path, struct stat *st, struct names *n)
{
	struct stat rs;

	if (!path) {
		errno = EINVAL;
		return -1;
	}
	if (stat(path, st) < 0)
		return -1;
	if (!S_ISFIFO(st->st_mode)) {
		errno = EINVAL;
		return -1;
	}
	make_names(n, st);
	if (stat(n->ring, &rs) < 0 || !S_ISREG(rs.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/*
 * May we remove `path` from directory `dir`?  The kernel's rule: write and
 * search on the directory, and in a sticky one (/dev/shm is), owning the
 * file or the directory, or CAP_FOWNER, which we take root to have.  A
 * file already gone is no obstacle.
 */
static bool may_unlink(int dir, const char *path)
{
	struct stat d, f;
	if (fstatat(dir, path, &f, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT;
	if (fstat(dir, &d) < 0 || faccessat(dir, ".", W_OK | X_OK, AT_EACCESS) < 0)
		return false;
	uid_t me = geteuid();
	return !(d.st_mode & S_ISVTX) || me == 0 || f.st_uid == me || d.st_uid == me;
}

/* Can every companion go?  Checked before the FIFO goes, so that a remove
 * refused half-way (another user's pipe in a directory anyone may write,
 * its files in sticky /dev/shm) leaves the pipe whole: EPERM. */
static int companions_removable(const struct names *n)
{
	int dir = open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	bool ok = may_unlink(dir, n->ring) && may_unlink(dir, n->wake) &&
		  may_unlink(dir, n->gate);
	close(dir);
	if (!ok)
		errno = EPERM;
	return ok ? 0 : -1;
}

/*
 * The /dev/shm names carry the FIFO's inode number, which a FIFO made by
 * anyone once ours is gone may get: hold the inode (O_PATH) until its files
 * are gone, or we could remove that newcomer's.
 */
static int unlink_fifo(const char *path)
{
	struct stat st, held;
	struct names n;

	if (lookup(path, &st, &n) < 0)
		return -1;
	int pin = open(path, O_PATH | O_CLOEXEC);
	if (pin < 0)
		return -1;
	if (fstat(pin, &held) < 0 || held.st_dev != st.st_dev ||
	    held.st_ino != st.st_ino) {
		close(pin);
		errno = EINVAL;         /* replaced under us: look again */
		return -1;
	}
	if (companions_removable(&n) < 0) {
		int err = errno;
		close(pin);
		errno = err;
		return -1;
	}
	int r = unlink(path);
	if (r == 0)
		unlink_companions(&n);
	int err = errno;
	close(pin);
	errno = err;
	return r;
}

int rp_unlink(const char *path)
{
	int c = rp__cancel_off();
	int r = unlink_fifo(path);
	rp__cancel_back(c);
	return r;
}

static int ofd_lock(int fd, short type, off_t byte, int wait)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
			    .l_start = byte, .l_len = 1 };
	return fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
}

/* Is any other end holding byte 0 (an open end of this FIFO)? */
static int others_open(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = RP_LOCK_SESSION, .l_len = 1 };
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -1;
	return fl.l_type != F_UNLCK;
}

/*
 * Join the session: under the open mutex (byte 1), start the ring afresh
 * if we are the only end, then take our share of byte 0.
 */
static int join(struct rp_end *e)
{
	struct rp_shared *sh = e->sh;

	while (ofd_lock(e->shm_fd, F_WRLCK, RP_LOCK_OPENING, 1) < 0)
		if (errno != EINTR)
			return -1;
	int alone = others_open(e->shm_fd);
	if (alone == 0) {
		atomic_store(&sh->head, 0);
		atomic_store(&sh->tail, 0);
		rp_lockword_reset(&sh->wlock);
		rp_lockword_reset(&sh->rlock);
		atomic_store(&sh->rd_sleepers, 0);
		atomic_store(&sh->wr_sleepers, 0);
		for (int i = 0; i < RP_SLEEP_SLOTS; i++) {
			atomic_store(&sh->rd_who[i], 0);
			atomic_store(&sh->wr_who[i], 0);
		}
		atomic_store(&sh->gate_closed, 0);
		atomic_store(&sh->rd_armed, 1);
		atomic_store(&sh->msg_start, RP_NO_MSG);
		atomic_store(&sh->heavy_publish, 0);
		atomic_store(&sh->wr_polled, 0);
		atomic_store(&sh->rd_polled, 0);
		/* What stat reports starts again with the data. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		atomic_store(&sh->rd_blocked_ns, 0);
		atomic_store(&sh->wr_blocked_ns, 0);
		atomic_store(&sh->started_ns,
			     (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
	}
	int r = alone < 0 ? -1 : ofd_lock(e->shm_fd, F_RDLCK, RP_LOCK_SESSION, 0);
	int err = errno;
	ofd_lock(e->shm_fd, F_UNLCK, RP_LOCK_OPENING, 0);
	errno = err;
	return r;
}

static int clear_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

static void open_cancelled(void *e)
{
	rp__end_discard(e);
}

/*
 * The open of the path, which may block for a partner as a FIFO's open(2)
 * does: a cancellation point there, as open(2) is, if the caller allows
 * one (nowhere else in rp_open); the half-made end goes with the cancel.
 */
static int open_path(struct rp_end *e, const char *path, int oflags, bool cancellable)
{
	int fd, type = 0;
	pthread_cleanup_push(open_cancelled, e);
	if (cancellable) {
		pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &type);
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	}
	fd = open(path, oflags);
	if (cancellable) {
		int err = errno;
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		pthread_setcanceltype(type, NULL);
		errno = err;
	}
	pthread_cleanup_pop(0);
	return fd;
}

/* A companion that is not there as a FIFO is damage: found before the
 * open of the path, which may block or fail by the FIFO's rules. */
static int companion_there(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Does another open file description of the ring hold lock byte `byte`? */
static bool byte_held(int ring_fd, off_t byte)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = byte, .l_len = 1 };
	return fcntl(ring_fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/*
 * The two halves of an open wait for each other a little, as the kernel's
 * FIFO open is one step and ours two (the path, then the gate; see
 * open_fifo()).  Each waits in OPEN_NAP naps, for at most OPEN_WAIT_NS:
 * one stopped or starved of the CPU in its open must not hold the other's
 * for good.
 */
#define OPEN_WAIT_NS 100000000LL
#define OPEN_NAP     50000L

static bool waited_too_long(const struct timespec *t0)
{
	struct timespec now, nap = { 0, OPEN_NAP };
	nanosleep(&nap, NULL);
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000000000LL +
	       (now.tv_nsec - t0->tv_nsec) > OPEN_WAIT_NS;
}

/*
 * A non-blocking writer that found no reader at the gate, while a reader
 * is inside rp_open (its role lock): the one our open of the path let go,
 * say, which opens the gate next.  The kernel counts a reader blocked in
 * open(2) as there, so we wait for it to get to the gate.  -1 ENXIO if it
 * leaves instead, or takes too long.
 */
static int gate_of_reader_opening(struct rp_end *e, const char *path)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!waited_too_long(&t0)) {
		int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0 || errno != ENXIO)
			return fd;
		if (!byte_held(e->shm_fd, RP_LOCK_READER))
			break;
	}
	errno = ENXIO;
	return -1;
}

/*
 * A reader past the gate waits for the writers inside rp_open to get
 * through it: the kernel lets a writer's open(2) go as soon as a reader
 * opens, even one that closes again at once, and ours, let go through
 * the path, could otherwise find the gate closed again and wait there for
 * the next reader.  They hold RP_LOCK_WOPENING until they are through.
 */
static void let_writers_through(struct rp_end *e)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (byte_held(e->shm_fd, RP_LOCK_WOPENING) && !waited_too_long(&t0))
		;
}

/*
 * A writer's open of the gate, with the FIFO open rules: only reader ends
 * hold the gate for reading, so it blocks until a reader opens (ENXIO if
 * nb).  The path cannot give that rule to a writer: every writer end holds
 * it O_RDWR (see open_fifo()), which the kernel counts as a reader.  The
 * gate stays non-blocking: rp__gate_close() fills it until EAGAIN.
 */
static int open_gate(struct rp_end *e, const char *path, int nb, bool cancellable)
{
	struct stat st;
	int fd = open_path(e, path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | nb, cancellable);
	if (fd < 0 && errno == ENXIO && byte_held(e->shm_fd, RP_LOCK_READER))
		fd = gate_of_reader_opening(e, path);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP)
			errno = EINVAL;         /* a companion gone is damage */
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) ||
	    (!nb && fcntl(fd, F_SETFL, O_NONBLOCK) < 0)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

static rp_end *open_fifo(const char *path, int flags, bool cancellable)
{
	int acc = flags & O_ACCMODE;
	int nb = flags & O_NONBLOCK;
	struct stat st;
	struct names n;
	struct rp_end *e = NULL;

	if ((flags & ~(O_ACCMODE | O_NONBLOCK | O_CLOEXEC)) ||
	    (acc != O_RDONLY && acc != O_WRONLY)) {
		errno = EINVAL;
		return NULL;
	}
	if (lookup(path, &st, &n) < 0)
		return NULL;
	if (faccessat(AT_FDCWD, path, acc == O_RDONLY ? R_OK : W_OK,
		      AT_EACCESS) < 0)
		return NULL;
	if (!(e = rp__end_alloc()))
		return NULL;
	e->shm_fd = open(n.ring, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (e->shm_fd < 0 || rp__map(e, e->shm_fd) < 0)
		goto fail;
	if (e->sh->fifo_dev != (uint64_t)st.st_dev ||
	    e->sh->fifo_ino != (uint64_t)st.st_ino) {
		errno = EINVAL;
		goto fail;
	}
	if (join(e) < 0)
		goto fail;
	/*
	 * The path, then the gate: either open may block for a partner.  A
	 * reader's open of the path pairs it with a writer, as the kernel's
	 * FIFO does, and its open of the gate (non-blocking) then lets that
	 * writer go; a writer that went on at the reader's first open could
	 * write and close before the reader's second, which would then wait
	 * for a writer that came and went.  Each side holds a lock byte of
	 * the ring file while it is inside rp_open, and each waits for the
	 * other a little (gate_of_reader_opening(), let_writers_through()).
	 */
	if (companion_there(n.gate) < 0)
		goto fail;
	if (acc == O_RDONLY) {
		/* A reader from here on, for writers (gate_of_reader_opening()),
		 * as the kernel counts one blocked in open(2). */
		e->wake = open_companion(n.wake, O_RDWR | O_NONBLOCK);
		if (e->wake < 0 || ofd_lock(e->shm_fd, F_RDLCK, RP_LOCK_READER, 0) < 0)
			goto fail;
		e->bell = open_path(e, path, O_RDONLY | O_CLOEXEC | nb, cancellable);
		if (e->bell < 0 || (nb && clear_nonblock(e->bell) < 0))
			goto fail;
		e->gate = open_companion(n.gate, O_RDONLY | O_NONBLOCK);
		if (e->gate < 0)
			goto fail;
		let_writers_through(e);
	} else {
		e->wake = open_companion(n.wake, O_RDONLY | O_NONBLOCK);
		if (e->wake < 0 || clear_nonblock(e->wake) < 0)
			goto fail;
		/* O_WRONLY first, for the FIFO's open rules when no other
		 * writer holds it; then O_RDWR, as every token sender holds its
		 * pipe (see internal.h). */
		if (ofd_lock(e->shm_fd, F_RDLCK, RP_LOCK_WOPENING, 0) < 0)
			goto fail;
		e->bell = open_path(e, path, O_WRONLY | O_CLOEXEC | nb, cancellable);
		if (e->bell < 0 || rp__swap_rdwr(&e->bell) < 0)
			goto fail;
		e->gate = open_gate(e, n.gate, nb, cancellable);
		if (e->gate < 0)
			goto fail;
		ofd_lock(e->shm_fd, F_UNLCK, RP_LOCK_WOPENING, 0);
		fcntl(e->gate, F_SETPIPE_SZ, RP_PIPE_BUF);
	}
	if (rp__end_open(e, acc == O_RDONLY ? RP_READER : RP_WRITER, flags) < 0)
		goto fail;
	return e;
fail:
	rp__end_discard(e);
	return NULL;
}

rp_end *rp_open(const char *path, int flags)
{
	int c = rp__cancel_off();
	rp_end *e = open_fifo(path, flags, c == PTHREAD_CANCEL_ENABLE);
	rp__cancel_back(c);
	return e;
}
