/*
 * crashmatrix.c - kill processes at random instants and check what the
 * survivors see.
 *
 * Each trial runs 4 writers and 2 readers on one pipe (byte records, or
 * messages through rp_conn) and SIGKILLs one process of the role under
 * test at a random moment: inside a copy, a commit, a lock, asleep, while
 * waking another.  The survivors must then see every committed record
 * exactly once, whole, in each writer's order, and reach EOF (or EPIPE)
 * promptly.  Readers peek, log, then consume, so nothing a dead reader took
 * goes unaccounted; a message delivered to a receiver that died before it
 * could log it is counted as "in flight", not lost.
 *
 *   crashmatrix [-n TRIALS] [-r writer|reader|sender|receiver|all] [-s SEED]
 *               [-l LATENCY_LIMIT_MS]   (default 100)
 *
 * Prints, per role: "writer: injected N kills: 0 lost, 0 duplicated,
 * 0 torn, 0 hung (EOF/EPIPE latency max X ms)"; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ringpipe.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WRITERS   4
#define READERS   2
#define MAXSEQ    60000
#define REC_MAGIC 0x52454331u
#define MSG_MAX   (128 * 1024)

enum role { R_WRITER, R_READER, R_SENDER, R_RECEIVER };
static const char *const role_name[] = { "writer", "reader", "sender", "receiver" };

struct rec {                    /* a record or message header */
	uint32_t magic;
	uint16_t writer;
	uint16_t pad;
	uint32_t seq;
	uint32_t len;           /* whole record/message, header included */
	uint64_t sum;
};

struct shared {
	_Atomic int stop;
	_Atomic uint32_t written[WRITERS];     /* completed writes per writer */
	_Atomic uint8_t seen[READERS][WRITERS][MAXSEQ];  /* deliveries per reader */
	_Atomic uint32_t torn;
	_Atomic uint32_t order;                /* per-reader order violations */
	_Atomic uint32_t in_flight;            /* received, not yet logged */
	_Atomic int64_t last_exit_ns;          /* last writer to leave */
	_Atomic int64_t kill_ns;
	_Atomic int64_t worst_latency_ns;
	_Atomic uint32_t eof_seen;
	_Atomic uint32_t epipe_seen;
};

struct totals {
	unsigned kills, lost, dup, torn, hung, order, slow;
	double worst_ms;
};

/* EOF or EPIPE later than this after the fact counts as "slow". */
static double latency_limit_ms = 100.0;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t payload_sum(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void make_rec(unsigned char *buf, unsigned w, uint32_t seq, uint32_t len)
{
	struct rec r = { REC_MAGIC, (uint16_t)w, 0, seq, len, 0 };
	for (uint32_t i = sizeof(r); i < len; i++)
		buf[i] = (unsigned char)(seq * 31 + w * 7 + i);
	r.sum = payload_sum(buf + sizeof(r), len - sizeof(r));
	memcpy(buf, &r, sizeof(r));
}

/* Check a record; log it as seen by reader `me`. */
static void deliver(struct shared *sh, unsigned me, const unsigned char *buf,
		    size_t avail, uint32_t *last_seq)
{
	struct rec r;
	if (avail < sizeof(r)) {
		atomic_fetch_add(&sh->torn, 1);
		return;
	}
	memcpy(&r, buf, sizeof(r));
	if (r.magic != REC_MAGIC || r.writer >= WRITERS || r.seq >= MAXSEQ ||
	    r.len < sizeof(r) || r.len > avail ||
	    payload_sum(buf + sizeof(r), r.len - sizeof(r)) != r.sum) {
		atomic_fetch_add(&sh->torn, 1);
		return;
	}
	if (last_seq[r.writer] != UINT32_MAX && r.seq <= last_seq[r.writer])
		atomic_fetch_add(&sh->order, 1);
	last_seq[r.writer] = r.seq;
	atomic_fetch_add(&sh->seen[me][r.writer][r.seq], 1);
}

static void note_latency(struct shared *sh, int64_t from)
{
	int64_t d = now_ns() - from;
	int64_t cur = atomic_load(&sh->worst_latency_ns);
	while (d > cur && !atomic_compare_exchange_weak(&sh->worst_latency_ns, &cur, d))
		;
}

/* ---- byte pipes ---- */

static void byte_writer(struct shared *sh, rp_end *w, unsigned id, uint64_t seed)
{
	unsigned char buf[RP_PIPE_BUF];
	for (uint32_t seq = 0; seq < MAXSEQ && !atomic_load(&sh->stop); seq++) {
		uint32_t len = sizeof(struct rec) +
			       (uint32_t)(rng(&seed) % (RP_PIPE_BUF - sizeof(struct rec) + 1));
		make_rec(buf, id, seq, len);
		if (id == 0) {          /* one writer commits through zero-copy */
			void *span = rp_write_reserve(w, len);
			if (!span)
				_exit(3);
			memcpy(span, buf, len);
			if (rp_write_commit(w, len) < 0)
				_exit(3);
		} else if (rp_write(w, buf, len) != (ssize_t)len) {
			if (errno == EPIPE) {
				note_latency(sh, atomic_load(&sh->kill_ns));
				atomic_fetch_add(&sh->epipe_seen, 1);
				break;
			}
			_exit(3);
		}
		atomic_store(&sh->written[id], seq + 1);
	}
	atomic_store(&sh->last_exit_ns, now_ns());
	_exit(0);
}

/* EOF latency: from the later of the last writer's exit and the last data
 * we got (draining what was queued is not latency). */
static void note_eof(struct shared *sh, int64_t last_data)
{
	int64_t from = atomic_load(&sh->last_exit_ns);
	note_latency(sh, from > last_data ? from : last_data);
	atomic_fetch_add(&sh->eof_seen, 1);
}

static void byte_reader(struct shared *sh, rp_end *r, unsigned me)
{
	int64_t last_data = 0;
	uint32_t last[WRITERS];
	memset(last, 0xff, sizeof(last));
	for (;;) {
		size_t n;
		const unsigned char *p = rp_read_peek(r, &n);
		if (!p) {
			if (n == 0 && errno == 0)
				break;
			_exit(4);
		}
		/* Records are atomic, so a peek always ends on a boundary. */
		size_t off = 0;
		while (off < n) {
			struct rec h;
			memcpy(&h, p + off, sizeof(h) <= n - off ? sizeof(h) : n - off);
			if (n - off < sizeof(h) || h.len < sizeof(h) || h.len > n - off) {
				atomic_fetch_add(&sh->torn, 1);
				off = n;
				break;
			}
			deliver(sh, me, p + off, n - off, last);
			off += h.len;
		}
		rp_read_consume(r, off);
		last_data = now_ns();
	}
	note_eof(sh, last_data);
	_exit(0);
}

/* ---- messages ---- */

static void msg_sender(struct shared *sh, rp_conn *c, unsigned id, uint64_t seed)
{
	unsigned char *buf = malloc(MSG_MAX);
	if (!buf)
		_exit(3);
	for (uint32_t seq = 0; seq < MAXSEQ && !atomic_load(&sh->stop); seq++) {
		uint64_t r = rng(&seed);
		uint32_t len = sizeof(struct rec) +
			(uint32_t)(r % 8 == 0 ? r % (MSG_MAX - sizeof(struct rec)) : r % 512);
		make_rec(buf, id, seq, len);
		if (rp_send(c, buf, len) < 0) {
			if (errno == EPIPE) {
				note_latency(sh, atomic_load(&sh->kill_ns));
				atomic_fetch_add(&sh->epipe_seen, 1);
				break;
			}
			_exit(3);
		}
		atomic_store(&sh->written[id], seq + 1);
	}
	atomic_store(&sh->last_exit_ns, now_ns());
	_exit(0);
}

static void msg_receiver(struct shared *sh, rp_conn *c, unsigned me)
{
	int64_t last_data = 0;
	uint32_t last[WRITERS];
	memset(last, 0xff, sizeof(last));
	for (;;) {
		void *m;
		atomic_fetch_add(&sh->in_flight, 1);
		ssize_t n = rp_recv_alloc(c, &m);
		if (n < 0) {
			atomic_fetch_sub(&sh->in_flight, 1);
			if (errno == ENODATA)
				break;
			_exit(4);
		}
		deliver(sh, me, m, (size_t)n, last);
		atomic_fetch_sub(&sh->in_flight, 1);
		free(m);
		last_data = now_ns();
	}
	note_eof(sh, last_data);
	_exit(0);
}

static pid_t spawn(void)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(20);
		signal(SIGPIPE, SIG_IGN);
	}
	return pid;
}

/* One trial; adds to *t.  Returns 0, or -1 if the harness itself failed. */
static int trial(enum role role, uint64_t seed, struct totals *t)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -1;
	bool msgs = role == R_SENDER || role == R_RECEIVER;
	static const size_t caps[] = { 4096, 16384, 65536 };
	size_t cap = caps[rng(&seed) % 3];
	rp_end *e[2];
	rp_conn *c[2] = { NULL, NULL };
	if (rp_pipe2(e, 0, cap) < 0)
		return -1;
	if (msgs && (!(c[0] = rp_conn_from_ends(e[0], NULL)) ||
		     !(c[1] = rp_conn_from_ends(NULL, e[1]))))
		return -1;

	pid_t w[WRITERS], r[READERS];
	for (unsigned i = 0; i < READERS; i++)
		if ((r[i] = spawn()) <= 0) {
			if (r[i] < 0) {
				perror("crashmatrix: fork");
				exit(1);   /* never kill(-1, ...) below */
			}
			msgs ? (void)rp_conn_close(c[1]) : (void)rp_close(e[1]);
			msgs ? msg_receiver(sh, c[0], i) : byte_reader(sh, e[0], i);
		}
	for (unsigned i = 0; i < WRITERS; i++)
		if ((w[i] = spawn()) <= 0) {
			if (w[i] < 0) {
				perror("crashmatrix: fork");
				exit(1);
			}
			msgs ? (void)rp_conn_close(c[0]) : (void)rp_close(e[0]);
			uint64_t s = seed + i;
			msgs ? msg_sender(sh, c[1], i, s) : byte_writer(sh, e[1], i, s);
		}
	if (msgs) {
		rp_conn_close(c[0]);
		rp_conn_close(c[1]);
	} else {
		rp_close(e[0]);
		rp_close(e[1]);
	}

	bool kill_writer = role == R_WRITER || role == R_SENDER;
	unsigned victim = (unsigned)(rng(&seed) % (kill_writer ? WRITERS : READERS));
	pid_t vpid = kill_writer ? w[victim] : r[victim];
	usleep((useconds_t)(1000 + rng(&seed) % 20000));
	atomic_store(&sh->kill_ns, now_ns());
	kill(vpid, SIGKILL);
	waitpid(vpid, NULL, 0);
	t->kills++;
	usleep(20000);                    /* survivors carry on */
	atomic_store(&sh->stop, 1);

	int64_t deadline = now_ns() + 5000000000LL;
	bool hung = false;
	for (unsigned i = 0; i < WRITERS + READERS; i++) {
		pid_t p = i < WRITERS ? w[i] : r[i - WRITERS];
		if (p == vpid)
			continue;
		int st;
		while (waitpid(p, &st, WNOHANG) == 0) {
			if (now_ns() > deadline) {
				hung = true;
				kill(p, SIGKILL);
				waitpid(p, &st, 0);
				break;
			}
			usleep(1000);
		}
		if (!hung && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
			hung = true;           /* a survivor failed: count it */
			fprintf(stderr, "crashmatrix: %s trial: survivor %d ended with status 0x%x\n",
				role_name[role], (int)p, st);
		}
	}
	t->hung += hung;

	/* Account for every record. */
	for (unsigned i = 0; i < WRITERS; i++) {
		uint32_t n = atomic_load(&sh->written[i]);
		bool is_victim = kill_writer && i == victim;
		/* The victim may have published one record it never counted. */
		uint32_t upto = is_victim && n < MAXSEQ ? n + 1 : n;
		for (uint32_t s = 0; s < MAXSEQ; s++) {
			/* A reader killed between peek and consume leaves what it
			 * peeked to the others: its log counts against loss, not
			 * as a second delivery. */
			unsigned k = 0, all = 0;
			for (unsigned j = 0; j < READERS; j++) {
				unsigned v = atomic_load(&sh->seen[j][i][s]);
				all += v;
				if (kill_writer || j != victim)
					k += v;
			}
			if (k > 1)
				t->dup++;
			if (s < n && all == 0)
				t->lost++;
			if (s >= upto && all)
				t->dup++;         /* seen but never written */
		}
	}
	/* A message handed to a receiver that died before logging it is
	 * "in flight", not lost: at most one per killed receiver. */
	if (role == R_RECEIVER && t->lost && atomic_load(&sh->in_flight) >= 1)
		t->lost -= t->lost >= 1 ? 1 : 0;
	t->torn += atomic_load(&sh->torn);
	t->order += atomic_load(&sh->order);
	double worst = atomic_load(&sh->worst_latency_ns) / 1e6;
	if (worst > t->worst_ms)
		t->worst_ms = worst;
	if (worst > latency_limit_ms)
		t->slow++;
	munmap(sh, sizeof(*sh));
	return 0;
}

int main(int argc, char **argv)
{
	unsigned trials = 20;
	uint64_t seed = (uint64_t)time(NULL);
	int only = -1, opt;

	while ((opt = getopt(argc, argv, "n:r:s:l:")) != -1) {
		switch (opt) {
		case 'l': latency_limit_ms = strtod(optarg, NULL); break;
		case 'n': trials = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'r':
			for (int i = 0; i < 4; i++)
				if (!strcmp(optarg, role_name[i]))
					only = i;
			if (only < 0 && strcmp(optarg, "all")) {
				fprintf(stderr, "crashmatrix: unknown role '%s'\n", optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: crashmatrix [-n TRIALS] [-r ROLE|all] [-s SEED] [-l MS]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	printf("crashmatrix: seed %llu, %u trials per role\n", (unsigned long long)seed, trials);
	int status = 0;
	for (int role = 0; role < 4; role++) {
		if (only >= 0 && role != only)
			continue;
		struct totals t = { 0 };
		for (unsigned i = 0; i < trials; i++)
			if (trial((enum role)role, seed + (uint64_t)i * 1000003 + (uint64_t)role, &t) < 0) {
				fprintf(stderr, "crashmatrix: %s trial %u: setup failed: %s\n",
					role_name[role], i, strerror(errno));
				return 1;
			}
		printf("%-8s: injected %u kills: %u lost, %u duplicated, %u torn, %u hung, "
		       "%u out of order, %u slow (EOF/EPIPE latency max %.1f ms, limit %.0f)\n",
		       role_name[role], t.kills, t.lost, t.dup, t.torn, t.hung, t.order,
		       t.slow, t.worst_ms, latency_limit_ms);
		fflush(stdout);
		if (t.lost || t.dup || t.torn || t.hung || t.order || t.slow)
			status = 1;
	}
	return status;
}
