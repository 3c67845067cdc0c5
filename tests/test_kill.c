/*
 * test_kill.c - peers that die by SIGKILL.
 *
 * A process killed with kill -9 runs no atexit handler and no destructor, yet
 * its ends must count as closed at once (EOF, EPIPE, before it is reaped),
 * and any lock or reservation it held in the shared ring must be recovered so
 * that the surviving readers and writers carry on without deadlock and
 * without ever seeing a torn record.
 */
#include "harness.h"
#include <ringpipe.h>
#include "procs.h"
#include "janitor.h"
#include "layout.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#define UNUSED __attribute__((unused))

/* ---------------------------------------------------------------- helpers */

static UNUSED int is_zombie(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return 0;
	return si.si_pid == pid;
}

static UNUSED void wait_zombie(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0);
	CHECK(si.si_pid == pid);
}

/* Reap a child that must have died of SIGKILL. */
static UNUSED void wait_killed(pid_t pid)
{
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
		fprintf(stderr, "child %d: status 0x%x, want SIGKILL\n", (int)pid, st);
		CHECK(0);
	}
}

static UNUSED void wait_flag(_Atomic int *flag)
{
	while (!atomic_load(flag))
		sleep_ms(1);
}

static UNUSED uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* The byte at stream offset i of the continuous-writer pattern. */
static inline uint8_t pat(uint64_t i)
{
	uint64_t x = (i >> 3) * 0x9E3779B97F4A7C15ULL;
	return (uint8_t)((x >> 56) ^ (x >> (8 * (i & 7))) ^ i);
}

/* Write the pattern stream forever in chunks of 1..16384 bytes. */
static UNUSED void __attribute__((noreturn)) stream_writer(rp_end *w, uint64_t seed)
{
	static unsigned char buf[16384];
	uint64_t off = 0, s = seed;
	for (;;) {
		size_t n = 1 + rng_next(&s) % sizeof buf;
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(off + i);
		size_t done = 0;
		while (done < n) {
			ssize_t r = rp_write(w, buf + done, n - done);
			CHECK(r > 0);
			done += (size_t)r;
		}
		off += n;
	}
}

static UNUSED void check_pattern(const unsigned char *b, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i] != pat(off + i)) {
			fprintf(stderr, "stream corrupt at offset %llu\n",
				(unsigned long long)(off + i));
			CHECK(0);
		}
	}
}

/* --- self-describing records (<= RP_PIPE_BUF, written in one rp_write) --- */

#define REC_MAGIC 0x31434552u /* "REC1" */
struct rec_hdr {
	uint32_t magic;
	uint16_t writer;
	uint16_t len; /* whole record, header included */
	uint32_t seq;
	uint32_t pad;
	uint64_t sum; /* hash of the record with sum = 0 */
};
_Static_assert(sizeof(struct rec_hdr) == 24, "record header");

static uint64_t hash64(const void *p, size_t n, uint64_t h)
{
	const unsigned char *b = p;
	h ^= 0xcbf29ce484222325ULL;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
		b += 8;
		n -= 8;
	}
	while (n--)
		h = (h ^ *b++) * 0x100000001b3ULL;
	return h ^ (h >> 32);
}

static UNUSED size_t rec_len(uint64_t *s)
{
	uint64_t r = rng_next(s);
	switch (r % 8) {
	case 0: return RP_PIPE_BUF;
	case 1: case 2: return 1024 + (size_t)(r >> 8) % (RP_PIPE_BUF - 1024);
	case 3: case 4: return 128 + (size_t)(r >> 8) % 896;
	default: return sizeof(struct rec_hdr) + (size_t)(r >> 8) % 104;
	}
}

static UNUSED void make_record(unsigned char *buf, unsigned writer, uint32_t seq, size_t len)
{
	struct rec_hdr h = { REC_MAGIC, (uint16_t)writer, (uint16_t)len, seq, 0, 0 };
	memcpy(buf, &h, sizeof h);
	uint64_t s = ((uint64_t)writer << 32) ^ seq;
	for (size_t i = sizeof h; i < len; i += 8) {
		uint64_t w = rng_next(&s);
		memcpy(buf + i, &w, len - i < 8 ? len - i : 8);
	}
	h.sum = hash64(buf, len, 0);
	memcpy(buf, &h, sizeof h);
}

/* Verify one record; returns its header.  Any mismatch fails the process. */
static UNUSED struct rec_hdr check_record(unsigned char *buf, size_t avail, unsigned maxwriter)
{
	struct rec_hdr h;
	CHECK(avail >= sizeof h);
	memcpy(&h, buf, sizeof h);
	if (h.magic != REC_MAGIC || h.writer >= maxwriter || h.len < sizeof h ||
	    h.len > RP_PIPE_BUF) {
		fprintf(stderr, "torn record: magic %x writer %u len %u\n",
			h.magic, h.writer, h.len);
		CHECK(0);
	}
	return h;
}

static UNUSED void check_record_sum(unsigned char *buf, struct rec_hdr h)
{
	uint64_t sum = h.sum;
	struct rec_hdr z = h;
	z.sum = 0;
	memcpy(buf, &z, sizeof z);
	uint64_t got = hash64(buf, h.len, 0);
	if (got != sum) {
		fprintf(stderr, "bad checksum: writer %u seq %u len %u\n", h.writer, h.seq, h.len);
		CHECK(0);
	}
}

/*
 * Read records until EOF, checking each is whole and that every writer's
 * sequence numbers arrive in order without gaps.  seen[w] ends as the count
 * of records of writer w; *progress counts records as they arrive.
 */
static UNUSED void record_reader(rp_end *r, unsigned maxwriter, uint32_t *seen,
				 _Atomic uint64_t *progress)
{
	size_t cap = 65536 + RP_PIPE_BUF;
	unsigned char *buf = malloc(cap);
	CHECK(buf != NULL);
	size_t have = 0;
	for (;;) {
		ssize_t n = rp_read(r, buf + have, cap - have);
		CHECK(n >= 0);
		if (n == 0)
			break;
		have += (size_t)n;
		size_t pos = 0;
		while (have - pos >= sizeof(struct rec_hdr)) {
			struct rec_hdr h = check_record(buf + pos, have - pos, maxwriter);
			if (have - pos < h.len)
				break;
			check_record_sum(buf + pos, h);
			if (h.seq != seen[h.writer]) {
				fprintf(stderr, "writer %u: seq %u, want %u\n", h.writer, h.seq,
					seen[h.writer]);
				CHECK(0);
			}
			seen[h.writer]++;
			if (progress)
				atomic_fetch_add(progress, 1);
			pos += h.len;
		}
		memmove(buf, buf + pos, have - pos);
		have -= pos;
	}
	if (have != 0) {
		fprintf(stderr, "%zu bytes of a torn record left at EOF\n", have);
		CHECK(0);
	}
	free(buf);
}

/* --- locating the holder of a ring lock (named pipes only) --- */


static UNUSED struct rp_shared *map_header(const char *path)
{
	struct stat st;
	CHECK(stat(path, &st) == 0);
	char shm[256];
	snprintf(shm, sizeof shm, "/dev/shm/ringpipe.%llx.%llu",
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	int fd = open(shm, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	void *p = mmap(NULL, RP_HDR_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	close(fd);
	return p;
}

/* SIGSTOP `pid` and wait until it is stopped. */
static void stop_child(pid_t pid)
{
	CHECK(kill(pid, SIGSTOP) == 0);
	int st;
	CHECK(waitpid(pid, &st, WUNTRACED) == pid);
	CHECK(WIFSTOPPED(st));
}

/*
 * Catch one of `cand` holding a lock, for up to `ms`: watch the lock word,
 * and when it names a candidate SIGSTOP that process; also SIGSTOP the
 * candidates in turn every ~200 us (a holder may hold only briefly).  A
 * stopped candidate that the word still names holds the lock for as long as
 * it stays stopped.  Returns its pid (stopped, holding the lock) or -1.
 */
static UNUSED pid_t stop_lock_holder(const struct rp_lockword *lockw, const pid_t *cand, int n,
				     double ms)
{
	double now = rp_now_ms(), end = now + ms, next_sample = now;
	unsigned rr = 0;
	while ((now = rp_now_ms()) < end) {
		pid_t tid = (pid_t)rp_lock_holder(lockw), v = -1;
		for (int i = 0; i < n && tid; i++)
			if (cand[i] == tid)
				v = tid;
		if (v < 0 && now >= next_sample) {
			v = cand[rr++ % (unsigned)n];
			next_sample = now + 0.2;
		}
		if (v < 0)
			continue;
		stop_child(v);
		if ((pid_t)rp_lock_holder(lockw) == v)
			return v;
		CHECK(kill(v, SIGCONT) == 0);
	}
	return -1;
}


static UNUSED char *make_tmpdir(char *buf, size_t n)
{
	snprintf(buf, n, "/tmp/rp_kill_XXXXXX");
	CHECK(mkdtemp(buf) != NULL);
	janitor(buf);
	return buf;
}

/* A named pipe of `cap` bytes in a fresh directory, both ends open (the
 * reader blocking), and its header mapped read-only. */
struct named {
	char dir[64], path[128];
	struct rp_shared *hdr;
	rp_end *rd, *wr;
};

static UNUSED void open_named(struct named *n, size_t cap)
{
	make_tmpdir(n->dir, sizeof n->dir);
	snprintf(n->path, sizeof n->path, "%s/p", n->dir);
	CHECK(rp_mkfifo(n->path, 0600, cap) == 0);
	n->hdr = map_header(n->path);
	n->rd = rp_open(n->path, O_RDONLY | O_NONBLOCK);
	CHECK(n->rd != NULL);
	n->wr = rp_open(n->path, O_WRONLY);
	CHECK(n->wr != NULL);
	CHECK(rp_set_nonblock(n->rd, 0) == 0);
}

/* ------------------------------------------------------------------ cases */

/*
 * A writer child writes continuously; the reader (parent) kills it -9
 * mid-transfer.  The reader drains what was written (an intact prefix of
 * the stream) and sees EOF within 100 ms of the kill, before reaping.
 */
TEST(kill_writer_mid_transfer_reader_drains_then_eof)
{
	rp_alarm(20);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		stream_writer(e[1], 1);
	}
	CHECK(rp_close(e[1]) == 0);
	static unsigned char buf[20000];
	uint64_t off = 0, s = 7;
	while (off < (8u << 20)) {
		ssize_t r = rp_read(e[0], buf, 1 + rng_next(&s) % sizeof buf);
		CHECK(r > 0);
		check_pattern(buf, (size_t)r, off);
		off += (uint64_t)r;
	}
	double t_kill = rp_now_ms();
	CHECK(kill(pid, SIGKILL) == 0);
	ssize_t r;
	while ((r = rp_read(e[0], buf, sizeof buf)) > 0) {
		check_pattern(buf, (size_t)r, off);
		off += (uint64_t)r;
	}
	double t_eof = rp_now_ms();
	CHECK(r == 0);
	CHECK(t_eof - t_kill < rp_ms(100));
	/* EOF came without any waitpid: the child is dying or a zombie, and
	 * becomes one without being reaped. */
	wait_zombie(pid);
	CHECK(rp_read(e[0], buf, sizeof buf) == 0);
	wait_killed(pid);
	CHECK(rp_close(e[0]) == 0);
}

/*
 * A writer blocked on a full ring is killed -9.  The reader (SIGPIPE at its
 * default action: a reader must never receive SIGPIPE) drains every byte
 * that was written and then sees EOF within 100 ms of the kill.
 */
TEST(kill_blocked_writer_reader_drains_then_eof)
{
	rp_alarm(20);
	signal(SIGPIPE, SIG_DFL);
	struct { _Atomic int ready; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 4096) == 0);
	size_t cap = rp_capacity(e[0]);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		char *buf = malloc(cap + 1);
		CHECK(buf != NULL);
		for (size_t i = 0; i <= cap; i++)
			buf[i] = (char)pat(i);
		CHECK(rp_write(e[1], buf, cap) == (ssize_t)cap);
		atomic_store(&sh->ready, 1);
		rp_write(e[1], buf + cap, 1); /* blocks: the ring is full */
		_exit(3);
	}
	CHECK(rp_close(e[1]) == 0);
	wait_flag(&sh->ready);
	while (rp_nread(e[0]) != (ssize_t)cap)
		sleep_ms(1);
	sleep_ms(100); /* let the writer go to sleep */
	double t_kill = rp_now_ms();
	CHECK(kill(pid, SIGKILL) == 0);
	wait_zombie(pid); /* fully dead (not reaped) before the reader drains */
	unsigned char buf[512];
	uint64_t off = 0;
	ssize_t r;
	while ((r = rp_read(e[0], buf, sizeof buf)) > 0) {
		check_pattern(buf, (size_t)r, off);
		off += (uint64_t)r;
	}
	double t_eof = rp_now_ms();
	CHECK(r == 0);
	CHECK(off == cap);
	CHECK(t_eof - t_kill < rp_ms(100));
	wait_killed(pid);
	CHECK(rp_close(e[0]) == 0);
}

/* A writer that is idle (its reader blocked on an empty pipe) is killed by a
 * third process: the blocked reader wakes with EOF within 100 ms. */
TEST(kill_idle_writer_wakes_blocked_reader)
{
	rp_alarm(20);
	struct { _Atomic int ready; double t_kill; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t writer = fork_child();
	if (writer == 0) {
		CHECK(rp_close(e[0]) == 0);
		CHECK(rp_write(e[1], "hello", 5) == 5);
		atomic_store(&sh->ready, 1);
		for (;;)
			pause();
	}
	CHECK(rp_close(e[1]) == 0);
	pid_t killer = fork_child();
	if (killer == 0) {
		CHECK(rp_close(e[0]) == 0);
		wait_flag(&sh->ready);
		sleep_ms(300);
		sh->t_kill = rp_now_ms();
		CHECK(kill(writer, SIGKILL) == 0);
		_exit(0);
	}
	char buf[16];
	CHECK(rp_read(e[0], buf, sizeof buf) == 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	ssize_t r = rp_read(e[0], buf, sizeof buf);
	double t1 = rp_now_ms();
	CHECK(r == 0);
	CHECK(sh->t_kill > 0);
	CHECK(t1 - sh->t_kill < rp_ms(100));
	wait_zombie(writer);
	rp_wait_ok(killer);
	wait_killed(writer);
	CHECK(rp_close(e[0]) == 0);
}

/*
 * A reader child reads continuously while a writer child writes a large
 * amount (1 MiB per call, without end).  The parent kills the reader -9:
 * the writer (SIGPIPE ignored) gets EPIPE within 100 ms, before the reader
 * is reaped.
 */
TEST(kill_reader_mid_transfer_writer_gets_epipe)
{
	rp_alarm(20);
	struct {
		_Atomic uint64_t got;
		double t_err;
		int err;
		uint64_t total;
	} *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t reader = fork_child();
	if (reader == 0) {
		CHECK(rp_close(e[1]) == 0);
		static unsigned char buf[65536];
		for (;;) {
			ssize_t r = rp_read(e[0], buf, sizeof buf);
			CHECK(r > 0);
			atomic_fetch_add(&sh->got, (uint64_t)r);
		}
	}
	pid_t writer = fork_child();
	if (writer == 0) {
		signal(SIGPIPE, SIG_IGN);
		CHECK(rp_close(e[0]) == 0);
		size_t n = 1u << 20;
		unsigned char *buf = malloc(n);
		CHECK(buf != NULL);
		memset(buf, 0x5a, n);
		for (;;) {
			ssize_t r = rp_write(e[1], buf, n);
			if (r < 0) {
				sh->err = errno;
				sh->t_err = rp_now_ms();
				break;
			}
			CHECK(r > 0);
			sh->total += (uint64_t)r;
		}
		free(buf);
		_exit(0);
	}
	CHECK(rp_close(e[0]) == 0);
	CHECK(rp_close(e[1]) == 0);
	while (atomic_load(&sh->got) < (16u << 20))
		sleep_ms(1);
	double t_kill = rp_now_ms();
	CHECK(kill(reader, SIGKILL) == 0);
	rp_wait_ok(writer);
	CHECK(sh->err == EPIPE);
	CHECK(sh->t_err >= t_kill);
	CHECK(sh->t_err - t_kill < rp_ms(100));
	wait_zombie(reader); /* EPIPE came before the reader was reaped */
	wait_killed(reader);
}

/* The reader is idle; the writer (parent) blocks on a full ring; a third
 * process kills the reader -9: the write fails with EPIPE within 100 ms. */
TEST(kill_idle_reader_wakes_blocked_writer_with_epipe)
{
	rp_alarm(20);
	signal(SIGPIPE, SIG_IGN);
	struct { _Atomic int ready; _Atomic int full; double t_kill; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe2(e, 0, 4096) == 0);
	size_t cap = rp_capacity(e[1]);
	pid_t reader = fork_child();
	if (reader == 0) {
		CHECK(rp_close(e[1]) == 0);
		atomic_store(&sh->ready, 1);
		for (;;)
			pause();
	}
	CHECK(rp_close(e[0]) == 0);
	pid_t killer = fork_child();
	if (killer == 0) {
		CHECK(rp_close(e[1]) == 0);
		wait_flag(&sh->full);
		sleep_ms(300);
		sh->t_kill = rp_now_ms();
		CHECK(kill(reader, SIGKILL) == 0);
		_exit(0);
	}
	wait_flag(&sh->ready);
	char *buf = malloc(cap);
	CHECK(buf != NULL);
	memset(buf, 'w', cap);
	CHECK(rp_write(e[1], buf, cap) == (ssize_t)cap);
	atomic_store(&sh->full, 1);
	CHECK_ERR(rp_write(e[1], buf, 1), EPIPE);
	double t1 = rp_now_ms();
	CHECK(sh->t_kill > 0);
	CHECK(t1 - sh->t_kill < rp_ms(100));
	wait_zombie(reader);
	rp_wait_ok(killer);
	wait_killed(reader);
	free(buf);
	CHECK(rp_close(e[1]) == 0);
}

/* Killing one of two writers changes nothing the reader can see: no EOF
 * while the other is alive; EOF once it is killed too. */
TEST(kill_one_of_two_writers_no_eof_until_both_dead)
{
	rp_alarm(20);
	struct { _Atomic int ready[2]; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t w[2];
	for (int k = 0; k < 2; k++) {
		w[k] = fork_child();
		if (w[k] == 0) {
			CHECK(rp_close(e[0]) == 0);
			CHECK(rp_write(e[1], k ? "b" : "a", 1) == 1);
			atomic_store(&sh->ready[k], 1);
			for (;;)
				pause();
		}
	}
	CHECK(rp_close(e[1]) == 0);
	wait_flag(&sh->ready[0]);
	wait_flag(&sh->ready[1]);
	CHECK(kill(w[0], SIGKILL) == 0);
	wait_zombie(w[0]);
	char buf[8];
	CHECK(rp_read(e[0], buf, sizeof buf) == 2);
	CHECK(rp_set_nonblock(e[0], 1) == 0);
	CHECK_ERR(rp_read(e[0], buf, sizeof buf), EAGAIN);
	CHECK(kill(w[1], SIGKILL) == 0);
	wait_zombie(w[1]);
	CHECK(rp_read(e[0], buf, sizeof buf) == 0);
	wait_killed(w[0]);
	wait_killed(w[1]);
	CHECK(rp_close(e[0]) == 0);
}

/* A writer killed between rp_write_reserve and rp_write_commit publishes
 * nothing of the reserved span; the reader sees EOF within 100 ms. */
TEST(kill_writer_inside_reserve_publishes_nothing)
{
	rp_alarm(20);
	struct { _Atomic int ready; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		CHECK(rp_write(e[1], "head", 4) == 4);
		char *p = rp_write_reserve(e[1], 1000);
		CHECK(p != NULL);
		memset(p, 'X', 1000);
		atomic_store(&sh->ready, 1);
		for (;;)
			pause();
	}
	CHECK(rp_close(e[1]) == 0);
	wait_flag(&sh->ready);
	char buf[2048];
	CHECK(rp_read(e[0], buf, sizeof buf) == 4);
	CHECK(memcmp(buf, "head", 4) == 0);
	CHECK(rp_set_nonblock(e[0], 1) == 0);
	CHECK_ERR(rp_read(e[0], buf, sizeof buf), EAGAIN); /* not committed yet */
	CHECK(rp_set_nonblock(e[0], 0) == 0);
	double t_kill = rp_now_ms();
	CHECK(kill(pid, SIGKILL) == 0);
	ssize_t r = rp_read(e[0], buf, sizeof buf);
	double t1 = rp_now_ms();
	CHECK(r == 0);
	CHECK(t1 - t_kill < rp_ms(100));
	wait_zombie(pid);
	wait_killed(pid);
	CHECK(rp_close(e[0]) == 0);
}

/* A writer killed while it holds a reservation does not block the other
 * writers: their data arrives, the dead writer's uncommitted bytes never do. */
TEST(kill_writer_inside_reserve_unblocks_other_writer)
{
	rp_alarm(20);
	struct { _Atomic int ready; _Atomic int started; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t a = fork_child();
	if (a == 0) {
		CHECK(rp_close(e[0]) == 0);
		char *p = rp_write_reserve(e[1], 3000);
		CHECK(p != NULL);
		memset(p, 'X', 3000);
		atomic_store(&sh->ready, 1);
		for (;;)
			pause();
	}
	wait_flag(&sh->ready);
	pid_t b = fork_child();
	if (b == 0) {
		CHECK(rp_close(e[0]) == 0);
		char msg[100];
		memset(msg, 'B', sizeof msg);
		atomic_store(&sh->started, 1);
		CHECK(rp_write(e[1], msg, sizeof msg) == (ssize_t)sizeof msg);
		_exit(0);
	}
	CHECK(rp_close(e[1]) == 0);
	wait_flag(&sh->started);
	sleep_ms(200);
	CHECK(kill(a, SIGKILL) == 0);
	char buf[4096];
	size_t got = 0;
	ssize_t r;
	while ((r = rp_read(e[0], buf + got, sizeof buf - got)) > 0)
		got += (size_t)r;
	CHECK(r == 0);
	CHECK(got == 100);
	for (size_t i = 0; i < got; i++)
		CHECK(buf[i] == 'B');
	rp_wait_ok(b);
	wait_killed(a);
	CHECK(rp_close(e[0]) == 0);
}

/*
 * Many writers push self-describing records (<= RP_PIPE_BUF) into a small
 * named ring; the parent repeatedly catches a "victim" writer while it holds
 * the writer lock (SIGSTOP, confirm, SIGKILL), or kills one at random when
 * it cannot catch one.  The other writers and the reader must keep going
 * (writer-lock recovery), the reader must see only whole records in per-
 * writer order, and the survivors' records must all arrive.
 */
#define KW_SURV 3
#define KW_MAXID 64
#define KW_ROUNDS 8
#define KW_VICTIMS 3

static void spin_us(double us)
{
	double end = rp_now_ms() + us / 1000;
	while (rp_now_ms() < end)
		;
}

/*
 * When sampling cannot catch a victim holding a lock (on a machine so busy
 * that the victims rarely run while the parent looks), the parent asks:
 * the next victim to take the lock sets `holder` to its pid and keeps the
 * lock until it is killed (or 10 s pass).
 */
struct hold_req {
	_Atomic int want;
	_Atomic pid_t holder;
};
static struct hold_req *hold_req;

static void hold_if_asked(void)
{
	pid_t none = 0;
	if (atomic_load(&hold_req->want) &&
	    atomic_compare_exchange_strong(&hold_req->holder, &none, getpid()))
		spin_us(10e6);
}

/* Catch a victim holding `lockw`: by sampling, or else by asking. */
static pid_t catch_lock_holder(const struct rp_lockword *lockw, const pid_t *cand, int n,
			       double ms, int *asked)
{
	pid_t v = stop_lock_holder(lockw, cand, n, ms);
	if (v > 0)
		return v;
	atomic_store(&hold_req->holder, 0);
	atomic_store(&hold_req->want, 1);
	double end = rp_now_ms() + rp_ms(5000);
	while (rp_now_ms() < end) {
		v = atomic_load(&hold_req->holder);
		if (v > 0 && (pid_t)rp_lock_holder(lockw) == v)
			break;
		v = -1;
		sleep_ms(1);
	}
	atomic_store(&hold_req->want, 0);
	if (v < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (cand[i] == v) {
			stop_child(v);
			(*asked)++;
			return v;
		}
	return -1;
}

/*
 * Survivors write every record with rp_write.  Victims (slow) alternate
 * rp_write with a zero-copy reservation that they fill in place and hold
 * for ~50 us before committing: a reservation holds the writers' lock, so
 * the parent can usually catch a victim holding it.
 */
static void __attribute__((noreturn))
kw_writer(rp_end *w, unsigned id, _Atomic int *stop, uint32_t *written, int slow)
{
	unsigned char buf[RP_PIPE_BUF];
	uint64_t s = 1000 + id;
	for (uint32_t seq = 0; !stop || !atomic_load(stop); seq++) {
		size_t len = rec_len(&s);
		if (slow && (seq & 1)) {
			unsigned char *p = rp_write_reserve(w, len);
			CHECK(p != NULL);
			make_record(p, id, seq, len);
			spin_us(50);
			hold_if_asked();
			CHECK(rp_write_commit(w, len) == 0);
		} else {
			make_record(buf, id, seq, len);
			CHECK(rp_write(w, buf, len) == (ssize_t)len);
		}
		if (written)
			*written = seq + 1;
		if (!slow)
			spin_us(20); /* outside the lock: leaves the victims room to take it */
	}
	_exit(0);
}

TEST(kill_writer_holding_lock_others_continue)
{
	rp_alarm(20);
	struct {
		_Atomic uint64_t records;
		_Atomic int stop;
		uint32_t written[KW_MAXID];
		uint32_t seen[KW_MAXID];
	} *sh = shared_mem(sizeof *sh);
	hold_req = shared_mem(sizeof *hold_req);
	struct named nm;
	open_named(&nm, 16384);
	struct rp_shared *hdr = nm.hdr;
	rp_end *rd = nm.rd, *wr = nm.wr;

	pid_t reader = fork_child();
	if (reader == 0) {
		CHECK(rp_close(wr) == 0);
		uint32_t seen[KW_MAXID] = { 0 };
		record_reader(rd, KW_MAXID, seen, &sh->records);
		memcpy(sh->seen, seen, sizeof seen);
		_exit(0);
	}
	CHECK(rp_close(rd) == 0);

	pid_t surv[KW_SURV];
	for (unsigned i = 0; i < KW_SURV; i++) {
		surv[i] = fork_child();
		if (surv[i] == 0)
			kw_writer(wr, i, &sh->stop, &sh->written[i], 0);
	}
	pid_t vict[KW_VICTIMS];
	unsigned next_id = KW_SURV;
	for (int i = 0; i < KW_VICTIMS; i++) {
		unsigned id = next_id++;
		vict[i] = fork_child();
		if (vict[i] == 0) {
			/* victims open the pipe by name: their own open ends */
			CHECK(rp_close(wr) == 0);
			rp_end *mine = rp_open(nm.path, O_WRONLY);
			CHECK(mine != NULL);
			kw_writer(mine, id, NULL, NULL, 1);
		}
	}

	int hits = 0, asked = 0;
	for (int round = 0; round < KW_ROUNDS; round++) {
		sleep_ms(10 + 5 * round);
		pid_t v = hits ? stop_lock_holder(&hdr->wlock, vict, KW_VICTIMS, 200)
			       : catch_lock_holder(&hdr->wlock, vict, KW_VICTIMS, 1000, &asked);
		int slot = 0;
		if (v > 0) {
			hits++;
			while (vict[slot] != v)
				slot++;
		} else {
			v = vict[slot = round % KW_VICTIMS];
		}
		uint64_t before = atomic_load(&sh->records);
		CHECK(kill(v, SIGKILL) == 0);
		wait_killed(v);
		/* nobody is stuck behind the dead writer */
		double end = rp_now_ms() + 3000;
		while (atomic_load(&sh->records) < before + 50 && rp_now_ms() < end)
			sleep_ms(1);
		if (atomic_load(&sh->records) < before + 50) {
			fprintf(stderr, "round %d: no progress after killing %d (lock 0x%x)\n",
				round, (int)v, atomic_load(&hdr->wlock.word));
			CHECK(0);
		}
		unsigned id = next_id++;
		CHECK(id < KW_MAXID);
		pid_t p = fork_child();
		if (p == 0) {
			CHECK(rp_close(wr) == 0);
			rp_end *mine = rp_open(nm.path, O_WRONLY);
			CHECK(mine != NULL);
			kw_writer(mine, id, NULL, NULL, 1);
		}
		vict[slot] = p;
	}
	atomic_store(&sh->stop, 1);
	for (int i = 0; i < KW_VICTIMS; i++) {
		CHECK(kill(vict[i], SIGKILL) == 0);
		wait_killed(vict[i]);
	}
	CHECK(rp_close(wr) == 0);
	for (int i = 0; i < KW_SURV; i++)
		rp_wait_ok(surv[i]);
	rp_wait_ok(reader);
	fprintf(stderr, "killed %d/%d victims while they held the writer lock (%d of them asked to)\n",
		hits, KW_ROUNDS, asked);
	for (int i = 0; i < KW_SURV; i++) {
		if (sh->seen[i] != sh->written[i]) {
			fprintf(stderr, "writer %d: wrote %u records, reader saw %u\n", i,
				sh->written[i], sh->seen[i]);
			CHECK(0);
		}
		CHECK(sh->written[i] > 0);
	}
	CHECK(hits > 0);
	munmap(hdr, RP_HDR_SIZE);
	CHECK(rp_unlink(nm.path) == 0);
	rmdir(nm.dir);
}

/*
 * The same for readers: several readers drain a small named ring fed by
 * writers; victims are caught holding the reader lock and killed.  The
 * writers must keep making progress (reader-lock recovery), the surviving
 * readers reach EOF, and no bytes are lost beyond the reads in flight in
 * the dead readers.
 */
#define KR_SURV 2
#define KR_VICTIMS 2
#define KR_WRITERS 2
#define KR_ROUNDS 8
#define KR_MAXID 32
#define KR_READ_MAX 8192
#define KR_CAP 16384

/* Survivors read with rp_read.  Victims (slow) alternate rp_read with a
 * peek held for ~50 us before consuming part of it (a peek holds the
 * readers' lock). */
static void __attribute__((noreturn)) kr_reader(rp_end *r, _Atomic uint64_t *count, int slow)
{
	static unsigned char buf[KR_READ_MAX];
	uint64_t s = (uint64_t)getpid();
	for (unsigned i = 0;; i++) {
		if (slow && (i & 1)) {
			size_t n = 0;
			const void *p = rp_read_peek(r, &n);
			if (p == NULL) {
				CHECK(n == 0);
				_exit(0);
			}
			size_t k = 1 + rng_next(&s) % n;
			spin_us(50);
			hold_if_asked();
			CHECK(rp_read_consume(r, k) == 0);
			atomic_fetch_add(count, (uint64_t)k);
			continue;
		}
		ssize_t n = rp_read(r, buf, 1 + rng_next(&s) % KR_READ_MAX);
		CHECK(n >= 0);
		if (n == 0)
			_exit(0);
		atomic_fetch_add(count, (uint64_t)n);
	}
}

TEST(kill_reader_holding_lock_other_readers_continue)
{
	rp_alarm(20);
	struct {
		_Atomic uint64_t written;
		_Atomic int stop;
		_Atomic uint64_t read_by[KR_MAXID];
	} *sh = shared_mem(sizeof *sh);
	hold_req = shared_mem(sizeof *hold_req);
	struct named nm;
	open_named(&nm, KR_CAP);
	struct rp_shared *hdr = nm.hdr;
	rp_end *rd = nm.rd, *wr = nm.wr;

	pid_t writers[KR_WRITERS];
	for (int i = 0; i < KR_WRITERS; i++) {
		writers[i] = fork_child();
		if (writers[i] == 0) {
			CHECK(rp_close(rd) == 0);
			static unsigned char buf[8192];
			memset(buf, 'k', sizeof buf);
			uint64_t s = 99 + (uint64_t)i;
			while (!atomic_load(&sh->stop)) {
				ssize_t n = rp_write(wr, buf, 1 + rng_next(&s) % sizeof buf);
				CHECK(n > 0);
				atomic_fetch_add(&sh->written, (uint64_t)n);
			}
			_exit(0);
		}
	}
	CHECK(rp_close(wr) == 0);

	unsigned next_id = 0;
	pid_t surv[KR_SURV];
	for (int i = 0; i < KR_SURV; i++) {
		unsigned id = next_id++;
		surv[i] = fork_child();
		if (surv[i] == 0)
			kr_reader(rd, &sh->read_by[id], 0);
	}
	pid_t vict[KR_VICTIMS];
	for (int i = 0; i < KR_VICTIMS; i++) {
		unsigned id = next_id++;
		vict[i] = fork_child();
		if (vict[i] == 0)
			kr_reader(rd, &sh->read_by[id], 1);
	}

	int hits = 0, kills = 0, asked = 0;
	for (int round = 0; round < KR_ROUNDS; round++) {
		sleep_ms(10 + 5 * round);
		pid_t v = hits ? stop_lock_holder(&hdr->rlock, vict, KR_VICTIMS, 200)
			       : catch_lock_holder(&hdr->rlock, vict, KR_VICTIMS, 1000, &asked);
		int slot = 0;
		if (v > 0) {
			hits++;
			while (vict[slot] != v)
				slot++;
		} else {
			v = vict[slot = round % KR_VICTIMS];
		}
		uint64_t before = atomic_load(&sh->written);
		CHECK(kill(v, SIGKILL) == 0);
		kills++;
		wait_killed(v);
		double end = rp_now_ms() + 3000;
		while (atomic_load(&sh->written) < before + 65536 && rp_now_ms() < end)
			sleep_ms(1);
		if (atomic_load(&sh->written) < before + 65536) {
			fprintf(stderr, "round %d: writers stuck after killing reader %d (rlock 0x%x)\n",
				round, (int)v, atomic_load(&hdr->rlock.word));
			CHECK(0);
		}
		unsigned id = next_id++;
		CHECK(id < KR_MAXID);
		pid_t p = fork_child();
		if (p == 0)
			kr_reader(rd, &sh->read_by[id], 1);
		vict[slot] = p;
	}
	for (int i = 0; i < KR_VICTIMS; i++) {
		CHECK(kill(vict[i], SIGKILL) == 0);
		kills++;
		wait_killed(vict[i]);
	}
	atomic_store(&sh->stop, 1);
	for (int i = 0; i < KR_WRITERS; i++)
		rp_wait_ok(writers[i]);
	CHECK(rp_close(rd) == 0);
	for (int i = 0; i < KR_SURV; i++)
		rp_wait_ok(surv[i]);
	uint64_t total_read = 0;
	for (unsigned i = 0; i < next_id; i++)
		total_read += atomic_load(&sh->read_by[i]);
	uint64_t written = atomic_load(&sh->written);
	fprintf(stderr, "killed %d/%d victims while they held the reader lock (%d of them asked "
		"to); written %llu read %llu\n", hits, KR_ROUNDS, asked,
		(unsigned long long)written, (unsigned long long)total_read);
	CHECK(total_read <= written);
	/* lost: at most one read or one consume in flight per killed reader */
	CHECK(written - total_read <= (uint64_t)kills * (KR_READ_MAX > KR_CAP ? KR_READ_MAX : KR_CAP));
	CHECK(atomic_load(&sh->read_by[0]) > 0 || atomic_load(&sh->read_by[1]) > 0);
	CHECK(hits > 0);
	munmap(hdr, RP_HDR_SIZE);
	CHECK(rp_unlink(nm.path) == 0);
	rmdir(nm.dir);
}

/* A reader killed between rp_read_peek and rp_read_consume consumed
 * nothing of the peeked span: another reader gets those bytes. */
TEST(kill_reader_between_peek_and_consume_leaves_data)
{
	rp_alarm(20);
	struct { _Atomic int ready; } *sh = shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_write(e[1], "abcdefgh", 8) == 8);
	pid_t pid = fork_child();
	if (pid == 0) {
		CHECK(rp_close(e[1]) == 0);
		size_t n = 0;
		const char *p = rp_read_peek(e[0], &n);
		CHECK(p != NULL && n == 8);
		CHECK(memcmp(p, "abcdefgh", 8) == 0);
		CHECK(rp_read_consume(e[0], 2) == 0); /* "ab" consumed for good */
		p = rp_read_peek(e[0], &n);
		CHECK(p != NULL && n == 6);
		atomic_store(&sh->ready, 1);
		for (;;)
			pause();
	}
	wait_flag(&sh->ready);
	CHECK(kill(pid, SIGKILL) == 0);
	wait_zombie(pid);
	char buf[16];
	rp_alarm(5);
	CHECK(rp_read(e[0], buf, sizeof buf) == 6);
	CHECK(memcmp(buf, "cdefgh", 6) == 0);
	rp_alarm(20);
	CHECK(rp_close(e[1]) == 0);
	CHECK(rp_read(e[0], buf, sizeof buf) == 0);
	wait_killed(pid);
	CHECK(rp_close(e[0]) == 0);
}

/* Several readers (children) blocked on an empty pipe; the only writer is
 * killed -9: every reader wakes with EOF within 100 ms. */
TEST(kill_writer_wakes_all_blocked_readers)
{
	rp_alarm(20);
	enum { N = 6 };
	struct { _Atomic int ready; _Atomic int wready; double t_ret[N]; long res[N]; } *sh =
		shared_mem(sizeof *sh);
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t writer = fork_child();
	if (writer == 0) {
		CHECK(rp_close(e[0]) == 0);
		atomic_store(&sh->wready, 1);
		for (;;)
			pause();
	}
	wait_flag(&sh->wready);
	CHECK(rp_close(e[1]) == 0);
	pid_t r[N];
	for (int i = 0; i < N; i++) {
		r[i] = fork_child();
		if (r[i] == 0) {
			atomic_fetch_add(&sh->ready, 1);
			char c;
			sh->res[i] = (long)rp_read(e[0], &c, 1);
			sh->t_ret[i] = rp_now_ms();
			_exit(0);
		}
	}
	CHECK(rp_close(e[0]) == 0);
	while (atomic_load(&sh->ready) < N)
		sleep_ms(1);
	sleep_ms(200);
	double t_kill = rp_now_ms();
	CHECK(kill(writer, SIGKILL) == 0);
	for (int i = 0; i < N; i++)
		rp_wait_ok(r[i]);
	for (int i = 0; i < N; i++) {
		CHECK(sh->res[i] == 0);
		CHECK(sh->t_ret[i] - t_kill < rp_ms(100));
	}
	wait_killed(writer);
}

/* Poll `hdr`'s reader count until it is `want`, for up to 10 s. */
static int wait_count(_Atomic uint64_t *count, uint64_t want)
{
	for (int i = 0; i < 10000; i++) {
		if (rp_sleeper_count(atomic_load(count)) == want)
			return 1;
		sleep_ms(1);
	}
	return 0;
}

/*
 * A reader (writer) killed asleep leaves its count behind.  The first
 * publish drops it a token and marks it (wait.c, owed()); every later one
 * finds it marked and drops nothing, and after 64 Ki such skips (a full
 * token pipe's worth, which is what set off the reap before the marks)
 * the count of the dead sleeper is taken back.  The parent moves each byte
 * through while it is there, so no live sleeper comes along.  That only
 * dead sleepers' counts are taken back is the model's reap-live check.
 */
static void killed_asleep_count_is_taken_back(bool writer)
{
	rp_alarm(60);
	enum { N = 100000, CAP = 16384 };
	struct named nm;
	open_named(&nm, CAP);
	struct rp_shared *hdr = nm.hdr;
	_Atomic uint64_t *count = writer ? &hdr->wr_sleepers : &hdr->rd_sleepers;
	_Atomic uint32_t *who = writer ? hdr->wr_who : hdr->rd_who;
	static char full[CAP];
	if (writer)                             /* it sleeps for room */
		CHECK(rp_write(nm.wr, full, CAP) == CAP);

	pid_t dying = fork_child();
	if (dying == 0) {
		char c = 0;
		if (writer)
			rp_write(nm.wr, &c, 1);
		else
			rp_read(nm.rd, &c, 1);
		_exit(1);
	}
	CHECK(wait_count(count, 1));
	int slot = -1;
	for (int i = 0; i < RP_SLEEP_SLOTS; i++)
		if (atomic_load(&who[i]) == (uint32_t)dying)
			slot = i;
	CHECK(slot >= 0);                        /* it named itself */
	CHECK(kill(dying, SIGKILL) == 0);
	wait_killed(dying);
	CHECK(rp_sleeper_count(atomic_load(count)) == 1);

	for (int i = 0; i < N; i++) {
		char c;
		if (writer) {                   /* room for one byte, then none */
			CHECK(rp_read(nm.rd, &c, 1) == 1);
			CHECK(rp_write(nm.wr, "x", 1) == 1);
		} else {
			CHECK(rp_write(nm.wr, "x", 1) == 1);
			CHECK(rp_read(nm.rd, &c, 1) == 1 && c == 'x');
		}
	}
	CHECK(atomic_load(&who[slot]) == 0);
	CHECK(atomic_load(count) == 0);
	CHECK(rp_close(nm.wr) == 0);
	CHECK(rp_close(nm.rd) == 0);
	munmap(hdr, RP_HDR_SIZE);
	CHECK(rp_unlink(nm.path) == 0);
	rmdir(nm.dir);
}

TEST(reader_killed_asleep_count_is_taken_back)
{
	killed_asleep_count_is_taken_back(false);
}

TEST(writer_killed_asleep_count_is_taken_back)
{
	killed_asleep_count_is_taken_back(true);
}
