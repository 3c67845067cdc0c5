/*
 * lock.c - the writers' (and readers') lock, a word in shared memory.
 *
 * The word holds the holder's thread id, plus a bit that says somebody
 * sleeps on it.  Uncontended lock and unlock are one atomic each, no
 * system call.  A holder can be killed at any instant, so a waiter never
 * sleeps longer than LOCK_RECHECK_NS without asking /proc whether the holder
 * still exists (and maps the ring); a dead (or zombie) holder's lock is
 * taken over.  That is safe
 * because nothing a holder does becomes visible before it publishes head or
 * tail, which is its last act under the lock.
 */
#include "internal.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define LOCK_WAITERS    0x40000000u
#define LOCK_TID        0x3fffffffu
#define LOCK_RECHECK_NS 20000000L

static __thread uint32_t my_tid;

static uint32_t self(void)
{
	if (!my_tid)
		my_tid = (uint32_t)syscall(SYS_gettid) & LOCK_TID;
	return my_tid;
}

uint32_t rp__self_tid(void)
{
	return self();
}

void rp__lock_atfork_child(void)
{
	my_tid = 0;
}

/*
 * Does thread `tid` map the ring (dev, ino)?  A lock word is only a number
 * in shared memory: a hostile or confused peer may write the id of some
 * unrelated live process there.  A real holder maps the ring; anything
 * else is an impostor and its "lock" is taken over.  If we may not read
 * the maps (another user's process), we give it the benefit of the doubt.
 */
static bool holder_maps_ring(uint32_t tid, uint64_t dev, uint64_t ino)
{
	char path[40], line[512];
	snprintf(path, sizeof(path), "/proc/%u/maps", tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return errno != ENOENT && errno != ESRCH;
	bool found = false;
	unsigned maj, min;
	unsigned long long inode;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &inode) == 3)
			found = inode == ino && makedev(maj, min) == dev;
		/* A long path may split a line: skip its tail. */
		while (!strchr(line, '\n') && fgets(line, sizeof(line), f))
			;
	}
	fclose(f);
	return found;
}

/* Is thread `tid` gone (no such task, or a zombie)? */
static bool holder_dead(uint32_t tid)
{
	char path[32], buf[256];
	int fd;
	ssize_t n;

	if (tid == 0)
		return true;
	snprintf(path, sizeof(path), "/proc/%u/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	/* The command name may hold ')' and spaces: the state follows the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return false;
	return p[2] == 'Z' || p[2] == 'X';
}

int rp__lock(struct rp_end *e, _Atomic uint32_t *word)
{
	return rp__lock_within(e, word, 0);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int rp__lock_within(struct rp_end *e, _Atomic uint32_t *word, uint64_t budget_ns)
{
	uint32_t me = self();
	uint32_t cur = 0;
	uint64_t deadline = budget_ns ? mono_ns() + budget_ns : 0;

	if (atomic_compare_exchange_strong_explicit(word, &cur, me,
			memory_order_acquire, memory_order_relaxed))
		return 0;
	for (;;) {
		if ((cur & LOCK_TID) == me) {
			errno = EDEADLK;
			return -1;
		}
		if (cur == 0) {
			/* Keep the waiters bit: others may still sleep. */
			if (atomic_compare_exchange_weak_explicit(word, &cur,
					me | LOCK_WAITERS, memory_order_acquire,
					memory_order_relaxed))
				return 0;
			continue;
		}
		if (!(cur & LOCK_WAITERS) &&
		    !atomic_compare_exchange_weak_explicit(word, &cur,
				cur | LOCK_WAITERS, memory_order_relaxed,
				memory_order_relaxed))
			continue;
		struct timespec ts = { 0, LOCK_RECHECK_NS };
		bool last = false;
		if (deadline) {
			uint64_t now = mono_ns();
			if (now >= deadline) {
				errno = ETIMEDOUT;
				return -1;
			}
			if (deadline - now <= (uint64_t)LOCK_RECHECK_NS) {
				ts.tv_nsec = (long)(deadline - now);
				last = true;
			}
		}
		long r = syscall(SYS_futex, word, FUTEX_WAIT, cur | LOCK_WAITERS,
				 &ts, NULL, 0);
		/* Every full recheck interval, and before giving up: is the
		 * holder still there? */
		if (r < 0 && errno == ETIMEDOUT &&
		    (last || ts.tv_nsec == LOCK_RECHECK_NS)) {
			uint32_t held = atomic_load(word);
			uint32_t tid = held & LOCK_TID;
			if ((held & LOCK_TID) == (cur & LOCK_TID) &&
			    (holder_dead(tid) ||
			     !holder_maps_ring(tid, e->ring_dev, e->ring_ino))) {
				/* Take over from the dead (or an impostor): one
				 * waiter wins the CAS. */
				if (atomic_compare_exchange_strong(word, &held,
						me | LOCK_WAITERS))
					return 0;
			}
		}
		cur = atomic_load_explicit(word, memory_order_relaxed);
	}
}

bool rp__lock_abandoned(struct rp_end *e, _Atomic uint32_t *word)
{
	return rp__tid_gone(e, atomic_load_explicit(word, memory_order_acquire));
}

bool rp__tid_gone(struct rp_end *e, uint32_t tid)
{
	tid &= LOCK_TID;
	return tid == 0 || holder_dead(tid) ||
	       !holder_maps_ring(tid, e->ring_dev, e->ring_ino);
}

void rp__unlock(_Atomic uint32_t *word)
{
	uint32_t old = atomic_exchange_explicit(word, 0, memory_order_release);
	if (old & LOCK_WAITERS)
		syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}
