/*
 * test_yield.c - the spin before a sleep yields the CPU in case the peer
 * shares it (src/wait.c, peer_may_share_cpu()): at every clock check when
 * the peer last waited on our CPU or has never said where it waits, but
 * only every 16 us when it last waited on another CPU.  Each side notes
 * where it waits in the ring (rd_cpu, wr_cpu).
 *
 * sched_yield() is defined here: the static library's calls come to it,
 * and it notes when each yield of the writer (this process) came.  The
 * cases that count yields are left out of the valgrind run, whose first
 * clock check comes after the spin is over.
 */
#include "harness.h"
#include "shmfile.h"
#include "procs.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define CHUNK   4096
#define CAP     65536
#define WAITS   40              /* writes that each wait for room */
#define MAX_YIELDS 8192
#define CLOSE_MS   0.012        /* within wait.c's YIELD_APART_NS (16 us),
				 * with room for delays */

static _Atomic int counting;
static _Atomic unsigned nyields;
static struct {
	double at;              /* the call, rp_now_ms() */
	long switches;          /* ours before it (getrusage) */
} yields[MAX_YIELDS];

static long switches(void)
{
	struct rusage ru;
	CHECK(getrusage(RUSAGE_THREAD, &ru) == 0);
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

int sched_yield(void)
{
	if (atomic_load_explicit(&counting, memory_order_relaxed)) {
		unsigned i = atomic_fetch_add(&nyields, 1);
		if (i < MAX_YIELDS) {
			yields[i].at = rp_now_ms();
			yields[i].switches = switches();
		}
	}
	return (int)syscall(SYS_sched_yield);
}

static void pin_to(int cpu)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
}

/* Our CPU, pinned there, and another one for the reader (or SKIP). */
static void pin_apart(int *mine, int *theirs)
{
	cpu_set_t all;
	CHECK(sched_getaffinity(0, sizeof all, &all) == 0);
	*mine = sched_getcpu();
	*theirs = -1;
	for (int c = 0; c < CPU_SETSIZE && *theirs < 0; c++)
		if (c != *mine && CPU_ISSET(c, &all))
			*theirs = c;
	if (*theirs < 0)
		SKIP("one CPU: no other for the reader");
	pin_to(*mine);
	/* The default spin (50 us), whatever the environment says: the
	 * counts need a few yields a wait. */
	CHECK(setenv("RINGPIPE_SPIN_NS", "50000", 1) == 0);
}

static void spin_ms(double ms)
{
	double end = rp_now_ms() + ms;
	while (rp_now_ms() < end)
		;
}

/* The reader's pace: a chunk every 200 us, so that each of our writes
 * past a full ring waits for room, spinning its 50 us first. */
static void read_slowly(rp_end *r)
{
	static unsigned char buf[CHUNK];
	ssize_t n;
	do {
		spin_ms(0.2);
		n = rp_read(r, buf, sizeof buf);
		CHECK(n >= 0);
	} while (n > 0);
}

/* Fill the ring, then write WAITS more chunks (each waits for room),
 * noting our yields meanwhile; then close. */
static void write_past_full(rp_end *w)
{
	static const unsigned char buf[CHUNK];
	for (int i = 0; i < CAP / CHUNK; i++)
		CHECK(rp_write(w, buf, CHUNK) == CHUNK);
	atomic_store(&counting, 1);
	for (int i = 0; i < WAITS; i++)
		CHECK(rp_write(w, buf, CHUNK) == CHUNK);
	atomic_store(&counting, 0);
	CHECK(rp_close(w) == 0);
}

/*
 * How many of the gaps between consecutive yields are under CLOSE_MS, of
 * *gaps that count: those in which we kept the CPU (no context switch of
 * ours from one call to the next), so that the gap is the spin's own and
 * not another process's time slice.  Too few to tell: SKIP, the CPU was
 * busy with others (the suite runs these cases alone).
 */
static unsigned close_gaps(unsigned *gaps)
{
	unsigned n = atomic_load(&nyields), close = 0;
	CHECK(n <= MAX_YIELDS);
	*gaps = 0;
	for (unsigned i = 1; i < n; i++) {
		if (yields[i].switches != yields[i - 1].switches)
			continue;
		++*gaps;
		close += yields[i].at - yields[i - 1].at < CLOSE_MS;
	}
	fprintf(stderr, "%u yields, %u of %u gaps on the CPU under %.0f us\n", n,
		close, *gaps, CLOSE_MS * 1000);
	if (*gaps < WAITS / 2)
		SKIP("our CPU was too busy with others to measure");
	return close;
}

/* A named pipe of CAP bytes with both ends open, the reader blocking. */
static void open_pair(struct hp *h, rp_end **r, rp_end **w)
{
	hp_make(h, CAP);
	*r = rp_open(h->path, O_RDONLY | O_NONBLOCK);
	*w = rp_open(h->path, O_WRONLY);
	CHECK(*r && *w && rp_set_nonblock(*r, 0) == 0);
}

/* We write into a pipe, pinned to *mine; a child reads it slowly on
 * *theirs: after a wait for a first byte on the empty ring if `waits`,
 * else once the ring is full (so that it never waits).  We keep only the
 * write end. */
static pid_t start_slow_pair(struct hp *h, rp_end **w, int *mine, int *theirs,
			     bool waits)
{
	rp_end *r;
	pin_apart(mine, theirs);
	open_pair(h, &r, w);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(*w) == 0);
		pin_to(*theirs);
		if (waits) {
			char x;
			CHECK(rp_read(r, &x, 1) == 1);
		} else {
			while (rp_nread(r) < CAP)
				sleep_ms(1);
		}
		read_slowly(r);
		_exit(0);
	}
	CHECK(rp_close(r) == 0);
	return pid;
}

/* A reader that waits notes its CPU in the ring (CPU + 1). */
TEST(a_waiting_reader_notes_its_cpu)
{
	rp_alarm(30);
	struct hp h;
	rp_end *r, *w;
	open_pair(&h, &r, &w);
	CHECK(peek32(h.shm, OFF(rd_cpu)) == 0);
	_Atomic uint32_t *cpu = shared_mem(sizeof *cpu);
	pid_t pid = fork_child();
	if (pid == 0) {
		int c = sched_getcpu();
		pin_to(c);
		atomic_store(cpu, (uint32_t)c + 1);
		char x;
		CHECK(rp_read(r, &x, 1) == 1);  /* waits: the ring is empty */
		_exit(0);
	}
	CHECK(rp_close(r) == 0);
	while (!atomic_load(cpu))
		sleep_ms(1);
	for (int i = 0; i < 10000 && !peek32(h.shm, OFF(rd_cpu)); i++)
		sleep_ms(1);            /* until it has spun a while */
	CHECK(peek32(h.shm, OFF(rd_cpu)) == atomic_load(cpu));
	CHECK(peek32(h.shm, OFF(wr_cpu)) == 0);
	CHECK(rp_write(w, "x", 1) == 1);
	rp_wait_ok(pid);
	CHECK(rp_close(w) == 0);
	hp_clean(&h);
}

/*
 * The reader waited on another CPU (it starts with a wait on the empty
 * ring), so our waits for room yield only every 16 us: no two yields
 * come closer, but for the odd delay between the clock read and the
 * call.  Yielding at every check (~1 us apart) would put them all closer.
 */
TEST(a_writer_yields_only_now_and_then_to_a_reader_on_another_cpu)
{
	rp_alarm(60);
	int mine, theirs;
	struct hp h;
	rp_end *w;
	pid_t pid = start_slow_pair(&h, &w, &mine, &theirs, true);
	for (int i = 0; i < 10000 && !peek32(h.shm, OFF(rd_cpu)); i++)
		sleep_ms(1);
	CHECK(peek32(h.shm, OFF(rd_cpu)) == (uint32_t)theirs + 1);
	CHECK(rp_write(w, "x", 1) == 1);
	write_past_full(w);
	rp_wait_ok(pid);
	unsigned gaps, close = close_gaps(&gaps);
	CHECK(close * 10 <= gaps);
	hp_clean(&h);
}

/*
 * A reader that never waited (it finds data at every read) has not said
 * where it runs: it may share our CPU, so our waits for room yield at
 * every clock check, most of them well within 16 us of the one before.
 */
TEST(a_writer_yields_at_once_to_a_reader_that_never_waited)
{
	rp_alarm(60);
	int mine, theirs;
	struct hp h;
	rp_end *w;
	pid_t pid = start_slow_pair(&h, &w, &mine, &theirs, false);
	write_past_full(w);
	rp_wait_ok(pid);
	CHECK(peek32(h.shm, OFF(wr_cpu)) == (uint32_t)mine + 1);
	unsigned gaps, close = close_gaps(&gaps);
	CHECK(close * 2 >= gaps);
	hp_clean(&h);
}
