/*
 * wait.c - spinning, sleeping and waking, and readiness for poll(2).
 *
 * A blocked end first spins for RINGPIPE_SPIN_NS (default 50 us: a wakeup
 * costs about 40 us on the virtual machines we measured, and spinning a
 * little longer than that is what makes a sleeping peer no slower than a
 * kernel pipe; 0 on a one-CPU machine, and the spin yields once the peer
 * is late, in case it shares our CPU), then sleeps on a kernel pipe for a
 * token (sleep.c, which also keeps read(2)'s signal rules).  Sleeping on a
 * pipe rather than a futex buys exactness about peers (the pipe reports EOF
 * the instant the last peer's descriptor is gone, whether by close, exec or
 * kill -9, and a zombie holds none), and a descriptor that poll(2)
 * understands.
 *
 * No wakeup is lost between live processes: a sleeper counts itself, then
 * re-checks the ring; a waker publishes, then reads the count, with a full
 * barrier between each pair (RP_PUBLISH; a writer's barrier is supplied by
 * the reader going to sleep, fence.c).  Of two such sequences at least
 * one sees the other (Dekker), so either the sleeper sees the data or the
 * waker sees the sleeper and drops a token.
 *
 * A waker can be killed between its publish and its token, though, and
 * the kernel cannot finish that for it.  So an end about to sleep, or to
 * return EAGAIN, first gives the other side any token it may be owed: a
 * reader never sleeps on an empty ring while a writer sleeps for room, nor
 * the other way round, unless a token went missing.  Sleepers left behind
 * wake when any live peer next calls in, when the last one goes, or when
 * they next look at the ring by themselves (every 100 ms at most).  Pollers
 * of rp_fileno, whose poll(2) is not ours, are told before the publish
 * (rp__poller_token).
 */
#include "internal.h"

#include <pthread.h>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SPIN_NS_DEFAULT 50000
/* The spin looks at the ring every SPIN_POLL pauses (about 0.2 us here):
 * each look takes the line of the other side's index away from it, and a
 * writer streaming small writes then waits for that line at every call
 * (DESIGN.md, "Small writes").  -DSPIN_POLL=1 for experiments.  A thread
 * awaiting a reply looks every SPIN_POLL_REPLY pauses; a reader that only
 * reads, fed a stream, every SPIN_POLL_STREAM (see spin_poll()). */
#ifndef SPIN_POLL
#define SPIN_POLL 8
#endif
#ifndef SPIN_POLL_REPLY
#define SPIN_POLL_REPLY 1
#endif
#ifndef SPIN_POLL_STREAM
#define SPIN_POLL_STREAM 256
#endif
/* A wait for data that ended within two such looks was fed a stream. */
#define STREAM_PAUSES (2 * SPIN_POLL_STREAM)
/* Spinning longer than this after the first clock check (64 pauses in,
 * ~1.2 us here) yields the CPU at every check: a round trip between two
 * processes sharing a CPU took 70 us when the spin yielded every 1024
 * pauses, 15 us this way. */
#define YIELD_AFTER_NS  1000
/* ... but only every YIELD_APART_NS while the peer last waited on another
 * CPU (see peer_may_share_cpu()). */
#define YIELD_APART_NS  16000
#define PROBE_NS        10000000ULL   /* writers re-check readers this often */
#define MAX_TOKENS      64
#define SKIPS_PER_REAP  65536         /* see skipped() */
#define ARM_LOCK_NS     2000000       /* see rp__poll_arm_reader() */
#define HAND_BACK_NS    1000000       /* see hand_back() */

static const char zeros[RP_PIPE_BUF];

/*
 * The spin budget, worked out on first use.  Not with pthread_once: a
 * signal handler that writes into a pipe while its thread is inside that
 * first use would wait for itself for ever.  Two threads that both work it
 * out get the same answer.
 */
#define SPIN_UNSET UINT64_MAX
static _Atomic uint64_t spin_budget = SPIN_UNSET;

static uint64_t spin_ns(void)
{
	uint64_t v = atomic_load_explicit(&spin_budget, memory_order_relaxed);
	if (v != SPIN_UNSET)
		return v;
	/* One CPU in the machine: the peer cannot run while we spin.  (Not
	 * our affinity mask: a process pinned to one CPU may well have its
	 * peer pinned to another.) */
	v = rp__env_setting("RINGPIPE_SPIN_NS", 1000000000ULL,
			    sysconf(_SC_NPROCESSORS_ONLN) < 2 ? 0 : SPIN_NS_DEFAULT);
	atomic_store_explicit(&spin_budget, v, memory_order_relaxed);
	return v;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

uint64_t rp__env_setting(const char *name, uint64_t max, uint64_t dflt)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return dflt;
	char *end;
	unsigned long long u = strtoull(s, &end, 10);
	return !*end && u <= max ? u : dflt;
}

uint64_t rp__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Counting in and out of a sleep.  A sleeper names itself (its TID) in a
 * free slot of `who`, then sets the slot's bit in the count word, so that
 * reap() can later take back the count of one killed in its sleep, and only
 * of one that is dead.  With every slot taken it counts anonymously in the
 * high half of the word, which nobody can take back (32 sleepers on one side
 * of one pipe: a count left there by a killed one costs the wakers a write(2)
 * per publish, not a wakeup).
 */
#define SLOT_REAPING 0x80000000u

/* The marks of the side whose sleepers are counted in `sleepers` (see
 * owed()). */
static _Atomic uint32_t *rung_of(struct rp_end *e, _Atomic uint64_t *sleepers)
{
	return sleepers == &e->sh->rd_sleepers ? &e->sh->rd_rung : &e->sh->wr_rung;
}

static void forget_rung(_Atomic uint32_t *rung)
{
	if (atomic_load_explicit(rung, memory_order_relaxed))
		atomic_store_explicit(rung, 0, memory_order_seq_cst);
}

static int count_in(_Atomic uint64_t *count, _Atomic uint32_t *who,
		    _Atomic uint32_t *rung, _Atomic uint64_t *needs, uint64_t need)
{
	uint32_t me = rp__self_tid();

	for (unsigned k = 0; k < RP_SLEEP_SLOTS; k++) {
		unsigned i = (me + k) % RP_SLEEP_SLOTS;
		uint32_t free_slot = 0;
		/* Acquire: the slot's last owner (or reaper) cleared its bit
		 * before it freed the slot, and our bit must come after. */
		if (atomic_load_explicit(&who[i], memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong_explicit(&who[i], &free_slot, me,
				memory_order_acquire, memory_order_relaxed)) {
			if (needs)      /* before the bit, which publishes it */
				atomic_store_explicit(&needs[i], need,
						      memory_order_relaxed);
			atomic_fetch_or_explicit(count, (uint64_t)1 << i,
						 memory_order_seq_cst);
			/* A new sleep is owed a token of its own: clear the
			 * slot's old mark (owed()).  After the bit, so that a
			 * waker that sees the bit and still the old mark came
			 * before this, hence before our look at the ring, which
			 * then sees its publish. */
			if (atomic_load_explicit(rung, memory_order_seq_cst) & (1u << i))
				atomic_fetch_and_explicit(rung, ~(1u << i),
							  memory_order_seq_cst);
			return (int)i;
		}
	}
	atomic_fetch_add_explicit(count, RP_SLEEP_ANON, memory_order_seq_cst);
	return -1;
}

static void count_out(_Atomic uint64_t *count, _Atomic uint32_t *who, int slot)
{
	if (slot >= 0) {
		atomic_fetch_and_explicit(count, ~((uint64_t)1 << slot),
					  memory_order_relaxed);
		atomic_store_explicit(&who[slot], 0, memory_order_release);
		return;
	}
	/* The count lives in hostile memory: never let ours wrap below zero. */
	uint64_t v = atomic_load_explicit(count, memory_order_relaxed);
	while (v >= RP_SLEEP_ANON && !atomic_compare_exchange_weak_explicit(count,
			&v, v - RP_SLEEP_ANON, memory_order_relaxed, memory_order_relaxed))
		;
}

/*
 * Take back the counts of sleepers that died asleep.  Only a dead owner's
 * bit is cleared, and only by the one reaper whose CAS marks the slot: the
 * owner cannot move any more, and nobody can claim the slot until it is
 * freed, after its bit is clear.  (Resetting the whole count instead, as an
 * earlier version did, can erase a sleeper counting itself in at that
 * moment: a lost wakeup between live processes; docs/model/README.md.)
 */
static void reap(struct rp_end *e, _Atomic uint64_t *count, _Atomic uint32_t *who)
{
	uint64_t now = rp__coarse_ns();
	if (now < e->next_reap_ns)
		return;
	e->next_reap_ns = now + PROBE_NS;     /* it reads /proc: not often */
	for (unsigned i = 0; i < RP_SLEEP_SLOTS; i++) {
		uint32_t t = atomic_load_explicit(&who[i], memory_order_relaxed);
		if (!t || (t & SLOT_REAPING) || !rp__tid_gone(e, t))
			continue;
		if (!atomic_compare_exchange_strong_explicit(&who[i], &t,
				t | SLOT_REAPING, memory_order_relaxed,
				memory_order_relaxed))
			continue;
		atomic_fetch_and_explicit(count, ~((uint64_t)1 << i),
					  memory_order_relaxed);
		atomic_store_explicit(&who[i], 0, memory_order_release);
	}
}

/* Free space, or everything when the indices are corrupt (the caller's
 * validation then reports EIO). */
static uint64_t free_space(struct rp_end *e)
{
	uint64_t tail = atomic_load_explicit(&e->sh->tail, memory_order_seq_cst);
	uint64_t head = atomic_load_explicit(&e->sh->head, memory_order_seq_cst);
	int64_t used = rp_ring_used(&e->ring, head, tail);
	return used < 0 ? e->ring.cap : e->ring.cap - (uint64_t)used;
}

/*
 * Writers hold the wake pipe read-only, so that read(2) there returns 0 when
 * the last reader goes; to hand a token back one opens a write end for the
 * moment (closing it wakes the sleepers again, so no EOF is lost).  False if
 * no token went in (the pipe is full: the sleepers have tokens to take).
 */
static bool give_token(int fd)
{
	char path[40];
	rp__fmt_u32(stpcpy(path, "/proc/self/fd/"), (uint32_t)fd);
	int w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (w < 0)
		return false;
	ssize_t n = write(w, zeros, 1);
	close(w);
	return n == 1;
}

/*
 * A writer woke for a token but has too little room for its write, or is
 * about to sleep for lack of it.  Tokens are not addressed: the token may
 * have been dropped for a writer that needs less and now sleeps with room
 * for its write (the model's finding 2).  If such a writer is asleep, give
 * it a token, and let it take the token before we sleep again: running, we
 * would take it first.  The wait is bounded, in case that writer is
 * stopped.
 */
static void hand_back(struct rp_end *e)
{
	struct rp_shared *sh = e->sh;
	uint64_t room = free_space(e);
	uint32_t me = rp__self_tid();   /* sleep_on() calls us counted in */
	uint32_t bits = (uint32_t)atomic_load_explicit(&sh->wr_sleepers,
						       memory_order_seq_cst);
	for (; bits; bits &= bits - 1) {
		unsigned i = (unsigned)__builtin_ctz(bits);
		uint32_t t = atomic_load_explicit(&sh->wr_who[i], memory_order_relaxed);
		if (!t || t == me || (t & SLOT_REAPING) ||
		    atomic_load_explicit(&sh->wr_need[i], memory_order_relaxed) > room ||
		    rp__tid_gone(e, t))
			continue;
		if (!give_token(e->wake))
			return;
		uint64_t until = rp__now_ns() + HAND_BACK_NS;
		while (atomic_load_explicit(&sh->wr_who[i], memory_order_relaxed) == t &&
		       (atomic_load_explicit(&sh->wr_sleepers, memory_order_relaxed) &
			((uint64_t)1 << i)) && rp__now_ns() < until)
			sched_yield();
		return;
	}
}

/* A sleep cancelled (pthread_cancel): count ourselves out, as the return
 * would have (the call's references go when the thread exits: end.c). */
struct asleep { _Atomic uint64_t *sleepers; _Atomic uint32_t *who; int slot; };

static void sleep_cancelled(void *p)
{
	struct asleep *a = p;
	count_out(a->sleepers, a->who, a->slot);
}

static int sleep_on(int fd, int nbfd, _Atomic uint64_t *sleepers,
		    _Atomic uint32_t *who, _Atomic uint64_t *needs,
		    bool (*ready)(struct rp_end *, uint64_t), struct rp_end *e,
		    uint64_t arg, bool partial)
{
	int r;

	/* Made non-blocking through another copy of the end meanwhile? */
	if (!e->nb_cache && rp__nonblocking(e)) {
		e->nb_cache = 1;
		return RP_WAIT_READY;           /* the caller re-checks: EAGAIN */
	}
	_Atomic uint32_t *rung = rung_of(e, sleepers);
	struct asleep a = { sleepers, who, count_in(sleepers, who, rung, needs, arg) };
	pthread_cleanup_push(sleep_cancelled, &a);
	/* Supply the barrier that the other side's publishes leave out. */
	rp__fence_peers(e);
	/* A token with nothing behind it is stale: left for a sleeper that
	 * was killed, or one of several dropped by publishes while we were
	 * waking (eight writers drop one each).  Sleep again at once, still
	 * counted in: every publish after our fence sees the count, and the
	 * kernel's pipe mutex orders a publish before its token (the model's
	 * TOKEN_RELEASE), so no new fence is needed (each is a membarrier,
	 * which interrupts the writers' CPUs). */
	r = RP_WAIT_READY;
	while (!ready(e, arg) &&
	       (r = rp__take_token(fd, nbfd, partial, ready, e, arg)) == RP_WAIT_READY) {
		/* The token we took was dropped for us, and we may sleep
		 * again (it was stale), or for another sleeper (tokens are
		 * not addressed): either way a mark now claims a token that
		 * is gone.  Clear them all; the next publish drops one for
		 * every sleeper still counted in (the model's forget-off). */
		forget_rung(rung);
		if (needs) {
			int err = errno;
			hand_back(e);
			errno = err;
		}
	}
	pthread_cleanup_pop(0);
	int err = errno;
	count_out(sleepers, who, a.slot);
	errno = err;
	return r;
}

static bool readable(struct rp_end *e, uint64_t unused)
{
	(void)unused;
	return rp__has_data(e);
}

__thread uint32_t rp__answering RP_TLS_FAST;
static __thread bool fed_stream RP_TLS_FAST;        /* our last wait for data was short */
static __thread unsigned stream_poll RP_TLS_FAST;   /* its looks: 0 is SPIN_POLL_STREAM */

/*
 * How many pauses between looks at the ring (a power of two).  A reader
 * fed a stream of small writes gets a little data at every look, and
 * every look takes the writer's lines away from it; looking less often
 * lets each look find more (a 64-byte stream ran twice as fast:
 * DESIGN.md, "Small writes").  That costs the reader up to 5 us of
 * latency, which a thread that answers what it reads (its own writes say
 * so) must not pay: a round trip would double.  So the slow looks are for
 * a thread that has not written lately and whose last wait was short,
 * spaced to what its looks find (note_stream()); a wait after a quiet
 * spell looks often.  The first wait after a write is most likely for
 * the answer to it, and looks at every pause: a round trip took 0.23 us
 * against 0.40 looking every 8th.  (A relay that
 * writes between all its waits pays for it in its upstream's lines.)
 */
static unsigned spin_poll(bool for_data)
{
	if (!for_data)
		return SPIN_POLL;
	if (rp__answering) {
		if (rp__answering-- == RP_ANSWER_WAITS)
			return SPIN_POLL_REPLY;
		return SPIN_POLL;
	}
	return fed_stream ? (stream_poll ? stream_poll : SPIN_POLL_STREAM) : SPIN_POLL;
}

/*
 * A wait for data has ended: was it fed a stream, and how far apart
 * should the looks of the next one be?  The looks that suit a stream are
 * those that each find a quarter to a half of the ring filled: 256
 * pauses (5-7 us) suit a 64-byte stream, but in that time a stream of
 * 4 KiB writes at 9 GB/s fills 64 KiB, and its writer waited for room
 * most of the time while the reader waited for the next look (DESIGN.md,
 * "Small writes").  So the spacing halves
 * (down to SPIN_POLL) when a look finds more than half the ring filled,
 * and doubles (up to SPIN_POLL_STREAM) when it finds less than a quarter.
 */
static void note_stream(struct rp_end *e, unsigned i)
{
	uint64_t cap = e->ring.cap, used = cap - free_space(e);
	unsigned poll = stream_poll ? stream_poll : SPIN_POLL_STREAM;

	fed_stream = i <= STREAM_PAUSES;
	if (!fed_stream)
		return;
	if (used > cap / 2 && poll > SPIN_POLL)
		poll /= 2;
	else if (used < cap / 4 && poll < SPIN_POLL_STREAM)
		poll *= 2;
	stream_poll = poll;
}

static bool writable(struct rp_end *e, uint64_t need)
{
	return free_space(e) >= need;
}

/*
 * Note where our side waits, and say whether the other side may share our
 * CPU: it last waited on this one, or has never said.  Eight writers that
 * shared a CPU and waited for room yielded to each other, each of them
 * then taking the writers' lock (a revocation) only to find no room.  The
 * hint goes stale when the peer moves without waiting since, so a waiter
 * that trusts it still yields every YIELD_APART_NS, which bounds the cost
 * of a stale "elsewhere" to a peer that does share our CPU.
 */
static bool peer_may_share_cpu(struct rp_end *e, bool for_data)
{
	struct rp_shared *sh = e->sh;
	_Atomic uint32_t *ours = for_data ? &sh->rd_cpu : &sh->wr_cpu;
	_Atomic uint32_t *theirs = for_data ? &sh->wr_cpu : &sh->rd_cpu;
	int cpu = sched_getcpu();       /* glibc reads it from rseq */
	if (cpu < 0)
		return true;
	uint32_t here = (uint32_t)cpu + 1;
	if (atomic_load_explicit(ours, memory_order_relaxed) != here)
		atomic_store_explicit(ours, here, memory_order_relaxed);
	uint32_t there = atomic_load_explicit(theirs, memory_order_relaxed);
	return there == 0 || there == here;
}

/*
 * A reader waiting for data also asks for the line that the data will
 * start in (at tail), so that when the writer's copy and head land, the
 * look that sees head has that line on its way as well, instead of
 * fetching it only then: one transfer of a line between the two CPUs less
 * per message of a ping-pong (measured in docs/DESIGN.md, "Round trips").
 * A hint: it never faults, and whatever tail holds, the offset is inside
 * the ring.
 */
static inline void prefetch_data(const struct rp_end *e)
{
	uint64_t tail = atomic_load_explicit(&e->sh->tail, memory_order_relaxed);
	__builtin_prefetch(e->data + rp_ring_off(&e->ring, tail));
}

static int wait_for(struct rp_end *e, bool (*ready)(struct rp_end *, uint64_t),
		    uint64_t arg, int fd, int nbfd, _Atomic uint64_t *sleepers,
		    _Atomic uint32_t *who, _Atomic uint64_t *needs,
		    _Atomic uint64_t *blocked_ns, bool partial)
{
	/* The clock is first read after 64 pauses: most waits end sooner,
	 * and a read costs 25-90 ns here, a tenth of a round trip.  So the
	 * budget and blocked_ns count from there (~1 us late). */
	uint64_t t0 = 0, deadline = 0, yielded = 0, apart = 0;
	bool for_data = ready == readable;
	unsigned poll = spin_poll(for_data);

	for (unsigned i = 0;; i++) {
		if ((i & (poll - 1)) == 0) {
			if (for_data)
				prefetch_data(e);
			if (ready(e, arg)) {
				if (for_data)
					note_stream(e, i);
				return RP_WAIT_READY;
			}
		}
		if ((i & 63) == 63) {
			uint64_t now = rp__now_ns();
			if (!deadline) {
				t0 = yielded = now;
				deadline = now + spin_ns();
				if (!peer_may_share_cpu(e, for_data))
					apart = YIELD_APART_NS;
			}
			if (now >= deadline) {
				if (for_data)
					fed_stream = false;
				break;
			}
			/* If the peer shares our CPU, let it run: it is what we
			 * are waiting for.  Costs a system call when the CPU is
			 * ours, so only once the peer is late: a peer running on
			 * another CPU mostly answers well within YIELD_AFTER_NS. */
			if (now - t0 >= YIELD_AFTER_NS && now - yielded >= apart) {
				sched_yield();
				yielded = now;
			}
		}
		cpu_relax();
	}
	int r;
	/* Woken with data that another sleeper of our side took first: go
	 * back to sleep at once, without spinning again. */
	while ((r = sleep_on(fd, nbfd, sleepers, who, needs, ready, e, arg,
				 partial)) == RP_WAIT_READY &&
	       !e->nb_cache && !ready(e, arg)) {
		if (needs) {
			int err = errno;
			hand_back(e);
			errno = err;
		}
	}
	int err = errno;
	atomic_fetch_add_explicit(blocked_ns, rp__now_ns() - t0,
				  memory_order_relaxed);
	errno = err;
	return r;
}

static void nudge_writers(struct rp_end *e, bool gate);   /* below, */
static void nudge_readers(struct rp_end *e);              /* with the wakers */

/*
 * Called by a reader that found the ring empty.  A writer asleep for room
 * now (or a gate shut) was owed a token by a reader killed after making
 * room: give it.  unlock: drop the readers' lock before sleeping.
 */
int rp__wait_readable(struct rp_end *e, bool unlock)
{
	rp__call_quiet();       /* cancellable only in the sleep's window */
	nudge_writers(e, true);
	if (unlock)
		rp__unlock(e, &e->sh->rlock);
	return wait_for(e, readable, 0, e->bell, e->drain, &e->sh->rd_sleepers,
			e->sh->rd_who, NULL, &e->sh->rd_blocked_ns, false);
}

/* Called holding the writers' lock by a writer that found no room: the
 * mirror image, under the lock because tokens into the bell are dropped
 * only there (see rp__reader_emptied). */
int rp__wait_writable(struct rp_end *e, uint64_t need, bool unlock, bool partial)
{
	rp__call_quiet();
	nudge_readers(e);
	if (unlock) {
		rp__unlock(e, &e->sh->wlock);
		/* The same for a writer of another size asleep with room for
		 * its write: we cannot take that room, so we must not leave it
		 * owed (a reader killed after making room never woke it). */
		int err = errno;
		hand_back(e);
		errno = err;
	}
	return wait_for(e, writable, need, e->wake, -1, &e->sh->wr_sleepers,
			e->sh->wr_who, e->sh->wr_need, &e->sh->wr_blocked_ns,
			partial);
}

/*
 * Drop up to `k` tokens into a non-blocking pipe.  A full pipe means the
 * count is stale: sleepers were killed and never counted themselves out.
 * Take their counts back, or every publish would pay this write(2).
 */
static void ring_bell(struct rp_end *e, int fd, uint64_t k,
		      _Atomic uint64_t *sleepers, _Atomic uint32_t *who)
{
	if (k > MAX_TOKENS)
		k = MAX_TOKENS;
	if (write(fd, zeros, (size_t)k) < 0 && errno == EAGAIN)
		reap(e, sleepers, who);
}

/*
 * How many tokens the sleepers counted in `n` are still owed: one for each
 * slot with no token dropped for it since it counted in, and one for each
 * anonymous sleeper (they cannot be told apart).  Marked before the token
 * goes, so that the next waker does not drop another: a woken sleeper
 * stays counted in until it runs, and on a busy CPU that can be a whole
 * time slice, in which every publish would otherwise pay a write(2).  A
 * waker killed between its mark and its token leaves those sleepers to
 * their own look at the ring (sleep.c) or to a nudge (nudge_readers(),
 * nudge_writers()); a sleeper that takes a token clears the marks
 * (sleep_on()).  all: the nudge, which drops a token for every sleeper,
 * marked or not.
 */
static uint64_t owed(_Atomic uint32_t *rung, uint64_t n, bool all)
{
	uint32_t slots = (uint32_t)n;
	uint32_t fresh = slots;
	if (!all && slots) {
		/* Our publish may still sit in the store buffer (fence.c),
		 * and a sleeper that took a stale token clears the marks and
		 * looks at the ring again without a fence of its own
		 * (sleep_on()): make the publish visible before trusting a
		 * mark, so that a sleeper clearing it after our load sees it
		 * (the model's owed-no-fence is the lost wakeup without). */
		atomic_thread_fence(memory_order_seq_cst);
		fresh &= ~atomic_load_explicit(rung, memory_order_seq_cst);
	}
	if (fresh) {
		uint32_t old = atomic_fetch_or_explicit(rung, fresh, memory_order_seq_cst);
		if (!all)
			fresh &= ~old;
	}
	return (uint64_t)__builtin_popcount(fresh) + (n >> 32);
}

/*
 * A wake found every counted sleeper marked and dropped nothing.  A
 * sleeper killed asleep stays counted, and marked, until reap() takes it
 * back; before the marks every publish dropped it a token, the pipe
 * filled, and ring_bell()'s EAGAIN set off the reap.  So every
 * SKIPS_PER_REAP skips on an end (a full pipe's worth) reap all the same:
 * it reads /proc at most once per PROBE_NS, and clears only the dead.
 */
static void skipped(struct rp_end *e, _Atomic uint64_t *sleepers, _Atomic uint32_t *who)
{
	uint32_t k = atomic_load_explicit(&e->skips, memory_order_relaxed) + 1;
	if (k < SKIPS_PER_REAP) {
		atomic_store_explicit(&e->skips, k, memory_order_relaxed);
		return;
	}
	atomic_store_explicit(&e->skips, 0, memory_order_relaxed);
	reap(e, sleepers, who);
}

static void wake_readers(struct rp_end *e, uint64_t n, uint32_t a, uint32_t p, bool all)
{
	struct rp_shared *sh = e->sh;

	if (n | a) {
		rp__call_quiet();       /* write(2) is a cancellation point */
		if (a)
			a = atomic_exchange_explicit(&sh->rd_armed, 0,
						     memory_order_relaxed) != 0;
		uint64_t k = owed(&sh->rd_rung, n, all);
		if (!k && (uint32_t)n)
			skipped(e, &sh->rd_sleepers, sh->rd_who);
		n = k + a;
		if (n) {
			int err = errno;
			ring_bell(e, e->bell, n, &sh->rd_sleepers, sh->rd_who);
			errno = err;
		}
	}
	if (p)
		rp__gate_shut_full(e);
}

void rp__wake_readers_slow(struct rp_end *e, uint64_t n, uint32_t a, uint32_t p)
{
	wake_readers(e, n, a, p, false);
}

/* Empty the gate: the write ends' rp_fileno polls writable again. */
static void drain_gate(struct rp_end *e)
{
	char buf[RP_PIPE_BUF];
	while (read(e->gate, buf, sizeof(buf)) > 0)
		;
}

static void wake_writers(struct rp_end *e, uint64_t n, uint32_t g, bool all)
{
	struct rp_shared *sh = e->sh;
	rp__call_quiet();
	int err = errno;
	if (n) {
		uint64_t k = owed(&sh->wr_rung, n, all);
		if (k)
			ring_bell(e, e->wake, k, &sh->wr_sleepers, sh->wr_who);
		else
			skipped(e, &sh->wr_sleepers, sh->wr_who);
	}
	if (g && atomic_exchange_explicit(&sh->gate_closed, 0,
					  memory_order_relaxed))
		drain_gate(e);
	errno = err;
}

void rp__wake_writers_slow(struct rp_end *e, uint64_t n, uint32_t g)
{
	wake_writers(e, n, g, false);
}

/*
 * Pollers hear of a publish before it happens (rp__publish_head/_tail),
 * while the publisher holds its side's lock, and the flag is cleared only
 * after the pipe is touched.  Killed before that, the publisher published
 * nothing and leaves the flag for the next one; killed after, the poller is
 * told, at worst a moment early: its rp_read or rp_write finds nothing yet,
 * waits for our lock (rp__poll_arm_reader, rp__gate_close), and sees the
 * publish, or takes the dead holder's lock over and shuts the door again.
 * A wakeup that comes after the publish instead is lost with its waker
 * (DESIGN.md, "A waker killed mid-wake").  The arm that does not wait for
 * the writers' lock is still caught after the publish, by rp__wake_readers().
 */
void rp__poller_token(struct rp_end *e)
{
	rp__call_quiet();
	int err = errno;
	ring_bell(e, e->bell, 1, &e->sh->rd_sleepers, e->sh->rd_who);
	atomic_store_explicit(&e->sh->rd_armed, 0, memory_order_relaxed);
	errno = err;
}

void rp__gate_open(struct rp_end *e)
{
	rp__call_quiet();
	int err = errno;
	drain_gate(e);
	atomic_store_explicit(&e->sh->gate_closed, 0, memory_order_relaxed);
	errno = err;
}

/*
 * The nudge of an end about to sleep or fail with EAGAIN (DESIGN.md, "A
 * waker killed mid-wake"): a token for every sleeper of the other side,
 * marked or not, since the waker that marked it may have died before its
 * token.  gate: reopen the writers' poll gate too, which only a holder of
 * the readers' lock may (rp__gate_close); rp_poll holds none.
 */
static void nudge_writers(struct rp_end *e, bool gate)
{
	uint64_t n = atomic_load_explicit(&e->sh->wr_sleepers, memory_order_seq_cst);
	uint32_t g = gate ? atomic_load_explicit(&e->sh->gate_closed,
						 memory_order_seq_cst) : 0;
	if (n | g)
		wake_writers(e, n, g, true);
}

static void nudge_readers(struct rp_end *e)
{
	struct rp_shared *sh = e->sh;
	uint64_t n = atomic_load_explicit(&sh->rd_sleepers, memory_order_seq_cst);
	uint32_t a = atomic_load_explicit(&sh->rd_armed, memory_order_seq_cst);
	uint32_t p = atomic_load_explicit(&sh->wr_polled, memory_order_relaxed);
	if (n | a | p)
		wake_readers(e, n, a, p, true);
}

/*
 * Armed without the writers' lock, because it is biased to a writer: as
 * if we had taken it, let a writer inside finish (bounded, as the lock
 * wait is), so that every publish from now on starts after the arm and
 * drops its token first.  The membarrier makes a writer that set its
 * busy flag after our look see the arm (lock.c, fence.c).  True if data
 * showed meanwhile.
 */
static bool armed_past_writer(struct rp_end *e)
{
	rp__fence_peers(e);
	uint64_t until = rp__now_ns() + ARM_LOCK_NS;
	while (rp_lock_holder(&e->sh->wlock) && rp__now_ns() < until)
		sched_yield();
	return rp__has_data(e);
}

/*
 * A non-blocking reader found the ring empty: make rp_fileno exact for
 * poll(2).  Under the writers' lock no data can be published, so if the
 * ring is still empty every token in the bell is stale: drain them, and
 * arm, so that the next publisher drops exactly one.  If a writer keeps
 * the lock for long (a reservation) we cannot tell, and leave the tokens
 * (a spurious wakeup at worst, never a lost one).  A lock biased to a
 * writer is not taken (that would revoke the bias at every empty ring):
 * we drain without it, arm, and wait for a writer inside to leave (see
 * armed_past_writer()); a writer inside may still drop a token for data
 * we already read, one spurious wakeup.
 */
int rp__poll_arm_reader(struct rp_end *e)
{
	rp__call_quiet();       /* it drains tokens with read(2) */
	struct rp_shared *sh = e->sh;
	char buf[MAX_TOKENS];
	struct iovec v = { buf, sizeof(buf) };

	/* Writers hold their lock for a copy and a token write, so it comes
	 * quickly unless the holder was preempted; a reservation can keep it
	 * long, so the wait is bounded. */
	bool biased = atomic_load(&sh->wlock.word) & RP_LOCK_BIASED;
	if (!biased && rp__lock_within(e, &sh->wlock, ARM_LOCK_NS) < 0) {
		atomic_store(&sh->rd_armed, 1);          /* seq_cst: see RP_PUBLISH */
		rp__fence_peers(e);
		if (rp__has_data(e))
			return RP_WAIT_READY;
		nudge_writers(e, false); /* as in rp__wait_readable() */
		errno = EAGAIN;
		return -1;
	}
	int r;
	for (;;) {
		if (rp__has_data(e)) {
			r = RP_WAIT_READY;
			break;
		}
		ssize_t n = readv(e->drain, &v, 1);
		if (n > 0) {
			forget_rung(&sh->rd_rung);      /* as a sleeper would */
			continue;
		}
		if (n == 0) {
			r = RP_WAIT_GONE;        /* empty, and no writer left */
			break;
		}
		if (errno == EINTR)
			continue;
		atomic_store(&sh->rd_armed, 1);
		if (biased && armed_past_writer(e)) {
			r = RP_WAIT_READY;
			break;
		}
		nudge_writers(e, false); /* as in rp__wait_readable() */
		errno = EAGAIN;
		r = -1;
		break;
	}
	int err = errno;
	if (!biased)
		rp__unlock(e, &e->sh->wlock);
	errno = err;
	return r;
}

/* A reader (holding the readers' lock) emptied the ring: if somebody polls
 * this end, or any read end of the pipe in any process (a process that
 * shares the end with a poller empties it too), drop the now stale tokens
 * so poll(2) stays exact. */
void rp__reader_emptied_slow(struct rp_end *e)
{
	if (rp__has_data(e))
		return;
	rp__call_quiet();
	/* Armed, and no writer inside its lock: no token is in the bell or
	 * on its way (writers drop tokens only while holding the lock). */
	if (atomic_load_explicit(&e->sh->rd_armed, memory_order_seq_cst) &&
	    !rp_lock_holder(&e->sh->wlock))
		return;
	int saved = errno;
	rp__poll_arm_reader(e);
	errno = saved;
}

/* Fill the one-page gate pipe; it may already be full, or have been
 * emptied by a reader killed before it published its room (rp__gate_open).
 * False (EPIPE, and SIGPIPE from the kernel) if no reader is left. */
static bool fill_gate(struct rp_end *e)
{
	ssize_t w;
	while ((w = write(e->gate, zeros, sizeof(zeros))) > 0)
		;
	atomic_store(&e->sh->gate_closed, 1);
	return !(w < 0 && errno == EPIPE);
}

/*
 * A non-blocking writer found no room: make rp_fileno stop polling
 * writable.  Under the readers' lock no room can appear, so the gate is
 * closed only while the ring really is full; readers reopen it when they
 * next consume.  Returns READY if room appeared meanwhile.
 */
int rp__gate_close(struct rp_end *e, uint64_t need)
{
	rp__call_quiet();
	struct rp_shared *sh = e->sh;

	if (rp__lock_within(e, &sh->rlock, ARM_LOCK_NS) < 0) {
		errno = EAGAIN;
		return writable(e, need) ? RP_WAIT_READY : -1;
	}
	int r = -1;
	if (writable(e, need))
		r = RP_WAIT_READY;
	else if (!fill_gate(e))
		r = -2;
	rp__unlock(e, &sh->rlock);
	if (r == -1)
		nudge_readers(e);        /* as in rp__wait_writable() */
	errno = r == -2 ? EPIPE : EAGAIN;
	return r < 0 ? -1 : r;
}

/*
 * A write left the ring full, or an end asks for its rp_fileno, while
 * somebody may poll a write end (wr_polled): shut the gate now, so that
 * poll(2) stops reporting POLLOUT for a full pipe.  Without a poller the
 * gate is left to a non-blocking writer's EAGAIN (rp__gate_close()), which
 * spares a stream that keeps filling the ring two system calls per fill.
 * The write that filled it succeeded, so a reader gone meanwhile must not
 * raise SIGPIPE here: it is held back, and taken if the gate raised it.
 */
void rp__gate_shut_full(struct rp_end *e)
{
	if (writable(e, 1))
		return;         /* writers only take room: POLLOUT stays true */
	rp__call_quiet();
	struct rp_shared *sh = e->sh;
	int err = errno;
	if (rp__lock_within(e, &sh->rlock, ARM_LOCK_NS) < 0) {
		errno = err;
		return;         /* a reader holds it for long: a spurious POLLOUT */
	}
	if (!writable(e, 1)) {
		sigset_t pipe, old, pending;
		sigemptyset(&pipe);
		sigaddset(&pipe, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &pipe, &old);
		bool was = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
		if (!fill_gate(e) && !was) {
			struct timespec now = { 0, 0 };
			sigtimedwait(&pipe, NULL, &now);
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	rp__unlock(e, &sh->rlock);
	errno = err;
}

/* Has every reader gone (closed, exec'd with O_CLOEXEC, or died)? */
bool rp__readers_gone(struct rp_end *e)
{
	struct pollfd p = { .fd = e->gate, .events = POLLOUT };
	int err = errno;
	bool gone = poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
	errno = err;
	return gone;
}

/* rp__readers_gone_hint() found a close, a probe due, or no reader at
 * its last look. */
bool rp__readers_gone_slow(struct rp_end *e, uint32_t c)
{
	uint64_t now;

	rp__call_quiet();       /* poll(2) is a cancellation point */
	if (c != e->seen_rd_closes) {
		e->seen_rd_closes = c;
	} else if ((now = rp__coarse_ns()) >= e->next_probe_ns) {
		e->next_probe_ns = now + PROBE_NS;
	} else if (!e->widowed) {
		return false;
	}
	/* Once widowed, ask every time: only a FIFO can get a reader back. */
	e->widowed = rp__readers_gone(e);
	return e->widowed;
}

/* Let the kernel itself deliver SIGPIPE and EPIPE, with its rules for a
 * blocked or ignored signal.  Returns 0 if a reader appeared after all. */
int rp__raise_epipe(struct rp_end *e)
{
	if (write(e->gate, zeros, 1) < 0)
		return errno == EAGAIN ? 0 : -1;
	/* A reader came back and got a stray byte in the gate: have it
	 * drained, or the gate might stay shut with room in the ring. */
	atomic_store(&e->sh->gate_closed, 1);
	return 0;
}
