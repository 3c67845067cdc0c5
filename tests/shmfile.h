/*
 * shmfile.h - a named pipe whose /dev/shm ring a test writes into, as a
 * hostile or dying peer would.  Include after harness.h.
 */
#ifndef RP_SHMFILE_H
#define RP_SHMFILE_H

#include <ringpipe.h>
#include "janitor.h"
#include "layout.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#ifndef UNUSED
#define UNUSED __attribute__((unused))
#endif

struct hp {
	char dir[64];
	char path[128];
	char shm[256];
	ino_t shm_ino;          /* the ring file's own inode, to know it is ours */
	ino_t fifo_ino;         /* the FIFO's, which the /dev/shm names carry */
	size_t cap;
};


static UNUSED void hp_make(struct hp *h, size_t cap)
{
	signal(SIGALRM, SIG_DFL);
	snprintf(h->dir, sizeof h->dir, "/tmp/rp_hostile_XXXXXX");
	CHECK(mkdtemp(h->dir) != NULL);
	janitor(h->dir);
	snprintf(h->path, sizeof h->path, "%s/p", h->dir);
	CHECK(rp_mkfifo(h->path, 0600, cap) == 0);
	struct stat st;
	CHECK(stat(h->path, &st) == 0);
	h->fifo_ino = st.st_ino;
	snprintf(h->shm, sizeof h->shm, "/dev/shm/ringpipe.%llx.%llu",
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	CHECK(stat(h->shm, &st) == 0);
	h->shm_ino = st.st_ino;
	h->cap = cap ? cap : RP_DEFAULT_CAPACITY;
}

static UNUSED void hp_clean(struct hp *h)
{
	alarm(5);
	struct stat st;
	if (rp_unlink(h->path) != 0) {
		/* A damaged pipe rp_unlink refuses: remove its pieces by hand,
		 * if they are still ours: the names carry our FIFO's inode
		 * number, which another test's FIFO may get once ours is gone
		 * (so the FIFO goes last), and the ring file has its own. */
		struct stat fs;
		if ((stat(h->path, &fs) == 0 && fs.st_ino == h->fifo_ino) ||
		    (stat(h->shm, &st) == 0 && st.st_ino == h->shm_ino)) {
			char comp[300];
			unlink(h->shm);
			snprintf(comp, sizeof comp, "%s.wake", h->shm);
			unlink(comp);
			snprintf(comp, sizeof comp, "%s.gate", h->shm);
			unlink(comp);
		}
		unlink(h->path);
	}
	alarm(0);
	rmdir(h->dir);
}

static UNUSED void poke(const char *file, size_t off, const void *v, size_t n)
{
	int fd = open(file, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, v, n, (off_t)off) == (ssize_t)n);
	close(fd);
}

static UNUSED void poke64(const char *file, size_t off, uint64_t v) { poke(file, off, &v, 8); }
static UNUSED void poke32(const char *file, size_t off, uint32_t v) { poke(file, off, &v, 4); }

static UNUSED void peek(const char *file, size_t off, void *v, size_t n)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(pread(fd, v, n, (off_t)off) == (ssize_t)n);
	close(fd);
}

static UNUSED uint64_t peek64(const char *file, size_t off)
{
	uint64_t v;
	peek(file, off, &v, 8);
	return v;
}

static UNUSED uint32_t peek32(const char *file, size_t off)
{
	uint32_t v;
	peek(file, off, &v, 4);
	return v;
}

#define OFF(field) offsetof(struct rp_shared, field)

#endif
