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
 *
 * Biased: a thread that takes the lock BIAS_AFTER times in a row (nobody
 * else in between) keeps it at its unlock, marked RP_LOCK_BIASED | slot |
 * its TID, and from then on enters and leaves with plain stores of its
 * slot's busy flag (no locked instruction, which would wait for every line
 * the other side has pulled away: on a 64-byte stream that was a third of
 * the time).  Another thread revokes the bias: it takes the word for
 * itself with a CAS, then calls membarrier(2) and waits until the flag is
 * clear.  The owner stores its flag and then looks at the word; the
 * membarrier puts a full barrier into the owner's store-then-load wherever
 * it is, so either the owner sees the CAS and backs out, or the revoker
 * sees the flag and waits (the asymmetric handshake of fence.c;
 * docs/model/bias.pml checks it, and why each owner has a flag of its own).
 * A revoker that finds the owner inside needs no membarrier: the owner,
 * leaving, sees the CAS, and says so (RP_BUSY_ACK) before it wakes us.
 */
#include "internal.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define LOCK_RECHECK_NS 20000000L
#define BIAS_AFTER      256         /* uncontended acquisitions in a row */
/* Revocations are rate-limited (see bias_allowed()): one per
 * BIAS_REVOKE_NS on average, after bursts of BIAS_BURST_NS' worth. */
#define BIAS_REVOKE_NS  500000ULL
#define BIAS_BURST_NS   8000000ULL
#define BIAS_HONOUR_NS  1000000000ULL /* a limit further ahead is garbage */
#define BIAS_DRAIN_NS   10000000L   /* see await_owner() */
#define OFF_CPU_BACKOFF 15          /* see owner_parked() */
#define NB_LOCK_NS      2000000ULL  /* see rp__lock_call_slow() */

__thread uint32_t rp__tid_cache RP_TLS_FAST;
__thread uint32_t rp__bias_depth RP_TLS_FAST;

static uint32_t self(void)
{
	if (!rp__tid_cache)
		rp__tid_cache = (uint32_t)syscall(SYS_gettid) & RP_LOCK_TID;
	return rp__tid_cache;
}

uint32_t rp__self_tid(void)
{
	return self();
}

void rp__lock_atfork_child(void)
{
	rp__tid_cache = 0;
	rp__bias_depth = 0;     /* the parent's thread holds those, not us */
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
 * Does thread `tid` map the ring (dev, ino)?  1 yes, 0 no, -1 we may not
 * read its maps (another user's process).  A lock word is only a number
 * in shared memory: a hostile or confused peer may write the id of some
 * unrelated live process there.
 */
static int maps_ring(uint32_t tid, uint64_t dev, uint64_t ino)
{
	char path[40], buf[4096];
	proc_path(path, tid, "/maps");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? 0 : -1;
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

/* A real holder maps the ring; anything else is an impostor and its
 * "lock" is taken over.  If we may not read the maps, we give it the
 * benefit of the doubt. */
static bool holder_maps_ring(uint32_t tid, uint64_t dev, uint64_t ino)
{
	return maps_ring(tid, dev, ino) != 0;
}

/*
 * Read /proc/TID/stat into buf: the fields after the command name (the
 * state first; the name may hold ')' and spaces, so they follow the last
 * ')'), *end set past them.  NULL if there are none: *gone says whether
 * that is because there is no such task (also when it went between the
 * open and the read).
 */
static const char *stat_fields(uint32_t tid, char *buf, size_t size,
			       const char **end, bool *gone)
{
	char path[40];
	proc_path(path, tid, "/stat");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	*gone = false;
	if (fd < 0) {
		*gone = errno == ENOENT || errno == ESRCH;
		return NULL;
	}
	ssize_t n = read(fd, buf, size);
	close(fd);
	if (n <= 0) {
		*gone = true;
		return NULL;
	}
	const char *p = memrchr(buf, ')', (size_t)n);
	if (!p || buf + n - p < 3 || p[1] != ' ')
		return NULL;
	*end = buf + n;
	return p + 2;
}

/* Is thread `tid` gone (no such task, or a zombie)? */
static bool holder_dead(uint32_t tid)
{
	char buf[256];
	const char *end, *state;
	bool gone;

	if (tid == 0)
		return true;
	state = stat_fields(tid, buf, sizeof(buf), &end, &gone);
	if (!state)
		return gone;
	return *state == 'Z' || *state == 'X';
}

#if defined(__x86_64__) || defined(__i386__)
/*
 * Could `tid` be the owner?  Only a thread whose maps show the ring (and
 * that we may read) could: the CPU of any other thread says nothing about
 * the owner.  A filter, not a proof: like the rest of the lock it counts
 * on one PID namespace for all the ring's processes (DESIGN.md, "Known
 * deviations"), where a lock word's TID names the thread that wrote it,
 * and on nobody writing TIDs into the word but the lock (a hostile peer
 * can break the lock anyway, as it can head and tail).  Reading the maps
 * takes tens of microseconds, and the owners of a lock are few: each end
 * remembers the last RP_OWNERS_SEEN that passed.  A TID reused after such
 * an owner exited would keep its place, harmlessly: the owner it stood
 * for is dead, with nothing left in a store buffer.
 */
static bool owner_known(struct rp_end *e, uint32_t tid)
{
	for (int i = 0; i < RP_OWNERS_SEEN; i++)
		if (atomic_load_explicit(&e->owners_seen[i], memory_order_relaxed) == tid)
			return true;
	if (maps_ring(tid, e->ring_dev, e->ring_ino) != 1)
		return false;
	uint32_t at = atomic_fetch_add_explicit(&e->owners_next, 1, memory_order_relaxed);
	atomic_store_explicit(&e->owners_seen[at % RP_OWNERS_SEEN], tid,
			      memory_order_relaxed);
	return true;
}

/*
 * Is thread `tid` off every CPU at this moment?  We run on CPU c; if the
 * kernel says tid's CPU is c as well (/proc/TID/stat field 39, task_cpu),
 * tid is not running: a running task's CPU is the one it runs on, and c
 * runs us.  That holds only if we stayed on c across the read: our
 * context switch counts must not move (a migration away and back again
 * would escape sched_getcpu(), but not them).  A thread that is not
 * running passed the scheduler's full barrier when it was switched out,
 * which is all membarrier(2) gives us for such a thread too; so when
 * writers share a CPU and the owner of a bias was preempted outside its
 * lock, this stands in for the membarrier at ~8 us instead of ~50 (the
 * IPI to every CPU running a registered process: the reader's too).
 * x86 only, where stores reach all CPUs in one order; elsewhere the
 * membarrier stays.
 */
static bool off_cpu_here(struct rp_end *e, uint32_t tid)
{
	if (!owner_known(e, tid))
		return false;
	char buf[1024];
	const char *end, *s;
	bool gone;
	struct rusage r0, r1;
	if (getrusage(RUSAGE_THREAD, &r0) < 0)
		return false;
	int cpu = sched_getcpu();
	if (cpu < 0 || !(s = stat_fields(tid, buf, sizeof(buf), &end, &gone)) ||
	    getrusage(RUSAGE_THREAD, &r1) < 0 ||
	    r0.ru_nvcsw != r1.ru_nvcsw || r0.ru_nivcsw != r1.ru_nivcsw)
		return false;
	for (int field = 3; field < 39; field++)        /* s: field 3 */
		s = skip_field(s, end);
	const char *digits = s;
	unsigned long long on = parse_num(&s, end, 10);
	return s > digits && s < end && *s == ' ' && on == (unsigned)cpu;
}
#else
static bool off_cpu_here(struct rp_end *e, uint32_t tid)
{
	(void)e;
	(void)tid;
	return false;
}
#endif

/*
 * off_cpu_here(), unless it has been failing: when the owners run on
 * other CPUs (writers spread over them), its /proc reads (~8 us, more
 * for an owner's maps) only add to the membarrier that follows, so after
 * a failure we skip it for the next OFF_CPU_BACKOFF revocations.
 */
static bool owner_parked(struct rp_end *e, uint32_t owner)
{
	uint32_t skip = atomic_load_explicit(&e->off_cpu_skip, memory_order_relaxed);
	if (skip) {
		atomic_store_explicit(&e->off_cpu_skip, skip - 1, memory_order_relaxed);
		return false;
	}
	int err = errno;        /* /proc may not be there */
	bool parked = off_cpu_here(e, owner);
	errno = err;
	if (!parked)
		atomic_store_explicit(&e->off_cpu_skip, OFF_CPU_BACKOFF,
				      memory_order_relaxed);
	return parked;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static long futex(_Atomic uint32_t *uaddr, int op, uint32_t val,
		  const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

/* The sleep before the next look: LOCK_RECHECK_NS, or what is left before
 * the deadline (then *last is set).  -1 ETIMEDOUT: the deadline passed. */
static int next_sleep(uint64_t deadline, struct timespec *ts, bool *last)
{
	*ts = (struct timespec){ 0, LOCK_RECHECK_NS };
	*last = false;
	if (!deadline)
		return 0;
	uint64_t now = mono_ns();
	if (now >= deadline) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (deadline - now <= (uint64_t)LOCK_RECHECK_NS) {
		ts->tv_nsec = (long)(deadline - now);
		*last = true;
	}
	return 0;
}

/*
 * We took the word of a lock biased to `owner`: wait until the owner is
 * out, or gone.  RP_BUSY_ACK: the owner left having seen our CAS (its
 * exit wakes us), so it will see it at its next entry too: its loads come
 * in order.  Busy clear: the owner is out, or its entry's store of busy
 * has not reached us yet while its load of the word already missed the
 * CAS; a membarrier rules that out (look again after it), or finding the
 * owner switched out on our own CPU, which is cheaper.  Without
 * membarrier (a seccomp filter, say) we wait that store out instead: a
 * store leaves a store buffer within nanoseconds, and any interrupt drains
 * it, so looking again BIAS_DRAIN_NS later is enough; and nobody biases
 * this ring again (heavy_publish).  The owner is mostly inside when we
 * come (a writer's copy is under the lock), so most revocations are the
 * first kind, and spare their membarrier's interrupt of every CPU.
 */
static int await_owner(struct rp_end *e, _Atomic uint32_t *busy, uint32_t owner,
		       uint64_t deadline)
{
	bool fenced = false;
	for (;;) {
		uint32_t b = atomic_load_explicit(busy, memory_order_acquire);
		if (b == RP_BUSY_ACK)
			return 0;
		if (!b) {
			if (fenced)
				return 0;
			bool parked = owner_parked(e, owner);
			if (!parked && !rp__fence_peers(e)) {
				struct timespec ts = { 0, BIAS_DRAIN_NS };
				while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
					;
			}
			fenced = true;
			continue;
		}
		struct timespec ts;
		bool last;
		if (next_sleep(deadline, &ts, &last) < 0)
			return -1;
		long r = futex(busy, FUTEX_WAIT, 1, &ts);
		if (r < 0 && errno == ETIMEDOUT && (last || ts.tv_nsec == LOCK_RECHECK_NS)) {
			if (rp__tid_gone(e, owner))
				return 0;       /* killed inside: take over */
			rp__hold_orphaned(e);   /* or left inside by a close */
		}
	}
}

static uint32_t bias_clock(void)
{
	return (uint32_t)(mono_ns() >> RP_BIAS_CLOCK_SHIFT);
}

#define BIAS_UNITS(ns) ((int32_t)((ns) >> RP_BIAS_CLOCK_SHIFT))

/*
 * May this lock be biased again?  A revocation costs a membarrier and a
 * wait for the owner, worth paying for the turns of writers that share a
 * CPU (a bias per time slice: 8 writers made 25-28 GB/s biased against
 * 17 unbiased, DESIGN.md "Many writers"), not for threads that revoke
 * each other continually.  So revocations are rate-limited, as a generic
 * cell rate algorithm does: each pushes rebias_at, the time the
 * revocations so far "run to", BIAS_REVOKE_NS past the later of it and
 * now; a bias is given only while rebias_at is at most BIAS_BURST_NS
 * ahead.  Whatever another process writes there delays a bias by at most
 * BIAS_HONOUR_NS.
 */
static bool bias_allowed(struct rp_lockword *l)
{
	uint32_t t = atomic_load_explicit(&l->rebias_at, memory_order_relaxed);
	int32_t ahead = (int32_t)(t - bias_clock());
	return !t || ahead <= BIAS_UNITS(BIAS_BURST_NS) ||
	       ahead > BIAS_UNITS(BIAS_HONOUR_NS);
}

static void count_revocation(struct rp_lockword *l)
{
	uint32_t now = bias_clock();
	uint32_t t = atomic_load_explicit(&l->rebias_at, memory_order_relaxed);
	int32_t ahead = (int32_t)(t - now);
	uint32_t next = (t && ahead > 0 && ahead <= BIAS_UNITS(BIAS_HONOUR_NS) ? t : now) +
			(uint32_t)BIAS_UNITS(BIAS_REVOKE_NS);
	atomic_store_explicit(&l->rebias_at, next ? next : 1, memory_order_relaxed);
}

/* The lock's word is `cur`, biased.  0 (ours), -1 (errno), or 1: look again.
 * keep: RP_LOCK_WAITERS if others may sleep on the word (see the caller). */
static int take_biased(struct rp_end *e, struct rp_lockword *l, uint32_t cur,
		       uint32_t me, uint32_t keep, uint64_t deadline)
{
	uint32_t owner = cur & RP_LOCK_TID;
	_Atomic uint32_t *busy = &l->busy[rp_lock_slot(cur)];
	if (owner == me) {
		/* Ours, with busy set: this thread is inside (a signal handler
		 * calling in), unless busy was left by a dead thread whose TID
		 * we now have, which nobody else would ever clear. */
		if (atomic_load_explicit(busy, memory_order_relaxed) == 1 &&
		    rp__bias_depth) {
			errno = EDEADLK;
			return -1;
		}
		return rp__bias_enter(e, l, rp__side(e, l), cur) ? 0 : 1;
	}
	/* With a deadline we may have to give the bias back. */
	uint32_t mine = me | keep | (deadline ? RP_LOCK_NOACK : 0);
	if (!atomic_compare_exchange_strong_explicit(&l->word, &cur, mine,
			memory_order_acquire, memory_order_relaxed))
		return 1;
	if (await_owner(e, busy, owner, deadline) == 0) {
		count_revocation(l);
		return 0;
	}
	/* Out of time: give the bias back, and wake whoever queued on us. */
	int err = errno;
	uint32_t old = atomic_exchange_explicit(&l->word, cur, memory_order_release);
	if (old & RP_LOCK_WAITERS)
		futex(&l->word, FUTEX_WAKE, INT32_MAX, NULL);
	errno = err;
	return -1;
}

int rp__lock_within(struct rp_end *e, struct rp_lockword *l, uint64_t budget_ns)
{
	rp__call_quiet();       /* /proc is read, and nanosleep(2) may be */
	_Atomic uint32_t *word = &l->word;
	uint32_t me = self();
	uint32_t cur = 0;
	/* An unlock that wakes a sleeper clears the waiters bit, and wakes
	 * only us: once we have slept, others may still sleep, and whatever
	 * we take the word with says so, or our unlock would leave them to
	 * their next recheck (LOCK_RECHECK_NS) with the lock free. */
	uint32_t keep = 0;
	uint64_t deadline = budget_ns ? mono_ns() + budget_ns : 0;

	/* We met somebody, or the bias went. */
	atomic_store_explicit(&e->streak, 0, memory_order_relaxed);
	if (atomic_compare_exchange_strong_explicit(word, &cur, me,
			memory_order_acquire, memory_order_relaxed))
		return 0;
	for (;;) {
		if (cur & RP_LOCK_BIASED) {
			int r = take_biased(e, l, cur, me, keep, deadline);
			if (r <= 0)
				return r;
			cur = atomic_load_explicit(word, memory_order_relaxed);
			continue;
		}
		if ((cur & RP_LOCK_TID) == me) {
			errno = EDEADLK;
			return -1;
		}
		if (rp_lock_garbage(cur)) {
			if (atomic_compare_exchange_weak_explicit(word, &cur,
					me | RP_LOCK_WAITERS, memory_order_acquire,
					memory_order_relaxed))
				return 0;
			continue;
		}
		if (cur == 0) {
			/* Keep the waiters bit: others may still sleep. */
			if (atomic_compare_exchange_weak_explicit(word, &cur,
					me | RP_LOCK_WAITERS, memory_order_acquire,
					memory_order_relaxed))
				return 0;
			continue;
		}
		if (!(cur & RP_LOCK_WAITERS) &&
		    !atomic_compare_exchange_weak_explicit(word, &cur,
				cur | RP_LOCK_WAITERS, memory_order_relaxed,
				memory_order_relaxed))
			continue;
		struct timespec ts;
		bool last;
		if (next_sleep(deadline, &ts, &last) < 0)
			return -1;
		long r = futex(word, FUTEX_WAIT, cur | RP_LOCK_WAITERS, &ts);
		keep = RP_LOCK_WAITERS;
		/* Every full recheck interval, and before giving up: is the
		 * holder still there? */
		if (r < 0 && errno == ETIMEDOUT &&
		    (last || ts.tv_nsec == LOCK_RECHECK_NS)) {
			/* Our own end's hold, left by a close that raced its
			 * holder, which the end's release would end but our
			 * reference holds off (zerocopy.c). */
			rp__hold_orphaned(e);
			uint32_t held = atomic_load(word);
			uint32_t tid = held & RP_LOCK_TID;
			if ((held & ~RP_LOCK_WAITERS) == (cur & ~RP_LOCK_WAITERS) &&
			    (holder_dead(tid) ||
			     !holder_maps_ring(tid, e->ring_dev, e->ring_ino))) {
				/* Take over from the dead (or an impostor): one
				 * waiter wins the CAS. */
				if (atomic_compare_exchange_strong(word, &held,
						me | RP_LOCK_WAITERS))
					return 0;
			}
		}
		cur = atomic_load_explicit(word, memory_order_relaxed);
	}
}

/*
 * A non-blocking call waits for the lock at most NB_LOCK_NS, then fails
 * with EAGAIN: the holder may be another caller's reservation or peek
 * (zerocopy.c), or a sender in the middle of a message (conn.c), which
 * last as long as their holder likes, and O_NONBLOCK promises no such
 * wait.  The bound covers a holder briefly preempted in its copy.
 */
int rp__lock_call_slow(struct rp_end *e, struct rp_lockword *l)
{
	if (!e->nb_cache)
		return rp__lock_within(e, l, 0);
	if (rp__lock_within(e, l, NB_LOCK_NS) == 0)
		return 0;
	if (errno != ETIMEDOUT)
		return -1;
	if (!rp__nb(e))         /* made blocking meanwhile, through a copy */
		return rp__lock_within(e, l, 0);
	errno = EAGAIN;
	return -1;
}

bool rp__lock_abandoned(struct rp_end *e, struct rp_lockword *l)
{
	rp__call_quiet();       /* it may read /proc */
	uint32_t w = atomic_load_explicit(&l->word, memory_order_acquire);
	if ((w & RP_LOCK_BIASED) &&
	    atomic_load_explicit(&l->busy[rp_lock_slot(w)], memory_order_acquire) != 1)
		return true;
	return rp_lock_garbage(w) || rp__tid_gone(e, w);
}

bool rp__tid_gone(struct rp_end *e, uint32_t tid)
{
	tid &= RP_LOCK_TID;
	return tid == 0 || holder_dead(tid) ||
	       !holder_maps_ring(tid, e->ring_dev, e->ring_ino);
}

/* The owner, leaving, saw a revoker's CAS (the word is now `word`): it
 * says so, then wakes the revoker (await_owner()).  Not to a revoker that
 * may give the bias back: the word would then be ours again with the
 * acknowledgement still in our flag, for the next revoker to trust
 * before we have seen its CAS (docs/model/bias.pml, ACK_NOACK). */
void rp__bias_revoked(_Atomic uint32_t *busy, uint32_t word)
{
	if (!(word & RP_LOCK_NOACK))
		atomic_store_explicit(busy, RP_BUSY_ACK, memory_order_release);
	futex(busy, FUTEX_WAKE, INT32_MAX, NULL);
}

/*
 * A busy flag of our own for a bias: the slot we own already, a free one,
 * or one whose owner is gone (only a live thread can be on its way into
 * a bias it lost, so only a live owner's flag must stay its own).  We
 * hold the lock by its word, so no bias names any slot now.  -1: none.
 */
static int claim_slot(struct rp_end *e, struct rp_lockword *l, uint32_t me)
{
	for (int i = 0; i < RP_BIAS_SLOTS; i++)
		if (atomic_load_explicit(&l->owner[i], memory_order_relaxed) == me) {
			atomic_store_explicit(&l->busy[i], 0, memory_order_relaxed);
			return i;       /* (it may hold RP_BUSY_ACK) */
		}
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < RP_BIAS_SLOTS; i++) {
			uint32_t t = atomic_load_explicit(&l->owner[i],
							  memory_order_relaxed);
			if ((pass == 0 ? t != 0 : !rp__tid_gone(e, t)) ||
			    !atomic_compare_exchange_strong(&l->owner[i], &t, me))
				continue;
			atomic_store_explicit(&l->busy[i], 0, memory_order_relaxed);
			return i;
		}
	return -1;
}

/*
 * Unlocking a lock taken with the word (not by bias).  A thread that has
 * met nobody BIAS_AFTER times in a row keeps it, biased, when its process
 * can be reached by membarrier and every peer so far could issue it.
 * Otherwise an atomic exchange, which rp__mb_after_unlock() counts on.
 */
void rp__unlock_held(struct rp_end *e, struct rp_lockword *l)
{
	uint32_t me = rp__tid_cache;
	/* In a row: two threads taking turns without meeting never bias (a
	 * revocation costs a membarrier). */
	if (atomic_load_explicit(&l->last, memory_order_relaxed) != me) {
		atomic_store_explicit(&l->last, me, memory_order_relaxed);
		atomic_store_explicit(&e->streak, 0, memory_order_relaxed);
	}
	uint32_t streak = atomic_load_explicit(&e->streak, memory_order_relaxed) + 1;
	atomic_store_explicit(&e->streak, streak, memory_order_relaxed);
	if (streak >= BIAS_AFTER && rp__light_publish &&
	    !atomic_load_explicit(&e->sh->heavy_publish, memory_order_relaxed)) {
		int slot = -1;
		if (bias_allowed(l)) {
			rp__call_quiet();       /* claim_slot() may read /proc */
			slot = claim_slot(e, l, me);
		}
		if (slot < 0)
			atomic_store_explicit(&e->streak, 0, memory_order_relaxed);
		else if (atomic_compare_exchange_strong_explicit(&l->word, &me,
				RP_LOCK_BIASED | (uint32_t)slot << RP_LOCK_SLOT_SHIFT | me,
				memory_order_seq_cst, memory_order_relaxed))
			return;
	}
	uint32_t old = atomic_exchange_explicit(&l->word, 0, memory_order_release);
	if (old & RP_LOCK_WAITERS) {
		atomic_store_explicit(&e->streak, 0, memory_order_relaxed);
		futex(&l->word, FUTEX_WAKE, 1, NULL);
	}
}
