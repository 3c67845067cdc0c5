/*
 * sleep.c - sleeping for a token with read(2)'s signal rules, looking at
 * the ring again now and then.
 *
 * A sleeper waits for a token in poll(2) rather than read(2), so that it can
 * look at the ring by itself: a peer killed between its publish and its token
 * leaves none, and its survivors may all be idle (DESIGN.md, "A waker killed
 * mid-wake").  poll(2) is never restarted after a signal handler (signal(7));
 * read(2) on a pipe is, if the handler has SA_RESTART.  Which handler ran is
 * not reported, so the sleeper keeps the answer from depending on it:
 *
 * - if every handler the thread could run agrees about SA_RESTART (the usual
 *   case: none at all, BSD signal(), Python), the answer after EINTR is
 *   theirs;
 * - if they disagree, the sleep blocks the signals whose handlers have
 *   SA_RESTART (ppoll's mask) and watches them with a signalfd: only a
 *   handler without SA_RESTART can end the poll with EINTR, and one with it
 *   runs as the poll returns, after which the sleep goes on.
 *
 * Between two polls the signals that may end one stay blocked, and ppoll
 * unblocks them atomically: a handler that runs while the sleeper looks at
 * the ring would otherwise end nothing, where read(2) fails with EINTR.
 *
 * The handlers are read with sigaction, one call per signal (about 20 us
 * here), so what was read is kept for SCAN_TTL_NS (100 ms) and read again
 * after every handler that ends a poll: a program that changes its handlers
 * and is signalled within that time may get the old handlers' answer.  Left
 * out: the signals a thread raises itself by a fault or abort(3), which do
 * not come while it sleeps, and for which crash reporters (Python's
 * faulthandler, the sanitizers) install handlers without SA_RESTART.
 */
#include "internal.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define RECHECK_MIN_MS  10            /* see rp__recheck_ms() */
#define RECHECK_MAX_MS  100
#define RECHECK_UNSET   (-1)
#define SCAN_TTL_NS     100000000ULL

/*
 * A sleeper looks at the ring RECHECK_MIN_MS after it fell asleep, then at
 * doubling intervals up to RINGPIPE_RECHECK_MS (default RECHECK_MAX_MS, so
 * a sleeper left owed by a killed peer waits at most that long; 0: never,
 * the tokens alone).  Worked out once; two threads that both work it out
 * get the same answer.
 */
static _Atomic int recheck_max = RECHECK_UNSET;

int rp__recheck_ms(int prev)
{
	int max = atomic_load_explicit(&recheck_max, memory_order_relaxed);
	if (max == RECHECK_UNSET) {
		max = (int)rp__env_setting("RINGPIPE_RECHECK_MS", 3600000, RECHECK_MAX_MS);
		atomic_store_explicit(&recheck_max, max, memory_order_relaxed);
	}
	if (max == 0)
		return -1;
	int next = prev ? 2 * prev : RECHECK_MIN_MS;
	return next < max ? next : max;
}

/* The handlers, as bit masks (bit sig - 1), and when they were read (0:
 * read them again).  Threads that read them at once store the same. */
static _Atomic uint64_t handlers_restart, handlers_other, handlers_at;

static bool self_raised(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
	       sig == SIGTRAP || sig == SIGSYS || sig == SIGABRT;
}

void rp__signals_defer(sigset_t *old)
{
	sigset_t set;
	sigfillset(&set);
	for (int sig = 1; sig < NSIG; sig++)
		if (self_raised(sig))
			sigdelset(&set, sig);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

void rp__signals_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static void read_handlers(uint64_t *restart, uint64_t *other, bool fresh)
{
	uint64_t now = rp__coarse_ns();
	uint64_t at = atomic_load_explicit(&handlers_at, memory_order_acquire);
	if (!fresh && at && now - at < SCAN_TTL_NS) {
		*restart = atomic_load_explicit(&handlers_restart, memory_order_relaxed);
		*other = atomic_load_explicit(&handlers_other, memory_order_relaxed);
		return;
	}
	int err = errno;
	*restart = *other = 0;
	for (int sig = 1; sig < NSIG && sig <= 64; sig++) {
		struct sigaction sa;
		if (self_raised(sig) || sigaction(sig, NULL, &sa) < 0 ||
		    sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)
			continue;       /* nothing to run, or reserved by libc */
		*((sa.sa_flags & SA_RESTART) ? restart : other) |= 1ULL << (sig - 1);
	}
	errno = err;
	atomic_store_explicit(&handlers_restart, *restart, memory_order_relaxed);
	atomic_store_explicit(&handlers_other, *other, memory_order_relaxed);
	atomic_store_explicit(&handlers_at, now ? now : 1, memory_order_release);
}

static uint64_t mask_bits(const sigset_t *set)
{
	uint64_t bits = 0;
	for (int sig = 1; sig < NSIG && sig <= 64; sig++)
		if (sigismember(set, sig) == 1)
			bits |= 1ULL << (sig - 1);
	return bits;
}

/* A sleep's signal plan: the mask to poll under (NULL: the thread's own),
 * and a signalfd for the SA_RESTART signals it blocks, or -1.  `own` is
 * the thread's mask as the sleep found it: the signals that may end the
 * poll stay blocked while the sleeper looks at the ring between polls
 * (block_open()), and ppoll(2) unblocks them atomically, so that one
 * arriving meanwhile ends the next poll at once, as it would have ended a
 * blocked read(2); plan_done() gives the thread its mask back. */
struct plan {
	sigset_t mask;
	const sigset_t *maskp;
	int sfd;
	uint64_t open;          /* the signals that may end the poll */
	sigset_t own;
	bool blocked;
};

/* The thread's own mask plus the signals that may end the poll (not
 * those raised by a fault, which must never find themselves blocked). */
static void block_open(struct plan *p)
{
	sigset_t set = p->own;
	for (int sig = 1; sig < NSIG && sig <= 64; sig++)
		if ((p->open & (1ULL << (sig - 1))) && !self_raised(sig))
			sigaddset(&set, sig);
	p->blocked = pthread_sigmask(SIG_SETMASK, &set, NULL) == 0;
}

static void plan_sleep(struct plan *p, bool fresh)
{
	uint64_t restart, other;
	const sigset_t *cur = &p->own;

	p->maskp = NULL;
	p->sfd = -1;
	p->open = ~mask_bits(cur);
	read_handlers(&restart, &other, fresh);
	restart &= p->open;
	/* If they agree, the answer is theirs. */
	if (restart && (other & p->open)) {
		sigset_t watch;
		sigemptyset(&watch);
		p->mask = *cur;
		for (int sig = 1; sig <= 64; sig++)
			if (restart & (1ULL << (sig - 1))) {
				sigaddset(&watch, sig);
				sigaddset(&p->mask, sig);
			}
		/* No signalfd: EINTR after any handler. */
		p->sfd = signalfd(-1, &watch, SFD_NONBLOCK | SFD_CLOEXEC);
		if (p->sfd >= 0) {
			p->maskp = &p->mask;
			p->open &= ~restart;
		}
	}
	block_open(p);
}

/* A handler ended the poll with EINTR: would read(2) have restarted?  Only
 * the signals the poll left open can have run; if their handlers disagree
 * (changed since the plan), EINTR, which a program with a handler without
 * SA_RESTART is ready for.  No handler left: a one-shot one ran
 * (SA_RESETHAND, as System V's signal() installs, without SA_RESTART). */
static bool restart_after(const struct plan *p)
{
	uint64_t restart, other;
	read_handlers(&restart, &other, true);
	restart &= p->open;
	other &= p->open;
	return restart && !other;
}

/* One byte from a blocking pipe, without blocking: RWF_NOWAIT where the
 * kernel takes it (pipe(2)), else through a second, non-blocking open file
 * description of the same pipe (a FIFO opened by path refuses RWF_NOWAIT). */
static ssize_t read_nowait(int fd, char *c)
{
	struct iovec v = { c, 1 };
	ssize_t n = preadv2(fd, &v, 1, -1, RWF_NOWAIT);
	if (n >= 0 || errno != EOPNOTSUPP)
		return n;
	char path[40];
	rp__fmt_u32(stpcpy(path, "/proc/self/fd/"), (uint32_t)fd);
	int nb = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (nb < 0)
		return read(fd, c, 1);          /* no /proc: block */
	n = read(nb, c, 1);
	int err = errno;
	close(nb);
	errno = err;
	return n;
}

static int take(int fd, int nbfd, bool partial, struct plan *p,
		bool (*ready)(struct rp_end *, uint64_t), struct rp_end *e,
		uint64_t arg)
{
	int ms = rp__recheck_ms(0);
	char c;

	for (;;) {
		/* Read first: poll(2) never reports the EOF of a FIFO that had
		 * no writer since we opened it, where read(2) returns 0. */
		ssize_t k = nbfd >= 0 ? read(nbfd, &c, 1) : read_nowait(fd, &c);
		if (k > 0)
			return RP_WAIT_READY;
		if (k == 0)
			return RP_WAIT_GONE;
		if (errno == EAGAIN) {
			struct pollfd fds[2] = { { .fd = fd, .events = POLLIN },
						 { .fd = p->sfd, .events = POLLIN } };
			struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
			/* Asleep, a call may be cancelled (end.c). */
			bool cancel = rp__call_cancellable();
			if (cancel)
				rp__cancel_window(true);
			int n = ppoll(fds, p->sfd >= 0 ? 2 : 1, ms < 0 ? NULL : &ts,
				      p->maskp ? p->maskp : &p->own);
			if (cancel)
				rp__cancel_window(false);
			if (n == 0 && ready(e, arg))
				return RP_WAIT_READY;
			if (n == 0)
				ms = rp__recheck_ms(ms);
			if (n > 0 && (fds[1].revents & POLLIN)) {
				/* An SA_RESTART handler ran as we returned:
				 * go on, as read(2) would, with a fresh plan. */
				close(p->sfd);
				plan_sleep(p, true);
			}
			if (n >= 0)
				continue;       /* a token, EOF, or time to look */
		}
		if (errno != EINTR || partial)
			return -1;      /* EINTR: the caller returns its count */
		if (!restart_after(p)) {
			errno = EINTR;
			return -1;
		}
		if (p->sfd >= 0)
			close(p->sfd);
		plan_sleep(p, false);   /* restart_after() read them */
	}
}

/* The plan's signalfd goes, and the thread gets its mask back, on return
 * or cancellation (a signal that came while blocked is handled now). */
static void plan_done(void *arg)
{
	struct plan *p = arg;
	int err = errno;
	if (p->sfd >= 0) {
		close(p->sfd);
		p->sfd = -1;
	}
	if (p->blocked) {
		pthread_sigmask(SIG_SETMASK, &p->own, NULL);
		p->blocked = false;
	}
	errno = err;
}

int rp__take_token(int fd, int nbfd, bool partial,
		   bool (*ready)(struct rp_end *, uint64_t), struct rp_end *e,
		   uint64_t arg)
{
	struct plan p = { .maskp = NULL, .sfd = -1, .open = ~0ULL };
	if (pthread_sigmask(SIG_BLOCK, NULL, &p.own) != 0)
		sigemptyset(&p.own);
	/* A write that has moved bytes ends at any handler: no plan needed. */
	if (!partial)
		plan_sleep(&p, false);
	else
		block_open(&p);
	int r;
	pthread_cleanup_push(plan_done, &p);
	r = take(fd, nbfd, partial, &p, ready, e, arg);
	pthread_cleanup_pop(1);
	return r;
}
