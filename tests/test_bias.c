/*
 * test_bias.c - a lock biased to the thread that keeps taking it alone
 * (src/lock.c): that thread enters and leaves with plain stores, and any
 * other thread or process must revoke the bias before it gets in.  The
 * cases look at the lock word in the ring file to know the bias is there
 * when they revoke it, and check that writes stay whole across the
 * revocations, that an owner killed inside is taken over, and that a
 * process refused membarrier(2) still gets in and ends the biasing.
 */
#include "harness.h"
#include "shmfile.h"
#include "procs.h"
#include "records.h"

#include <linux/membarrier.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>

/* Whether this build and this process can bias at all: not under
 * ThreadSanitizer (which keeps the symmetric barriers), nor where the
 * kernel (or valgrind) refuses membarrier registration. */
static bool bias_expected(void)
{
#if defined(__SANITIZE_THREAD__)
	return false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
	return false;
#endif
#endif
	return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
}

static uint32_t my_tid(void)
{
	return (uint32_t)syscall(SYS_gettid);
}

/* A child that reads records from r until EOF (checking them); *total
 * (shared) gets how many.  The child closes its copy of the write end. */
static pid_t fork_checker(rp_end *r, rp_end *w, uint32_t nwriters, uint32_t **total)
{
	*total = shared_mem(sizeof **total);
	pid_t pid = fork_child();
	if (pid == 0) {
		rp_close(w);
		**total = check_recs(r, nwriters);
		_exit(0);
	}
	return pid;
}

/* The writers' lock is biased to this thread, where biasing is possible. */
static void check_wlock_biased_to_me(const struct hp *h)
{
	if (bias_expected())
		CHECK((peek32(h->shm, OFF(wlock.word)) & ~RP_LOCK_SLOT) ==
		      (RP_LOCK_BIASED | my_tid()));
}

/* Run on `cpu` alone. */
static void pin_to(int cpu)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
}

/* A CPU of `set` other than `cpu`, or -1. */
static int other_cpu(const cpu_set_t *set, int cpu)
{
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (c != cpu && CPU_ISSET(c, set))
			return c;
	return -1;
}

/* A named pipe with both ends open (the reader non-blocking at first). */
static void open_pair(struct hp *h, size_t cap, rp_end **r, rp_end **w)
{
	hp_make(h, cap);
	*r = rp_open(h->path, O_RDONLY | O_NONBLOCK);
	*w = rp_open(h->path, O_WRONLY);
	CHECK(*r && *w);
}

/* Write and read n small messages in this thread. */
static void take_both_n(rp_end *r, rp_end *w, int n)
{
	char m[64] = { 0 };
	for (int i = 0; i < n; i++) {
		CHECK(rp_write(w, m, sizeof m) == (ssize_t)sizeof m);
		CHECK(rp_read(r, m, sizeof m) == (ssize_t)sizeof m);
	}
}

/* 1000 of them: both locks are then biased to this thread, where biasing
 * is possible. */
static void take_both_alone(rp_end *r, rp_end *w)
{
	take_both_n(r, w, 1000);
}

/* Writes and reads by one thread alone bias both locks to it. */
TEST(locks_are_biased_to_a_thread_that_keeps_taking_them_alone)
{
	rp_alarm(30);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, 65536, &r, &w);
	take_both_alone(r, w);
	uint32_t want = bias_expected() ? (RP_LOCK_BIASED | my_tid()) : 0;
	uint32_t wl = peek32(h.shm, OFF(wlock.word));
	CHECK((wl & ~RP_LOCK_SLOT) == want);
	CHECK((peek32(h.shm, OFF(rlock.word)) & ~RP_LOCK_SLOT) == want);
	if (want) {
		CHECK(peek32(h.shm, OFF(wlock.owner[rp_lock_slot(wl)])) == my_tid());
		CHECK(peek32(h.shm, OFF(wlock.busy[rp_lock_slot(wl)])) == 0);
	}
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

/*
 * The parent writes until its lock is biased, then two more writers
 * (forked, so other threads of other processes) write at the same time:
 * the first of them must revoke the bias.  A reader checks that every
 * record arrives whole and in each writer's order.
 */
TEST(writers_revoking_a_bias_keep_every_write_whole)
{
	rp_alarm(60);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, 16384, &r, &w);
	CHECK(rp_set_nonblock(r, 0) == 0);
	uint32_t *total;
	pid_t reader = fork_checker(r, w, 3, &total);
	CHECK(rp_close(r) == 0);
	enum { N = 4000 };
	write_recs(w, 0, 0, 1000);
	check_wlock_biased_to_me(&h);
	pid_t kids[2];
	for (uint32_t k = 0; k < 2; k++) {
		kids[k] = fork_child();
		if (kids[k] == 0) {
			write_recs(w, k + 1, 0, N);
			_exit(0);
		}
	}
	write_recs(w, 0, 1000, N - 1000);
	rp_wait_ok(kids[0]);
	rp_wait_ok(kids[1]);
	/* The revocations were counted against the lock's rate. */
	if (bias_expected())
		CHECK(peek32(h.shm, OFF(wlock.rebias_at)) != 0);
	CHECK(rp_close(w) == 0);
	rp_wait_ok(reader);
	CHECK(*total == 3 * N);
	hp_clean(&h);
}

/*
 * Writers sharing one CPU take the lock by turns of a time slice, and
 * most revocations find the owner switched out on the revoker's CPU,
 * where no membarrier is made (lock.c, off_cpu_here()).  Every record
 * must still arrive whole and in each writer's order.
 */
TEST(stress_writers_sharing_a_cpu_revoke_each_other_and_keep_writes_whole)
{
	rp_alarm(240);
	cpu_set_t all;
	CHECK(sched_getaffinity(0, sizeof all, &all) == 0);
	int mine = sched_getcpu(), theirs = other_cpu(&all, mine);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, 65536, &r, &w);
	CHECK(rp_set_nonblock(r, 0) == 0);
	enum { WRITERS = 4 };
	/* Without a bias (ThreadSanitizer) there is nothing to revoke, and
	 * four writers on one CPU take turns slowly: fewer records. */
	const uint32_t N = bias_expected() ? 400000 : 20000;
	uint32_t *total;
	if (theirs >= 0)
		pin_to(theirs);                 /* the reader, apart */
	pid_t reader = fork_checker(r, w, WRITERS, &total);
	CHECK(rp_close(r) == 0);
	pin_to(mine);
	pid_t kids[WRITERS];
	for (uint32_t k = 0; k < WRITERS; k++) {
		kids[k] = fork_child();
		if (kids[k] == 0) {
			write_recs(w, k, 0, N);
			_exit(0);
		}
	}
	CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
	for (uint32_t k = 0; k < WRITERS; k++)
		rp_wait_ok(kids[k]);
	CHECK(rp_close(w) == 0);
	rp_wait_ok(reader);
	CHECK(*total == WRITERS * N);
	if (bias_expected())
		CHECK(peek32(h.shm, OFF(wlock.rebias_at)) != 0);  /* they did revoke */
	hp_clean(&h);
}

/* CLOCK_MONOTONIC as rp_lockword.rebias_at counts it (RP_BIAS_CLOCK_SHIFT). */
static uint32_t bias_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	return (uint32_t)(ns >> RP_BIAS_CLOCK_SHIFT);
}

#define US_UNITS(us) ((uint32_t)((us) * 1000ULL >> RP_BIAS_CLOCK_SHIFT))

/* Our lock, biased to us, revoked once by a child's write. */
static void revoke_once(const struct hp *h, rp_end *r, rp_end *w)
{
	take_both_alone(r, w);
	check_wlock_biased_to_me(h);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_write(w, "x", 1) == 1);
		_exit(0);
	}
	rp_wait_ok(pid);
	char c;
	CHECK(rp_read(r, &c, 1) == 1 && c == 'x');
}

/*
 * One revocation (a writer sharing the CPU took its turn) does not keep
 * the owner from its bias: as soon as it takes the lock alone again (300
 * times in a row, more than the 256 that bias a lock) the lock is biased
 * to it.  The revocation was counted: the limit is 0.5 ms past it.
 */
TEST(an_owner_gets_its_bias_back_after_one_revocation)
{
	rp_alarm(30);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, 65536, &r, &w);
	uint32_t before = bias_clock();
	revoke_once(&h, r, w);
	uint32_t after = bias_clock();
	if (bias_expected()) {
		/* Half a millisecond past the revocation, which was between. */
		uint32_t at = peek32(h.shm, OFF(wlock.rebias_at)) - US_UNITS(500);
		CHECK((int32_t)(at - before) >= 0 && (int32_t)(after - at) >= 0);
	}
	take_both_n(r, w, 300);
	check_wlock_biased_to_me(&h);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

/*
 * Revocations that came faster than their rate (two every millisecond
 * beyond a burst) leave the limit ahead of now: no thread gets a bias until
 * it has passed, however long it then takes the lock alone.  Written here
 * as a storm would leave it, half a second ahead.
 */
TEST(no_bias_while_revocations_run_ahead_of_their_rate)
{
	rp_alarm(30);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, 65536, &r, &w);
	revoke_once(&h, r, w);
	poke32(h.shm, OFF(wlock.rebias_at), bias_clock() + US_UNITS(500000));
	take_both_n(r, w, 300);
	CHECK((peek32(h.shm, OFF(wlock.word)) & RP_LOCK_BIASED) == 0);
	poke32(h.shm, OFF(wlock.rebias_at), bias_clock() - 1);
	take_both_n(r, w, 300);
	check_wlock_biased_to_me(&h);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

/*
 * A limit further ahead than any run of revocations can push it (another
 * process wrote it, or it is an hour old and wrapped) is garbage: it
 * delays no bias.
 */
TEST(a_limit_too_far_ahead_delays_no_bias)
{
	rp_alarm(30);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, 65536, &r, &w);
	revoke_once(&h, r, w);
	poke32(h.shm, OFF(wlock.rebias_at), bias_clock() + US_UNITS(5000000));
	take_both_n(r, w, 300);
	check_wlock_biased_to_me(&h);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

/*
 * A writer whose lock is biased to it holds it (a reservation) and is
 * killed: another writer takes the lock over once it finds the owner
 * gone, and the reserved bytes never appear.
 */
TEST(an_owner_killed_inside_its_biased_lock_is_taken_over)
{
	rp_alarm(30);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, 65536, &r, &w);
	_Atomic uint32_t *owner = shared_mem(sizeof *owner);
	pid_t pid = fork_child();
	if (pid == 0) {
		char m[64] = { 0 };
		for (int i = 0; i < 1000; i++)
			CHECK(rp_write(w, m, sizeof m) == (ssize_t)sizeof m);
		unsigned char *p = rp_write_reserve(w, 16);
		CHECK(p != NULL);
		memset(p, 'X', 16);
		atomic_store(owner, my_tid());
		for (;;)
			pause();
	}
	/* The 1000 records fit the ring, so we read nothing until the child
	 * is inside: an empty read of ours would arm the bell under the
	 * writers' lock and break the child's streak (which under valgrind
	 * kept it from ever reaching the bias). */
	while (!atomic_load(owner))
		sleep_ms(1);
	char m[64];
	for (int i = 0; i < 1000; i++)
		CHECK(rp_read(r, m, sizeof m) == (ssize_t)sizeof m);
	uint32_t want = bias_expected() ? RP_LOCK_BIASED | atomic_load(owner)
					: atomic_load(owner);
	CHECK((peek32(h.shm, OFF(wlock.word)) & ~RP_LOCK_SLOT) == want);
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, NULL, 0) == pid);
	CHECK(rp_write(w, "after", 5) == 5);
	char got[16] = { 0 };
	CHECK(rp_read(r, got, sizeof got) == 5);
	CHECK(memcmp(got, "after", 5) == 0);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

/*
 * A process that may not call membarrier(2) still revokes a bias (it
 * waits out the owner's store buffer instead), its writes arrive whole,
 * and from then on nobody biases this ring.  The revoker runs on another
 * CPU than the one we (the owner) sleep on, so it must fence: on the
 * same CPU it would need no membarrier (the case after this one), and
 * with one CPU only that is all it can do.
 */
TEST(a_revoker_refused_membarrier_gets_in_and_ends_biasing)
{
	rp_alarm(30);
	cpu_set_t all;
	CHECK(sched_getaffinity(0, sizeof all, &all) == 0);
	int mine = sched_getcpu(), theirs = other_cpu(&all, mine);
	pin_to(mine);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, 65536, &r, &w);
	CHECK(rp_set_nonblock(r, 0) == 0);
	take_both_alone(r, w);
	write_recs(w, 0, 0, 20);
	check_wlock_biased_to_me(&h);
	pid_t pid = fork_child();
	if (pid == 0) {
		if (theirs >= 0)
			pin_to(theirs);
		refuse_membarrier();
		write_recs(w, 1, 0, 20);
		_exit(0);
	}
	rp_wait_ok(pid);
	if (bias_expected() && theirs >= 0)
		CHECK(peek32(h.shm, OFF(heavy_publish)) == 1);
	write_recs(w, 0, 20, 20);
	uint32_t *total;
	pid_t reader = fork_checker(r, w, 2, &total);
	CHECK(rp_close(w) == 0);
	rp_wait_ok(reader);
	CHECK(*total == 60);
	CHECK(rp_close(r) == 0);
	hp_clean(&h);
	CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
	if (theirs < 0)
		SKIP("one CPU: the revoker never had to fence");
}

/*
 * A revoker that finds the owner outside its lock and switched out on
 * the revoker's own CPU needs no membarrier(2): the owner passed the
 * scheduler's full barrier when it left the CPU (lock.c, off_cpu_here).
 * This one may not call it: had it tried, the ring would be marked for
 * heavy publishes.  x86 only; elsewhere it must fence.  The look does
 * not count if the revoker is switched out while it reads /proc (a busy
 * machine), so it has three tries, each on a fresh ring.
 */
TEST(a_revoker_on_the_cpu_its_owner_left_needs_no_membarrier)
{
	rp_alarm(30);
	cpu_set_t all;
	CHECK(sched_getaffinity(0, sizeof all, &all) == 0);
	pin_to(sched_getcpu());                 /* and the child with us */
	bool spared = false;
	for (int attempt = 0; attempt < 3 && !spared; attempt++) {
		struct hp h;
		rp_end *r, *w;
		open_pair(&h, 65536, &r, &w);
		take_both_alone(r, w);
		check_wlock_biased_to_me(&h);
		pid_t pid = fork_child();
		if (pid == 0) {
			refuse_membarrier();
			CHECK(rp_write(w, "later", 5) == 5);
			_exit(0);
		}
		rp_wait_ok(pid);                /* we sleep off the CPU */
		spared = peek32(h.shm, OFF(heavy_publish)) == 0;
		char got[5];
		read_exact(r, got, sizeof got);
		CHECK(memcmp(got, "later", 5) == 0);
		CHECK(rp_close(w) == 0 && rp_close(r) == 0);
		hp_clean(&h);
	}
#if defined(__x86_64__) || defined(__i386__)
	CHECK(spared || !bias_expected());
#else
	CHECK(!spared || !bias_expected());
#endif
	CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
}

/*
 * The CPU of a thread that does not map the ring says nothing about the
 * owner (a TID from another PID namespace, or a hostile peer's): a lock
 * biased to such a thread, idle on our CPU, is revoked with a membarrier
 * all the same.  This revoker may not call it, so the ring ends up marked
 * for heavy publishes; had it trusted the stranger's CPU, it would not.
 */
TEST(a_revoker_trusts_no_cpu_of_a_thread_that_does_not_map_the_ring)
{
	rp_alarm(30);
	cpu_set_t all;
	CHECK(sched_getaffinity(0, sizeof all, &all) == 0);
	pin_to(sched_getcpu());
	pid_t stranger = fork_child();          /* before the pipe: no mapping */
	if (stranger == 0) {
		for (;;)
			pause();
	}
	wait_sleeping(stranger);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, 65536, &r, &w);
	poke32(h.shm, OFF(wlock.owner[0]), (uint32_t)stranger);
	poke32(h.shm, OFF(wlock.busy[0]), 0);
	poke32(h.shm, OFF(wlock.word), RP_LOCK_BIASED | (uint32_t)stranger);
	pid_t pid = fork_child();
	if (pid == 0) {
		refuse_membarrier();
		CHECK(rp_write(w, "later", 5) == 5);
		_exit(0);
	}
	rp_wait_ok(pid);
	CHECK(peek32(h.shm, OFF(heavy_publish)) == 1);
	char got[5];
	read_exact(r, got, sizeof got);
	CHECK(memcmp(got, "later", 5) == 0);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
	kill(stranger, SIGKILL);
	CHECK(waitpid(stranger, NULL, 0) == stranger);
	CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
}

/* After the refusal above, a writer that keeps the lock alone is no longer
 * given the bias. */
TEST(no_bias_once_a_peer_was_refused_membarrier)
{
	rp_alarm(30);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, 65536, &r, &w);
	poke32(h.shm, OFF(heavy_publish), 1);
	take_both_alone(r, w);
	CHECK(peek32(h.shm, OFF(wlock.word)) == 0);
	CHECK(peek32(h.shm, OFF(rlock.word)) == 0);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

/*
 * A pair whose writers' lock is biased to us and held (a reservation of
 * "owner"), and a child that writes "later" and so revokes the bias; it
 * may not call membarrier(2) if `refuse`.  Returns once the child has
 * begun.
 */
static pid_t revoke_while_inside(struct hp *h, rp_end **rp, rp_end **wp, bool refuse)
{
	open_pair(h, 65536, rp, wp);
	rp_end *r = *rp, *w = *wp;
	take_both_alone(r, w);
	check_wlock_biased_to_me(h);
	unsigned char *p = rp_write_reserve(w, 5);
	CHECK(p != NULL);
	memcpy(p, "owner", 5);
	_Atomic int *started = shared_mem(sizeof *started);
	pid_t pid = fork_child();
	if (pid == 0) {
		if (refuse)
			refuse_membarrier();
		atomic_store(started, 1);
		CHECK(rp_write(w, "later", 5) == 5);
		_exit(0);
	}
	while (!atomic_load(started))
		sleep_ms(1);
	munmap((void *)started, sizeof *started);
	return pid;
}

/* We commit the reservation: "owner", then the child's "later". */
static void commit_owner_first(rp_end *r, rp_end *w, pid_t pid)
{
	CHECK(rp_write_commit(w, 5) == 0);
	rp_wait_ok(pid);
	char got[10];
	read_exact(r, got, sizeof got);
	CHECK(memcmp(got, "ownerlater", 10) == 0);
}

/*
 * A revoker that finds the owner inside waits for it to come out (woken
 * by the owner's exit), and only then writes: the owner's reservation,
 * committed 200 ms later, comes first.
 */
TEST(a_revoker_waits_for_the_owner_to_leave)
{
	rp_alarm(30);
	struct hp h;
	rp_end *r, *w;
	pid_t pid = revoke_while_inside(&h, &r, &w, false);
	sleep_ms(200);
	CHECK(rp_nread(r) == 0);        /* the revoker is still waiting */
	commit_owner_first(r, w, pid);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

/*
 * The owner, leaving, sees the revoker's change to the lock word and
 * says so in its busy flag: a revoker that waited for that needs no
 * membarrier(2).  This one may not call it: had it tried, the ring
 * would be marked for heavy publishes (and no more biasing).
 */
TEST(a_revoker_the_owner_acknowledges_needs_no_membarrier)
{
	rp_alarm(30);
	struct hp h;
	rp_end *r, *w;
	pid_t pid = revoke_while_inside(&h, &r, &w, true);
	wait_sleeping(pid);             /* waiting for us to leave */
	commit_owner_first(r, w, pid);
	CHECK(peek32(h.shm, OFF(heavy_publish)) == 0);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}

/* The first of the case's sleepers to get in notes its TID and the lock
 * word it finds inside. */
struct woken { _Atomic uint32_t in; _Atomic uint32_t word; };

static pid_t fork_idle_writer(const struct hp *h, rp_end *w, struct woken *s)
{
	pid_t pid = fork_child();
	if (pid == 0) {
		struct sched_param none = { 0 };
		CHECK(sched_setscheduler(0, SCHED_IDLE, &none) == 0);
		unsigned char *p = rp_write_reserve(w, 1);
		CHECK(p != NULL);
		*p = 'c';
		uint32_t word = peek32(h->shm, OFF(wlock.word)), none_yet = 0;
		if (atomic_compare_exchange_strong(&s->in, &none_yet, my_tid()))
			atomic_store(&s->word, word);
		CHECK(rp_write_commit(w, 1) == 0);
		_exit(0);
	}
	return pid;
}

/*
 * An unlock that wakes a writer asleep on the lock clears the waiters bit
 * and wakes only that one.  If the lock is biased by the time the woken
 * writer runs, it revokes the bias and must take the word with the
 * waiters bit, or its own unlock leaves the other sleeper asleep (until
 * its recheck, 20 ms later) with the lock free.  The two sleepers run
 * SCHED_IDLE on our CPU, so the woken one waits while we take the lock
 * alone until it is biased; when it ran before that, we try again.
 */
TEST(a_woken_writer_that_revokes_a_bias_keeps_the_waiters_bit)
{
	rp_alarm(60);
	cpu_set_t one, all;
	CHECK(sched_getaffinity(0, sizeof all, &all) == 0);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
	bool scene = false;
	for (int attempt = 0; attempt < 20 && !scene; attempt++) {
		struct hp h;
		rp_end *r, *w;
		open_pair(&h, 65536, &r, &w);
		struct woken *s = shared_mem(sizeof *s);
		unsigned char *p = rp_write_reserve(w, 1);
		CHECK(p != NULL);
		*p = 'p';
		pid_t kid[2] = { fork_idle_writer(&h, w, s), fork_idle_writer(&h, w, s) };
		wait_sleeping(kid[0]);
		wait_sleeping(kid[1]);
		CHECK(peek32(h.shm, OFF(wlock.word)) == (my_tid() | RP_LOCK_WAITERS));
		CHECK(rp_write_commit(w, 1) == 0);      /* wakes one of them */
		take_both_n(r, w, 300);                 /* alone, if it has not run */
		uint32_t wl = peek32(h.shm, OFF(wlock.word));
		scene = !atomic_load(&s->in) && bias_expected() &&
			(wl & ~RP_LOCK_SLOT) == (RP_LOCK_BIASED | my_tid());
		rp_wait_ok(kid[0]);                     /* we sleep: they run */
		rp_wait_ok(kid[1]);
		if (scene)
			CHECK(atomic_load(&s->word) == (atomic_load(&s->in) | RP_LOCK_WAITERS));
		CHECK(rp_nread(r) == 3);                /* ours, and one each */
		CHECK(rp_close(w) == 0 && rp_close(r) == 0);
		hp_clean(&h);
		munmap(s, sizeof *s);
		if (!bias_expected())
			break;
	}
	CHECK(scene || !bias_expected());
	CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
}

/* Two writers that take turns, never meeting inside, are not "alone":
 * neither gets the bias (each revocation would cost a membarrier). */
TEST(writers_taking_turns_never_bias)
{
	rp_alarm(30);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, 65536, &r, &w);
	int ping[2], pong[2];
	CHECK(pipe(ping) == 0 && pipe(pong) == 0);
	enum { TURNS = 600 };
	pid_t pid = fork_child();
	if (pid == 0) {
		char c;
		for (int i = 0; i < TURNS; i++) {
			CHECK(read(ping[0], &c, 1) == 1);
			CHECK(rp_write(w, "c", 1) == 1);
			CHECK(write(pong[1], "x", 1) == 1);
		}
		_exit(0);
	}
	char c;
	int biased = 0;
	for (int i = 0; i < TURNS; i++) {
		CHECK(rp_write(w, "p", 1) == 1);
		biased += (peek32(h.shm, OFF(wlock.word)) & RP_LOCK_BIASED) != 0;
		CHECK(write(ping[1], "x", 1) == 1);
		CHECK(read(pong[0], &c, 1) == 1);
	}
	rp_wait_ok(pid);
	CHECK(rp_nread(r) == 2 * TURNS);
	CHECK(biased == 0);
	close(ping[0]); close(ping[1]); close(pong[0]); close(pong[1]);
	CHECK(rp_close(w) == 0 && rp_close(r) == 0);
	hp_clean(&h);
}
