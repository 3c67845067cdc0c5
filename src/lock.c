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
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define LOCK_WAITERS    0x40000000u
#define LOCK_TID        0x3fffffffu
#define LOCK_RECHECK_NS 20000000L

__thread uint32_t rp__tid_cache;

static uint32_t self(void)
{
	if (!rp__tid_cache)
		rp__tid_cache = (uint32_t)syscall(SYS_gettid) & LOCK_TID;
	return rp__tid_cache;
}

uint32_t rp__self_tid(void)
{
	return self();
}

void rp__lock_atfork_child(void)
{
	rp__tid_cache = 0;
}

/*
 * These run on the rare paths of rp_read and rp_write, which a signal handler
 * may call (and then interrupt a malloc or a stdio lock of its own thread):
 * no stdio here, only open(2), read(2) and our own formatting.
 */
char *rp__fmt_u32(char *dst, uint32_t v)
{
	char digits[10];
	int k = 0;
	do
		digits[k++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (k)
		*dst++ = digits[--k];
	*dst = '\0';
	return dst;
}

static void proc_path(char *buf, uint32_t tid, const char *file)
{
	strcpy(rp__fmt_u32(stpcpy(buf, "/proc/"), tid), file);
}

static const char *skip_field(const char *s, const char *end)
{
	while (s < end && *s != ' ')
		s++;
	while (s < end && *s == ' ')
		s++;
	return s;
}

static unsigned long long parse_num(const char **sp, const char *end, unsigned base)
{
	unsigned long long v = 0;
	const char *s = *sp;
	for (; s < end; s++) {
		unsigned d = *s >= '0' && *s <= '9' ? (unsigned)(*s - '0') :
			     *s >= 'a' && *s <= 'f' ? (unsigned)(*s - 'a' + 10) : 99;
		if (d >= base)
			break;
		v = v * base + d;
	}
	*sp = s;
	return v;
}

/* A line of /proc/PID/maps: "start-end perms offset maj:min inode path". */
static bool maps_line_is(const char *s, const char *end, uint64_t dev, uint64_t ino)
{
	for (int i = 0; i < 3; i++)
		s = skip_field(s, end);
	unsigned long long maj = parse_num(&s, end, 16);
	if (s >= end || *s++ != ':')
		return false;
	unsigned long long min = parse_num(&s, end, 16);
	s = skip_field(s, end);
	return parse_num(&s, end, 10) == ino &&
	       makedev((unsigned)maj, (unsigned)min) == dev;
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
	char path[40], buf[4096];
	proc_path(path, tid, "/maps");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT && errno != ESRCH;
	bool found = false, in_long_line = false;
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		const char *s = buf, *end = buf + len, *nl;
		while ((nl = memchr(s, '\n', (size_t)(end - s)))) {
			if (!in_long_line && maps_line_is(s, nl, dev, ino))
				found = true;
			in_long_line = false;
			s = nl + 1;
		}
		len = (size_t)(end - s);
		if (found)
			break;
		if (len == sizeof(buf)) {
			/* A line longer than the buffer (a long path): its
			 * head has the fields; skip the rest of it. */
			found = !in_long_line && maps_line_is(s, end, dev, ino);
			in_long_line = true;
			len = 0;
		} else {
			memmove(buf, s, len);
		}
		if (found)
			break;
	}
	close(fd);
	return found;
}

/* Is thread `tid` gone (no such task, or a zombie)? */
static bool holder_dead(uint32_t tid)
{
	char path[40], buf[256];
	int fd;
	ssize_t n;

	if (tid == 0)
		return true;
	proc_path(path, tid, "/stat");
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

/* An atomic exchange, which rp__mb_after_unlock() counts on. */
void rp__unlock(_Atomic uint32_t *word)
{
	uint32_t old = atomic_exchange_explicit(word, 0, memory_order_release);
	if (old & LOCK_WAITERS)
		syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}
