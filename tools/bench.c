/*
 * bench.c - `ringpipe bench`: ringpipe against kernel pipes and its peers,
 * measured side by side in the same run.
 *
 *   ringpipe bench [--json] [--quick] [--only MECH[,MECH...]] [--test T[,T...]]
 *
 * Every figure is the median of 5 repetitions, printed with its min and
 * max.  The repetitions of the mechanisms being compared are interleaved
 * (rep 1 of each, then rep 2 of each, ...), so both sides of every ratio
 * see the same machine at the same time.
 *
 * Writer and reader are separate forked processes pinned to two different
 * CPUs; the output says so when pinning is refused or only one CPU exists.
 * Stream readers verify a position-weighted checksum of every byte of a
 * deterministic pattern, and message readers verify every sequence number,
 * so no mechanism can skip work.  See docs/bench.md for the method.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ringpipe.h"

#if defined(__has_include)
#if __has_include("tool.h")
#include "tool.h"
#endif
#endif

int rp_cmd_bench(int argc, char **argv);

#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

#define BIG_CAP      MiB          /* the "enlarged" capacity of both sides */
#define MSG          64           /* message size: msgrate, rtt, idle */
#define PAT_PERIOD   131016       /* pattern period: multiple of 8, divides no write size */
#define PAT_LEN      (PAT_PERIOD + MiB)
#define RBUF         MiB          /* stream readers read up to this much per call */
#define REPS         5            /* every figure is the median of REPS runs */
#define MAX_WRITERS  8
#define MAX_ROWS     16
#define MEM_PIPES    1000         /* memory: named pipes held at once */
#define SLEEP_GAP_NS 1000000ULL   /* rtt-sleeping: pause before each ping */

/*
 * Volumes.  Full mode moves 1 GiB per stream run (64 MiB, or 3 s, for 64 B
 * writes, which the slow mechanisms take minutes over).  --quick makes the
 * same runs but stops each writer after QUICK_NS, so that five repetitions
 * of everything it runs fit in under 30 s (20-25 s on the machine of
 * 2026-11-29; 0.1 s runs took 25-30 s); the reader still checks every byte
 * that was sent.  (It used to stop at 256 MiB too: 15 ms at ringpipe's
 * speed, of which a fresh 1 MiB ring's first touch took 3-4 ms a process
 * there, a page fault costing some 15 us.)
 */
#define QUICK_NS            70000000ULL
#define STREAM_BYTES        GiB
#define STREAM_BUDGET       (B.quick ? QUICK_NS : 0)
#define WRITERS_BUDGET      1000000000ULL   /* test_writers(), full runs */
/* A bound the writers' time always reaches first (64 GB/s for a second):
 * a writer given STREAM_BYTES ran out of bytes before its time was up at
 * over 10 GB/s (quick) or 1 GB/s (full), so writers-1 was timed over
 * 40-100 ms where writers-8 took the whole budget. */
#define WRITERS_BYTES       (64 * GiB)
#define STREAM_SMALL        (64 * MiB)
#define STREAM_SMALL_BUDGET (B.quick ? QUICK_NS : 3000000000ULL)
#define MSG_COUNT           2000000
#define MSG_BUDGET          (B.quick ? QUICK_NS : 3000000000ULL)
#define RTT_COUNT           (B.quick ? 2000 : 100000)
#define RTT_WARM            (B.quick ? 200 : 2000)
#define SLEEPING_COUNT      (B.quick ? 100 : 1000)
#define IDLE_SECS           (B.quick ? 0.5 : 2.0)

/*
 * M_CONN and M_KFRAMED carry messages, not bytes: every chan_write() is one
 * message (rp_send over an rp_conn, or a 4-byte length header and the
 * payload over a kernel pipe, as Python's multiprocessing frames them), and
 * their readers take one whole message per receive.
 */
enum mech { M_RP, M_RPZC, M_KPIPE, M_KBIG, M_UNIX, M_MQ, M_MEMCPY, M_CONN, M_KFRAMED,
	    M_PYRP, M_PYMP, M_PYRQ, M_PYMQ, M_BARE, M_COUNT };
static const char *const mech_names[M_COUNT] = {
	"ringpipe", "ringpipe-zerocopy", "kernel-pipe", "kernel-pipe-enlarged",
	"unix-socket", "posix-mq", "memcpy", "ringpipe-conn", "kernel-pipe-framed",
	"ringpipe-python", "mp-pipe", "ringpipe-queue", "mp-queue", "bare-ring",
};

/* Measured by Python (python -m ringpipe.bench, see bench_python.c). */
static int is_py_mech(int m)
{
	return m >= M_PYRP && m <= M_PYMQ;
}

static int is_msg_mech(int m)
{
	return m == M_CONN || m == M_KFRAMED;
}

/* ------------------------------------------------------------------ */
/* State of one `ringpipe bench` invocation                            */

struct result {
	int mech;
	char test[24];
	uint64_t size;
	uint64_t cap;          /* 0: no capacity field */
	const char *unit;
	double med, min, max;
	int runs;
};

static struct {
	int json, quick, progress;
	int only;                       /* --only given */
	unsigned mechs;                 /* bit per enum mech */
	char tests[16][24];
	int ntests;
	int pin, cpu_w, cpu_r;
	char pin_note[160];
	int failures;
	long mq_maxmsg;
	int mq_ok;
	struct result res[256];
	int nres;
	char notes[32][200];
	int nnotes;
} B;

/* Shared with the children of one run; reset before each. */
struct shm {
	_Atomic int ready;
	uint64_t t_start[MAX_WRITERS];
	uint64_t written[MAX_WRITERS];   /* what each writer sent (bytes or messages) */
	uint64_t t_end;
	uint64_t bytes, sum;
	/* writers-N: the stretch in which all N writers write (run_stream) */
	_Atomic int running, finished;
	uint64_t win_t0, win_t1, win_b0, win_b1;
	double v[MAX_ROWS * REPS];
	double p50, p99;
	char err[256];
};
static struct shm *S;

static unsigned char *pattern;  /* PAT_LEN bytes, period PAT_PERIOD */
static unsigned char *rbuf;     /* RBUF bytes, the stream readers' buffer */
static uint64_t pattern_sum;    /* csum() of one period */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL) };
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

static void note(const char *fmt, ...)
{
	char buf[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (int i = 0; i < B.nnotes; i++)
		if (!strcmp(B.notes[i], buf))
			return;
	if (B.nnotes < (int)(sizeof(B.notes) / sizeof(B.notes[0])))
		snprintf(B.notes[B.nnotes++], sizeof(B.notes[0]), "%s", buf);
}

static void failure(const char *fmt, ...)
{
	char buf[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	B.failures++;
	note("FAILED: %s", buf);
	if (B.progress)
		fputc('\n', stderr);
	fprintf(stderr, "ringpipe bench: FAILED: %s\n", buf);
}

/* In a child: record the first error for the parent, return 1. */
static int child_fail(const char *fmt, ...)
{
	if (!S->err[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(S->err, sizeof(S->err), fmt, ap);
		va_end(ap);
	}
	return 1;
}

static void progress(const char *test, uint64_t size, int mech, uint64_t cap,
		     int rep)
{
	if (!B.progress)
		return;
	fprintf(stderr, "\r\033[K  %s %" PRIu64 " %s%s (run %d/%d)", test, size,
		mech_names[mech], cap == BIG_CAP ? " 1MiB" : "", rep + 1, REPS);
}

/* RINGPIPE_BENCH_VERBOSE=1: every single run on stderr, to see the spread. */
static void run_log(const char *test, uint64_t size, int mech, uint64_t cap, int rep,
		    double v)
{
	static int on = -1;
	if (on < 0) {
		const char *s = getenv("RINGPIPE_BENCH_VERBOSE");
		on = s && *s && *s != '0';
	}
	if (!on)
		return;
	if (B.progress)
		fprintf(stderr, "\r\033[K");
	fprintf(stderr, "run %s %" PRIu64 " %s cap=%" PRIu64 " rep=%d: %.6g\n", test, size,
		mech_names[mech], cap, rep + 1, v);
}

/* ------------------------------------------------------------------ */
/* The pattern and its checksum                                        */

/*
 * csum = sum over stream positions i of byte_i << 8*(i mod 8), mod 2^64:
 * linear in the bytes, so it can be taken chunk by chunk at any offset,
 * and for a pattern whose period is a multiple of 8 the total for T bytes
 * is (T / P) * sum(P) + sum(T mod P).  Multi-writer streams of atomic
 * 4 KiB writes keep every block at a position = 0 mod 8, so their total is
 * the sum of the writers' totals whatever the interleaving.
 */
typedef uint64_t v2u __attribute__((vector_size(16), aligned(1), may_alias));
typedef uint64_t v2 __attribute__((vector_size(16)));

static uint64_t csum(const unsigned char *p, size_t n, uint64_t pos)
{
	uint64_t s = 0;

	while (n && (pos & 7)) {
		s += (uint64_t)*p++ << (8 * (pos & 7));
		pos++;
		n--;
	}
	v2 a = { 0, 0 }, b = { 0, 0 }, c = { 0, 0 }, d = { 0, 0 };
	while (n >= 64) {
		a += *(const v2u *)(p + 0);
		b += *(const v2u *)(p + 16);
		c += *(const v2u *)(p + 32);
		d += *(const v2u *)(p + 48);
		p += 64;
		n -= 64;
	}
	a += b + c + d;
	s += a[0] + a[1];
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		s += w;
		p += 8;
		n -= 8;
	}
	for (size_t i = 0; i < n; i++)
		s += (uint64_t)p[i] << (8 * i);
	return s;
}

static uint64_t expected_sum(uint64_t total)
{
	return (total / PAT_PERIOD) * pattern_sum +
	       csum(pattern, total % PAT_PERIOD, 0);
}

static int setup_buffers(void)
{
	pattern = mmap(NULL, PAT_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rbuf = mmap(NULL, RBUF, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pattern == MAP_FAILED || rbuf == MAP_FAILED || S == MAP_FAILED)
		return -1;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < PAT_PERIOD; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(pattern + i, &x, 8);
	}
	for (size_t i = PAT_PERIOD; i < PAT_LEN; i++)
		pattern[i] = pattern[i - PAT_PERIOD];
	pattern_sum = csum(pattern, PAT_PERIOD, 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Channels: one byte stream (or message queue) of any mechanism       */

struct chan {
	int mech;
	uint64_t cap;
	rp_end *rp[2];
	rp_conn *conn[2];        /* M_CONN: conn[RD] receives, conn[WR] sends */
	int fd[2];
	mqd_t mq;
	struct bare *bare;       /* M_BARE */
};

enum { RD = 0, WR = 1 };

static int chan_open(struct chan *c, int mech, uint64_t cap, char *err, size_t errlen)
{
	static unsigned serial;

	memset(c, 0, sizeof(*c));
	c->mech = mech;
	c->fd[0] = c->fd[1] = -1;
	c->mq = (mqd_t)-1;
	switch (mech) {
	case M_RP:
	case M_RPZC:
		if (rp_pipe2(c->rp, 0, cap) < 0) {
			snprintf(err, errlen, "rp_pipe2(%" PRIu64 "): %s", cap, strerror(errno));
			return -1;
		}
		c->cap = rp_capacity(c->rp[0]);
		return 0;
	case M_CONN:
		if (!cap || cap == 64 * KiB) {
			/* The default: a one-way rp_conn_pipe(), 64 KiB ring. */
			if (rp_conn_pipe(c->conn, 0) < 0) {
				snprintf(err, errlen, "rp_conn_pipe: %s", strerror(errno));
				return -1;
			}
			c->cap = 64 * KiB;
			return 0;
		}
		if (rp_pipe2(c->rp, 0, cap) < 0) {
			snprintf(err, errlen, "rp_pipe2(%" PRIu64 "): %s", cap, strerror(errno));
			return -1;
		}
		c->cap = rp_capacity(c->rp[0]);
		c->conn[RD] = rp_conn_from_ends(c->rp[RD], NULL);
		if (!c->conn[RD]) {
			snprintf(err, errlen, "rp_conn_from_ends: %s", strerror(errno));
			rp_close(c->rp[RD]);
			rp_close(c->rp[WR]);
			return -1;
		}
		c->conn[WR] = rp_conn_from_ends(NULL, c->rp[WR]);
		if (!c->conn[WR]) {
			snprintf(err, errlen, "rp_conn_from_ends: %s", strerror(errno));
			rp_conn_close(c->conn[RD]);
			rp_close(c->rp[WR]);
			return -1;
		}
		c->rp[RD] = c->rp[WR] = NULL;   /* the connections own them now */
		return 0;
	case M_KPIPE:
	case M_KBIG:
	case M_KFRAMED:
		if (pipe(c->fd) < 0) {
			snprintf(err, errlen, "pipe: %s", strerror(errno));
			return -1;
		}
		if (mech == M_KBIG) {
			int r = fcntl(c->fd[1], F_SETPIPE_SZ, (int)cap);
			if (r < 0 || (uint64_t)r < cap) {
				snprintf(err, errlen, "F_SETPIPE_SZ to %" PRIu64 " refused: %s", cap,
					 r < 0 ? strerror(errno) : "got less");
				close(c->fd[0]);
				close(c->fd[1]);
				return -1;
			}
		}
		c->cap = (uint64_t)fcntl(c->fd[1], F_GETPIPE_SZ);
		return 0;
	case M_BARE:
		c->bare = bare_open(cap ? cap : 64 * KiB);
		if (!c->bare) {
			snprintf(err, errlen, "bare ring: %s", strerror(errno));
			return -1;
		}
		c->cap = bare_capacity(c->bare);
		return 0;
	case M_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, c->fd) < 0) {
			snprintf(err, errlen, "socketpair: %s", strerror(errno));
			return -1;
		}
		return 0;
	case M_MQ: {
		char name[64];
		struct mq_attr a = { .mq_maxmsg = B.mq_maxmsg, .mq_msgsize = MSG };
		snprintf(name, sizeof(name), "/ringpipe-bench.%d.%u", (int)getpid(), serial++);
		c->mq = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
		if (c->mq == (mqd_t)-1) {
			snprintf(err, errlen, "mq_open: %s", strerror(errno));
			return -1;
		}
		mq_unlink(name);
		return 0;
	}
	}
	snprintf(err, errlen, "no such mechanism");
	return -1;
}

static void chan_close_side(struct chan *c, int side)
{
	switch (c->mech) {
	case M_RP:
	case M_RPZC:
		if (c->rp[side]) {
			rp_close(c->rp[side]);
			c->rp[side] = NULL;
		}
		break;
	case M_CONN:
		if (c->conn[side]) {
			rp_conn_close(c->conn[side]);
			c->conn[side] = NULL;
		}
		break;
	case M_MQ:
		break;      /* one descriptor serves both sides */
	case M_BARE:
		if (c->bare)
			bare_close_side(c->bare, side == WR);
		break;
	default:
		if (c->fd[side] >= 0) {
			close(c->fd[side]);
			c->fd[side] = -1;
		}
	}
}

static void chan_close(struct chan *c)
{
	chan_close_side(c, RD);
	chan_close_side(c, WR);
	if (c->mech == M_BARE) {
		bare_free(c->bare);
		c->bare = NULL;
	}
	if (c->mech == M_MQ && c->mq != (mqd_t)-1) {
		mq_close(c->mq);
		c->mq = (mqd_t)-1;
	}
}

/* kernel-pipe-framed: header and payload in one writev(), looping on a
 * short write (a blocking pipe write of more than PIPE_BUF may be split). */
static int framed_send(int fd, const void *p, size_t n)
{
	uint32_t len = (uint32_t)n;
	struct iovec iov[2] = {
		{ .iov_base = &len, .iov_len = 4 },
		{ .iov_base = (void *)p, .iov_len = n },
	};
	struct iovec *v = iov;
	int nv = 2;

	if (n > UINT32_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	while (nv) {
		ssize_t r = writev(fd, v, nv);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (nv && (size_t)r >= v->iov_len) {
			r -= (ssize_t)v->iov_len;
			v++;
			nv--;
		}
		if (nv) {
			v->iov_base = (char *)v->iov_base + r;
			v->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/* One read call (not for M_RPZC). */
static ssize_t chan_read(struct chan *c, void *p, size_t n)
{
	switch (c->mech) {
	case M_RP:
		return rp_read(c->rp[RD], p, n);
	case M_MQ:
		return mq_receive(c->mq, p, n, NULL);
	case M_BARE:
		return bare_read(c->bare, p, n);
	default:
		return read(c->fd[RD], p, n);
	}
}

/* Read exactly n bytes: 1, 0 at EOF before the first byte, -1 on error
 * (EPROTO for EOF part-way). */
static int read_exact(struct chan *c, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = chan_read(c, (char *)p + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			if (!got)
				return 0;
			errno = EPROTO;
			return -1;
		}
		got += (size_t)r;
	}
	return 1;
}

/* Receive one whole message of a message mechanism into buf (cap bytes):
 * its length, or -1 with errno ENODATA at EOF, or -1 on error. */
static ssize_t chan_recv_frame(struct chan *c, void *buf, size_t cap)
{
	if (c->mech == M_CONN) {
		ssize_t r;
		do
			r = rp_recv(c->conn[RD], buf, cap);
		while (r < 0 && errno == EINTR);
		return r;
	}
	uint32_t len;
	int r = read_exact(c, &len, 4);
	if (r <= 0) {
		if (r == 0)
			errno = ENODATA;
		return -1;
	}
	if (len > cap) {
		errno = EMSGSIZE;
		return -1;
	}
	r = read_exact(c, buf, len);
	if (r < 0)
		return -1;
	if (r == 0 && len) {
		errno = EPROTO;
		return -1;
	}
	return (ssize_t)len;
}

/* Write all n bytes: one call for pipes and rings (blocking writes are
 * whole), a loop in case a socket returns short.  For the message
 * mechanisms, send the n bytes as one message. */
static int chan_write(struct chan *c, const void *p, size_t n)
{
	const char *s = p;

	switch (c->mech) {
	case M_CONN:
		return rp_send(c->conn[WR], p, n);
	case M_KFRAMED:
		return framed_send(c->fd[WR], p, n);
	case M_RP:
		while (n) {
			ssize_t r = rp_write(c->rp[WR], s, n);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			s += r;
			n -= (size_t)r;
		}
		return 0;
	case M_RPZC: {
		void *d = rp_write_reserve(c->rp[WR], n);
		if (!d)
			return -1;
		memcpy(d, p, n);
		return rp_write_commit(c->rp[WR], n);
	}
	case M_MQ:
		return mq_send(c->mq, p, n, 0);
	case M_BARE:
		return bare_write(c->bare, p, n);
	default:
		while (n) {
			ssize_t r = write(c->fd[WR], s, n);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			s += r;
			n -= (size_t)r;
		}
		return 0;
	}
}

/* Receive one MSG-byte message: 1, 0 at EOF, -1 on error. */
static int chan_recv_msg(struct chan *c, unsigned char *buf)
{
	if (c->mech == M_RPZC) {
		size_t n;
		errno = 0;
		const unsigned char *p = rp_read_peek(c->rp[RD], &n);
		if (!p)
			return errno ? -1 : 0;
		if (n < MSG) {          /* commits are whole messages */
			rp_read_consume(c->rp[RD], 0);
			errno = EPROTO;
			return -1;
		}
		memcpy(buf, p, MSG);
		return rp_read_consume(c->rp[RD], MSG) < 0 ? -1 : 1;
	}
	if (is_msg_mech(c->mech)) {
		ssize_t r = chan_recv_frame(c, buf, MSG);
		if (r < 0)
			return errno == ENODATA ? 0 : -1;
		if (r != MSG) {
			errno = EPROTO;
			return -1;
		}
		return 1;
	}
	if (c->mech == M_MQ) {
		ssize_t r = mq_receive(c->mq, (char *)buf, MSG, NULL);
		if (r < 0)
			return -1;
		if (r != MSG) {
			errno = EPROTO;
			return -1;
		}
		return 1;
	}
	return read_exact(c, buf, MSG);
}

/* ------------------------------------------------------------------ */
/* Processes                                                          */

static void pin_to(int cpu)
{
	if (!B.pin)
		return;
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static void pin_probe(void)
{
	cpu_set_t orig, one;
	int cpus[2], n = 0;

	B.pin = 0;
	if (sched_getaffinity(0, sizeof(orig), &orig) < 0) {
		snprintf(B.pin_note, sizeof(B.pin_note),
			 "NOT pinned: sched_getaffinity: %s", strerror(errno));
		return;
	}
	for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &orig))
			cpus[n++] = i;
	if (n < 2) {
		snprintf(B.pin_note, sizeof(B.pin_note),
			 "NOT pinned apart: only 1 CPU available, writer and reader share it");
		return;
	}
	CPU_ZERO(&one);
	CPU_SET(cpus[0], &one);
	if (sched_setaffinity(0, sizeof(one), &one) < 0) {
		snprintf(B.pin_note, sizeof(B.pin_note),
			 "NOT pinned: sched_setaffinity refused (%s), processes float",
			 strerror(errno));
		return;
	}
	sched_setaffinity(0, sizeof(orig), &orig);
	B.pin = 1;
	B.cpu_w = cpus[0];
	B.cpu_r = cpus[1];
	snprintf(B.pin_note, sizeof(B.pin_note),
		 "writers pinned to CPU %d, readers to CPU %d (sched_setaffinity)",
		 cpus[0], cpus[1]);
}

typedef int (*child_fn)(void *);

static pid_t spawn(int cpu, child_fn fn, void *arg)
{
	fflush(NULL);
	pid_t p = fork();
	if (p == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		pin_to(cpu);
		_exit(fn(arg) ? 1 : 0);
	}
	return p;
}

/* Wait for every child; kill all after `timeout_s`.  0 if all exited 0. */
static int reap(pid_t *pids, int n, double timeout_s, char *err, size_t errlen)
{
	sigset_t chld;
	int done[64] = { 0 }, left = n, bad = 0;
	uint64_t deadline = now_ns() + (uint64_t)(timeout_s * 1e9);

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	err[0] = 0;
	while (left) {
		for (int i = 0; i < n; i++) {
			int st;
			if (done[i] || pids[i] <= 0) {
				if (!done[i]) {
					done[i] = 1;
					left--;
				}
				continue;
			}
			pid_t r = waitpid(pids[i], &st, WNOHANG);
			if (r == 0)
				continue;
			done[i] = 1;
			left--;
			if (r < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
				bad = 1;
				if (!err[0] && r > 0 && WIFSIGNALED(st))
					snprintf(err, errlen, "child killed by signal %d (%s)",
						 WTERMSIG(st), strsignal(WTERMSIG(st)));
				else if (!err[0])
					snprintf(err, errlen, "child failed");
			}
		}
		if (!left)
			break;
		uint64_t t = now_ns();
		if (t >= deadline) {
			for (int i = 0; i < n; i++)
				if (!done[i] && pids[i] > 0)
					kill(pids[i], SIGKILL);
			for (int i = 0; i < n; i++)
				if (!done[i] && pids[i] > 0)
					waitpid(pids[i], NULL, 0);
			snprintf(err, errlen, "timed out after %.0f s (hung?)", timeout_s);
			return -1;
		}
		uint64_t wait = deadline - t;
		if (wait > 200000000ULL)
			wait = 200000000ULL;
		struct timespec ts = { 0, (long)wait };
		sigtimedwait(&chld, NULL, &ts);
	}
	return bad ? -1 : 0;
}

static double run_timeout(void)
{
	return B.quick ? 60 : 600;
}

/* ------------------------------------------------------------------ */
/* Jobs: what the children of one run do                               */

struct job {
	struct chan c[REPS * MAX_ROWS];
	int nchan;
	size_t wsize;
	uint64_t per_writer;
	uint64_t total;          /* bytes (stream) or messages (msgrate) */
	int nwriters;
	int idx;
	uint64_t count, warm, gap_ns;
	uint64_t budget_ns;      /* writers stop early after this long (0: never) */
	bool window;             /* measure only while every writer writes */
};

static void barrier(int n)
{
	atomic_fetch_add(&S->ready, 1);
	while (atomic_load(&S->ready) < n)
		sched_yield();
}

static int stream_writer(void *arg)
{
	struct job *j = arg;
	struct chan *c = &j->c[0];
	size_t pp = 0, n = j->wsize;
	uint64_t done = 0, since = 0;

	chan_close_side(c, RD);
	barrier(j->nwriters + 1);
	uint64_t t0 = now_ns();
	S->t_start[j->idx] = t0;
	bool counted = false;
	while (done < j->per_writer) {
		if (chan_write(c, pattern + pp, n) < 0)
			return child_fail("%s writer: %s", mech_names[c->mech], strerror(errno));
		pp += n;
		if (pp >= PAT_PERIOD)
			pp %= PAT_PERIOD;
		done += n;
		/* Running, for writers-N's window, once it has written a ring's
		 * worth: its first pass through the ring (see window_mark()). */
		if (!counted && done >= c->cap) {
			atomic_fetch_add(&S->running, 1);
			counted = true;
		}
		/* A budget: look at the clock every 64 KiB (once per MiB took
		 * 50-90 ms of 64-byte writes through a socket), stop at it. */
		if (j->budget_ns && (since += n) >= 64 * KiB) {
			since = 0;
			if (now_ns() - t0 >= j->budget_ns)
				break;
		}
	}
	atomic_fetch_add(&S->finished, 1);
	S->written[j->idx] = done;
	chan_close_side(c, WR);
	return 0;
}

/*
 * writers-N: open the window when every writer has written a ring's worth,
 * close it when the first is done.  Forking, starting and ending eight
 * processes took about 10 ms here, as long as the whole gigabyte took at
 * 20 GB/s: the stretch where all write is what the test is about.  A
 * writer's first pass through a ringpipe maps the ring's pages into it, a
 * page fault per 4 KiB at some 15 us each on the guest of 2026-11-29: for
 * seven more processes 3-4% of a 0.1 s window (5% of --quick's 70 ms).
 */
static void window_mark(const struct job *j, uint64_t pos, int *state)
{
	if (*state == 0 && atomic_load_explicit(&S->finished, memory_order_relaxed) == 0 &&
	    atomic_load_explicit(&S->running, memory_order_relaxed) == j->nwriters) {
		S->win_t0 = now_ns();
		S->win_b0 = pos;
		*state = 1;
	} else if (*state == 1 &&
		   atomic_load_explicit(&S->finished, memory_order_relaxed) > 0) {
		S->win_t1 = now_ns();
		S->win_b1 = pos;
		*state = 2;
	}
}

static int stream_reader(void *arg)
{
	struct job *j = arg;
	struct chan *c = &j->c[0];
	uint64_t pos = 0, sum = 0;
	int win = 0;

	chan_close_side(c, WR);
	memset(rbuf, 0, RBUF);
	atomic_fetch_add(&S->ready, 1);
	for (;;) {
		size_t n;
		if (c->mech == M_RPZC) {
			errno = 0;
			const unsigned char *p = rp_read_peek(c->rp[RD], &n);
			if (!p) {
				if (errno)
					return child_fail("rp_read_peek: %s", strerror(errno));
				break;
			}
			sum += csum(p, n, pos);
			if (rp_read_consume(c->rp[RD], n) < 0)
				return child_fail("rp_read_consume: %s", strerror(errno));
		} else if (is_msg_mech(c->mech)) {
			/* One whole message per receive, each exactly wsize bytes. */
			ssize_t r = chan_recv_frame(c, rbuf, RBUF);
			if (r < 0) {
				if (errno == ENODATA)
					break;
				return child_fail("%s reader: %s", mech_names[c->mech], strerror(errno));
			}
			if ((size_t)r != j->wsize)
				return child_fail("%s reader: a message of %zd bytes, not %zu",
						  mech_names[c->mech], r, j->wsize);
			n = (size_t)r;
			sum += csum(rbuf, n, pos);
		} else {
			ssize_t r = chan_read(c, rbuf, RBUF);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return child_fail("%s reader: %s", mech_names[c->mech], strerror(errno));
			}
			if (r == 0)
				break;
			n = (size_t)r;
			sum += csum(rbuf, n, pos);
		}
		pos += n;
		if (j->window)
			window_mark(j, pos, &win);
	}
	S->t_end = now_ns();          /* EOF: every writer is done */
	if (win == 1) {               /* the last bytes came with the EOF */
		S->win_t1 = S->t_end;
		S->win_b1 = pos;
	}
	S->bytes = pos;
	S->sum = sum;
	return 0;
}

static void make_msg(unsigned char *m, uint64_t seq)
{
	memcpy(m, pattern + 8, MSG);
	memcpy(m, &seq, 8);
}

static int check_msg(const unsigned char *m, uint64_t seq)
{
	uint64_t got;
	memcpy(&got, m, 8);
	return got == seq && !memcmp(m + 8, pattern + 16, MSG - 8);
}

static int msg_writer(void *arg)
{
	struct job *j = arg;
	struct chan *c = &j->c[0];
	unsigned char m[MSG];

	uint64_t i;

	chan_close_side(c, RD);
	barrier(2);
	uint64_t t0 = now_ns();
	S->t_start[0] = t0;
	for (i = 0; i < j->total; i++) {
		make_msg(m, i);
		if (chan_write(c, m, MSG) < 0)
			return child_fail("%s writer: %s", mech_names[c->mech], strerror(errno));
		if (j->budget_ns && (i & 1023) == 1023 && now_ns() - t0 >= j->budget_ns) {
			i++;
			break;
		}
	}
	S->written[0] = i;
	/* A message queue has no EOF: end with a message marked "last". */
	if (c->mech == M_MQ) {
		make_msg(m, UINT64_MAX);
		if (chan_write(c, m, MSG) < 0)
			return child_fail("%s writer: %s", mech_names[c->mech], strerror(errno));
	}
	chan_close_side(c, WR);
	return 0;
}

static int msg_reader(void *arg)
{
	struct job *j = arg;
	struct chan *c = &j->c[0];
	unsigned char m[MSG];

	uint64_t i;

	chan_close_side(c, WR);
	atomic_fetch_add(&S->ready, 1);
	for (i = 0;; i++) {
		int r = chan_recv_msg(c, m);
		if (r < 0)
			return child_fail("%s reader, message %" PRIu64 ": %s", mech_names[c->mech],
					  i, strerror(errno));
		if (r == 0 || (c->mech == M_MQ && check_msg(m, UINT64_MAX)))
			break;
		if (!check_msg(m, i))
			return child_fail("%s reader: message %" PRIu64 " corrupt or out of order",
					  mech_names[c->mech], i);
	}
	S->t_end = now_ns();
	S->bytes = i;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Ping-pong: c[0] carries pings, c[1] pongs. */
static int pinger(void *arg)
{
	struct job *j = arg;
	struct chan *ping = &j->c[0], *pong = &j->c[1];
	unsigned char m[MSG];
	uint64_t *lat = malloc(j->count * sizeof(*lat));

	if (!lat)
		return child_fail("out of memory");
	chan_close_side(ping, RD);
	chan_close_side(pong, WR);
	barrier(2);
	for (uint64_t i = 0; i < j->warm + j->count; i++) {
		if (j->gap_ns)
			sleep_ns(j->gap_ns);
		make_msg(m, i);
		uint64_t t0 = now_ns();
		if (chan_write(ping, m, MSG) < 0)
			return child_fail("%s ping: %s", mech_names[ping->mech], strerror(errno));
		int r = chan_recv_msg(pong, m);
		uint64_t t1 = now_ns();
		if (r <= 0)
			return child_fail("%s pong: %s", mech_names[ping->mech],
					  r ? strerror(errno) : "EOF");
		if (!check_msg(m, i))
			return child_fail("%s: pong %" PRIu64 " corrupt", mech_names[ping->mech], i);
		if (i >= j->warm)
			lat[i - j->warm] = t1 - t0;
	}
	qsort(lat, j->count, sizeof(*lat), cmp_u64);
	S->p50 = lat[j->count / 2] / 1000.0;
	uint64_t k = (j->count * 99 + 99) / 100;
	S->p99 = lat[k ? k - 1 : 0] / 1000.0;
	free(lat);
	chan_close_side(ping, WR);
	return 0;
}

static int ponger(void *arg)
{
	struct job *j = arg;
	struct chan *ping = &j->c[0], *pong = &j->c[1];
	unsigned char m[MSG];

	chan_close_side(ping, WR);
	chan_close_side(pong, RD);
	atomic_fetch_add(&S->ready, 1);
	for (uint64_t i = 0; i < j->warm + j->count; i++) {
		int r = chan_recv_msg(ping, m);
		if (r <= 0)
			return child_fail("%s ponger: %s", mech_names[ping->mech],
					  r ? strerror(errno) : "EOF");
		if (chan_write(pong, m, MSG) < 0)
			return child_fail("%s ponger: %s", mech_names[ping->mech], strerror(errno));
	}
	return 0;
}

/* One idle reader: blocked on its empty channel c[idx] until released. */
static int idle_reader(void *arg)
{
	struct job *j = arg;
	unsigned char m[RBUF < 4096 ? RBUF : 4096];

	for (int i = 0; i < j->nchan; i++) {
		chan_close_side(&j->c[i], WR);
		if (i != j->idx)
			chan_close(&j->c[i]);
	}
	struct chan *c = &j->c[j->idx];
	atomic_fetch_add(&S->ready, 1);
	uint64_t c0 = cpu_ns(), t0 = now_ns();
	ssize_t r;
	if (c->mech == M_MQ) {
		r = mq_receive(c->mq, (char *)m, MSG, NULL);
	} else {
		do
			r = chan_read(c, m, sizeof(m));
		while (r < 0 && errno == EINTR);
	}
	uint64_t c1 = cpu_ns(), t1 = now_ns();
	if (r <= 0)
		return child_fail("%s idle reader: %s", mech_names[c->mech],
				  r ? strerror(errno) : "EOF");
	S->v[j->idx] = 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
	return 0;
}

static int memcpy_child(void *arg)
{
	struct job *j = arg;
	uint64_t ws = j->per_writer;         /* working set of each buffer */
	unsigned char *src = mmap(NULL, ws, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *dst = mmap(NULL, ws, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (src == MAP_FAILED || dst == MAP_FAILED)
		return child_fail("mmap %" PRIu64 ": %s", ws, strerror(errno));
	memset(src, 0x5a, ws);
	memset(dst, 0xa5, ws);
	for (uint64_t off = 0; off < ws; off += j->wsize)   /* warm up */
		memcpy(dst + off, src + off, j->wsize);
	uint64_t off = 0, t0 = now_ns();
	for (uint64_t done = 0; done < j->total; done += j->wsize) {
		memcpy(dst + off, src + off, j->wsize);
		__asm__ __volatile__("" ::: "memory");
		off += j->wsize;
		if (off >= ws)
			off = 0;
	}
	uint64_t t1 = now_ns();
	if (dst[ws - 1] != 0x5a)
		return child_fail("memcpy did not copy");
	S->v[0] = (double)j->total / (double)(t1 - t0);   /* bytes/ns = GB/s */
	return 0;
}

/* ------------------------------------------------------------------ */
/* Runs: one measurement each, returns 0 and the value                */

static void reset_shm(void)
{
	memset(S, 0, sizeof(*S));
}

static int finish(pid_t *pids, int n, struct job *j, const char *what, int mech)
{
	char err[200];

	/* The parent's copies go first: readers see EOF when the writers close. */
	for (int i = 0; i < j->nchan; i++)
		chan_close(&j->c[i]);
	int r = reap(pids, n, run_timeout(), err, sizeof(err));
	if (S->err[0]) {
		failure("%s %s: %s", what, mech_names[mech], S->err);
		return -1;
	}
	if (r < 0) {
		failure("%s %s: %s", what, mech_names[mech], err);
		return -1;
	}
	return 0;
}

/* Stream `total` bytes in `wsize` writes from `nw` writers; GB/s over the
 * whole run, or with `window` while every writer writes (window_mark()). */
static int run_stream(int mech, uint64_t cap, size_t wsize, uint64_t total,
		      int nw, uint64_t budget_ns, const char *what, bool window,
		      double *out)
{
	static struct job j;
	pid_t pids[MAX_WRITERS + 1];
	char err[200];

	memset(&j, 0, sizeof(j));
	reset_shm();
	j.wsize = wsize;
	j.nwriters = nw;
	j.per_writer = (total / nw + wsize - 1) / wsize * wsize;
	j.total = j.per_writer * nw;
	j.budget_ns = budget_ns;
	j.window = window;
	if (chan_open(&j.c[0], mech, cap, err, sizeof(err)) < 0) {
		note("%s %s skipped: %s", what, mech_names[mech], err);
		return -1;
	}
	j.nchan = 1;
	pids[0] = spawn(B.cpu_r, stream_reader, &j);
	for (int i = 0; i < nw; i++) {
		j.idx = i;
		pids[i + 1] = spawn(B.cpu_w, stream_writer, &j);
	}
	for (int i = 0; i <= nw; i++)
		if (pids[i] < 0)
			child_fail("fork: %s", strerror(errno));
	if (finish(pids, nw + 1, &j, what, mech) < 0)
		return -1;
	uint64_t want = 0, sent = 0;
	for (int i = 0; i < nw; i++) {
		want += expected_sum(S->written[i]);
		sent += S->written[i];
	}
	if (S->bytes != sent || S->sum != want || !sent) {
		failure("%s %zu B %s: reader got %" PRIu64 " of %" PRIu64 " bytes, checksum %s",
			what, wsize, mech_names[mech], S->bytes, sent,
			S->sum == want ? "ok" : "MISMATCH");
		return -1;
	}
	uint64_t t0 = S->t_start[0];
	for (int i = 1; i < nw; i++)
		if (S->t_start[i] < t0)
			t0 = S->t_start[i];
	if (S->t_end <= t0)
		return -1;
	if (window) {
		if (S->win_t1 <= S->win_t0) {
			failure("%s %s: no stretch in which all %d writers wrote",
				what, mech_names[mech], nw);
			return -1;
		}
		*out = (double)(S->win_b1 - S->win_b0) / (double)(S->win_t1 - S->win_t0);
		return 0;
	}
	*out = (double)sent / (double)(S->t_end - t0);
	return 0;
}

static int run_msgrate(int mech, uint64_t cap, uint64_t count, uint64_t budget_ns, double *out)
{
	static struct job j;
	pid_t pids[2];
	char err[200];

	memset(&j, 0, sizeof(j));
	reset_shm();
	j.total = count;
	j.budget_ns = budget_ns;
	if (chan_open(&j.c[0], mech, cap, err, sizeof(err)) < 0) {
		note("msgrate %s skipped: %s", mech_names[mech], err);
		return -1;
	}
	j.nchan = 1;
	pids[0] = spawn(B.cpu_r, msg_reader, &j);
	pids[1] = spawn(B.cpu_w, msg_writer, &j);
	if (finish(pids, 2, &j, "msgrate", mech) < 0)
		return -1;
	if (S->bytes != S->written[0] || !S->bytes) {
		failure("msgrate %s: %" PRIu64 " messages sent, %" PRIu64 " received",
			mech_names[mech], S->written[0], S->bytes);
		return -1;
	}
	if (S->t_end <= S->t_start[0])
		return -1;
	*out = (double)S->bytes * 1e9 / (double)(S->t_end - S->t_start[0]);
	return 0;
}

static int run_rtt(int mech, uint64_t count, uint64_t warm, uint64_t gap,
		   double *p50, double *p99)
{
	static struct job j;
	pid_t pids[2];
	char err[200];
	const char *what = gap ? "rtt-sleeping" : "rtt";

	memset(&j, 0, sizeof(j));
	reset_shm();
	j.count = count;
	j.warm = warm;
	j.gap_ns = gap;
	for (int i = 0; i < 2; i++) {
		if (chan_open(&j.c[i], mech, 0, err, sizeof(err)) < 0) {
			note("%s %s skipped: %s", what, mech_names[mech], err);
			if (i)
				chan_close(&j.c[0]);
			return -1;
		}
		j.nchan++;
	}
	pids[0] = spawn(B.cpu_r, ponger, &j);
	pids[1] = spawn(B.cpu_w, pinger, &j);
	if (finish(pids, 2, &j, what, mech) < 0)
		return -1;
	*p50 = S->p50;
	*p99 = S->p99;
	return 0;
}

/* `reps` idle readers of each mechanism in `mechs`, side by side. */
static int run_idle(const int *mechs, int nm, int reps, double secs, double *out)
{
	static struct job j;
	pid_t pids[MAX_ROWS * REPS];
	int n = nm * reps;
	char err[200];

	memset(&j, 0, sizeof(j));
	reset_shm();
	for (int i = 0; i < n; i++) {
		if (chan_open(&j.c[i], mechs[i / reps], 0, err, sizeof(err)) < 0) {
			note("idle-cpu %s skipped: %s", mech_names[mechs[i / reps]], err);
			for (int k = 0; k < i; k++)
				chan_close(&j.c[k]);
			return -1;
		}
		j.nchan++;
	}
	for (int i = 0; i < n; i++) {
		j.idx = i;
		pids[i] = spawn(B.cpu_r, idle_reader, &j);
	}
	uint64_t deadline = now_ns() + 10000000000ULL;
	while (atomic_load(&S->ready) < n && now_ns() < deadline)
		sleep_ns(1000000);
	sleep_ns((uint64_t)(secs * 1e9));
	unsigned char m[MSG];
	make_msg(m, 0);
	for (int i = 0; i < n; i++) {
		chan_write(&j.c[i], m, MSG);
		chan_close_side(&j.c[i], RD);
	}
	if (finish(pids, n, &j, "idle-cpu", mechs[0]) < 0)
		return -1;
	memcpy(out, S->v, n * sizeof(double));
	return 0;
}

static int run_memcpy(uint64_t ws, uint64_t total, double *out)
{
	static struct job j;
	pid_t pid;

	memset(&j, 0, sizeof(j));
	reset_shm();
	j.wsize = MiB;
	j.per_writer = ws;
	j.total = total;
	pid = spawn(B.cpu_w, memcpy_child, &j);
	if (finish(&pid, 1, &j, "stream", M_MEMCPY) < 0)
		return -1;
	*out = S->v[0];
	return 0;
}

/* ------------------------------------------------------------------ */
/* Selection, statistics, results                                     */

static int named_test(const char *name);

static int want_mech(int m)
{
	return (B.mechs >> m) & 1;
}

/* --test T matches a test name exactly, or up to a '-': "rtt" selects
 * rtt-p50, rtt-p99 and rtt-sleeping, "writers" every writers-N. */
static int want_test(const char *name)
{
	if (!B.ntests)
		return 1;
	return named_test(name);
}

/* Tests that --quick leaves out unless --test names them. */
static int want_extra_test(const char *name)
{
	if (!B.quick)
		return want_test(name);
	return B.ntests && named_test(name);
}

static int named_test(const char *name)
{
	for (int i = 0; i < B.ntests; i++) {
		size_t l = strlen(B.tests[i]);
		if (!strcmp(B.tests[i], name) ||
		    (!strncmp(B.tests[i], name, l) && name[l] == '-'))
			return 1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void add_stats(int mech, const char *test, uint64_t size, uint64_t cap,
		      const char *unit, double med, double min, double max, int runs)
{
	if (B.nres >= (int)(sizeof(B.res) / sizeof(B.res[0])))
		return;
	struct result *r = &B.res[B.nres++];
	r->mech = mech;
	snprintf(r->test, sizeof(r->test), "%s", test);
	r->size = size;
	r->cap = cap;
	r->unit = unit;
	r->med = med;
	r->min = min;
	r->max = max;
	r->runs = runs;
}

static void add_result(int mech, const char *test, uint64_t size, uint64_t cap,
		       const char *unit, const double *v, int n)
{
	if (n <= 0 || !want_test(test) || B.nres >= (int)(sizeof(B.res) / sizeof(B.res[0])))
		return;
	double s[64];
	memcpy(s, v, n * sizeof(double));
	qsort(s, n, sizeof(double), cmp_double);
	for (int i = 0; i < n; i++)
		if (!isfinite(s[i]))
			return;
	add_stats(mech, test, size, cap, unit, n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2,
		  s[0], s[n - 1], n);
}

static const struct result *find(int mech, const char *test, uint64_t size, uint64_t cap)
{
	for (int i = 0; i < B.nres; i++) {
		const struct result *r = &B.res[i];
		if (r->mech == mech && !strcmp(r->test, test) &&
		    (size == (uint64_t)-1 || r->size == size) &&
		    (cap == (uint64_t)-1 || r->cap == cap))
			return r;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The tests                                                          */

struct row {
	int mech;
	uint64_t cap;
	double v[REPS];
	double v2[REPS];
	int n;
	int dead;
};

static int rows_for(struct row *rows, const int *mechs, const uint64_t *caps, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		if (want_mech(mechs[i])) {
			memset(&rows[k], 0, sizeof(rows[k]));
			rows[k].mech = mechs[i];
			rows[k].cap = caps[i];
			k++;
		}
	return k;
}

static void test_stream(void)
{
	static const size_t sizes[] = { 64, 4 * KiB, 64 * KiB, MiB };
	static const int mechs[] = { M_KPIPE, M_KBIG, M_UNIX, M_RP, M_RP, M_RPZC, M_RPZC,
				     M_BARE, M_BARE, M_KFRAMED, M_CONN, M_CONN };
	static const uint64_t caps[] = { 64 * KiB, BIG_CAP, 0, 64 * KiB, BIG_CAP, 64 * KiB, BIG_CAP,
					 64 * KiB, BIG_CAP, 64 * KiB, 64 * KiB, BIG_CAP };
	struct row rows[MAX_ROWS];

	if (!want_test("stream"))
		return;
	if (want_mech(M_MEMCPY)) {
		struct { uint64_t ws, total; } mc[2] = {
			{ MiB, B.quick ? GiB : 4 * GiB },
			{ B.quick ? 64 * MiB : 256 * MiB, B.quick ? GiB / 2 : 2 * GiB },
		};
		for (int k = 0; k < 2; k++) {
			double v[REPS];
			int n = 0;
			for (int rep = 0; rep < REPS; rep++) {
				progress("stream", MiB, M_MEMCPY, mc[k].ws, rep);
				if (run_memcpy(mc[k].ws, mc[k].total, &v[n]) == 0) {
					run_log("stream", MiB, M_MEMCPY, mc[k].ws, rep, v[n]);
					n++;
				}
			}
			if (n == REPS)
				add_result(M_MEMCPY, "stream", MiB, mc[k].ws, "GB/s", v, n);
		}
	}
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t w = sizes[s];
		uint64_t total = w == 64 ? STREAM_SMALL : STREAM_BYTES;
		uint64_t budget = w == 64 ? STREAM_SMALL_BUDGET : STREAM_BUDGET;
		int nr = rows_for(rows, mechs, caps, 12);
		for (int rep = 0; rep < REPS; rep++)
			for (int i = 0; i < nr; i++) {
				struct row *r = &rows[i];
				if (r->dead)
					continue;
				/* Messages (one per write) only at 64 KiB and 1 MiB. */
				if (is_msg_mech(r->mech) && w < 64 * KiB)
					continue;
				if (r->mech == M_RPZC && w > r->cap) {
					note("stream %zu B ringpipe-zerocopy at %" PRIu64
					     " KiB capacity skipped: a reservation cannot exceed the capacity",
					     w, r->cap / KiB);
					r->dead = 1;
					continue;
				}
				progress("stream", w, r->mech, r->cap, rep);
				if (run_stream(r->mech, r->cap, w, total, 1, budget, "stream", false,
					       &r->v[r->n]) == 0) {
					run_log("stream", w, r->mech, r->cap, rep, r->v[r->n]);
					r->n++;
				}
				else
					r->dead = 1;
			}
		for (int i = 0; i < nr; i++)
			if (!rows[i].dead)
				add_result(rows[i].mech, "stream", w,
					   rows[i].mech == M_UNIX ? 0 : rows[i].cap,
					   "GB/s", rows[i].v, rows[i].n);
	}
}

static void test_msgrate(void)
{
	static const int mechs[] = { M_KPIPE, M_UNIX, M_MQ, M_RP, M_RPZC, M_BARE,
				     M_KFRAMED, M_CONN, M_CONN };
	static const uint64_t caps[] = { 64 * KiB, 0, 0, 64 * KiB, 64 * KiB, 64 * KiB,
					 64 * KiB, 64 * KiB, BIG_CAP };
	struct row rows[MAX_ROWS];
	uint64_t count = MSG_COUNT;

	if (!want_test("msgrate"))
		return;
	int nr = rows_for(rows, mechs, caps, 9);
	for (int rep = 0; rep < REPS; rep++)
		for (int i = 0; i < nr; i++) {
			struct row *r = &rows[i];
			if (r->dead || (r->mech == M_MQ && !B.mq_ok)) {
				r->dead = 1;
				continue;
			}
			progress("msgrate", MSG, r->mech, r->cap, rep);
			/* cap: only ringpipe-conn's rows differ (64 KiB or 1 MiB ring);
			 * the others open their default channel, as before. */
			if (run_msgrate(r->mech, r->mech == M_CONN ? r->cap : 0, count,
					MSG_BUDGET, &r->v[r->n]) == 0) {
				run_log("msgrate", MSG, r->mech, r->cap, rep, r->v[r->n]);
				r->n++;
			}
			else
				r->dead = 1;
		}
	for (int i = 0; i < nr; i++)
		if (!rows[i].dead)
			add_result(rows[i].mech, "msgrate", MSG, rows[i].cap, "msg/s",
				   rows[i].v, rows[i].n);
}

static void test_rtt(int sleeping)
{
	/* Not the bare ring asleep: it spins, it never sleeps. */
	static const int mechs[] = { M_KPIPE, M_UNIX, M_MQ, M_RP, M_RPZC, M_BARE };
	static const uint64_t caps[] = { 64 * KiB, 0, 0, 64 * KiB, 64 * KiB, 64 * KiB };
	struct row rows[MAX_ROWS];
	uint64_t count, warm, gap = 0;

	if (sleeping) {
		if (!want_test("rtt-sleeping"))
			return;
		count = SLEEPING_COUNT;
		warm = 5;
		gap = SLEEP_GAP_NS;
	} else {
		if (!want_test("rtt-p50") && !want_test("rtt-p99"))
			return;
		count = RTT_COUNT;
		warm = RTT_WARM;
	}
	const char *name = sleeping ? "rtt-sleeping" : "rtt-p50";
	int nr = rows_for(rows, mechs, caps, sleeping ? 5 : 6);
	for (int rep = 0; rep < REPS; rep++)
		for (int i = 0; i < nr; i++) {
			struct row *r = &rows[i];
			if (r->dead || (r->mech == M_MQ && !B.mq_ok)) {
				r->dead = 1;
				continue;
			}
			progress(name, MSG, r->mech, r->cap, rep);
			if (run_rtt(r->mech, count, warm, gap, &r->v[r->n], &r->v2[r->n]) == 0) {
				run_log(name, MSG, r->mech, r->cap, rep, r->v[r->n]);
				r->n++;
			}
			else
				r->dead = 1;
		}
	for (int i = 0; i < nr; i++) {
		if (rows[i].dead)
			continue;
		if (sleeping) {
			add_result(rows[i].mech, "rtt-sleeping", MSG, rows[i].cap, "us",
				   rows[i].v, rows[i].n);
		} else {
			add_result(rows[i].mech, "rtt-p50", MSG, rows[i].cap, "us",
				   rows[i].v, rows[i].n);
			add_result(rows[i].mech, "rtt-p99", MSG, rows[i].cap, "us",
				   rows[i].v2, rows[i].n);
		}
	}
}

static void test_idle(void)
{
	static const int all[] = { M_KPIPE, M_UNIX, M_MQ, M_RP };
	static const uint64_t caps[] = { 64 * KiB, 0, 0, 64 * KiB };
	int mechs[4], nm = 0;
	double v[MAX_ROWS * REPS];
	double secs = IDLE_SECS;

	if (!want_test("idle-cpu"))
		return;
	for (int i = 0; i < 4; i++)
		if (want_mech(all[i]) && (all[i] != M_MQ || B.mq_ok))
			mechs[nm++] = all[i];
	if (!nm)
		return;
	progress("idle-cpu", 0, mechs[0], 0, 0);
	if (run_idle(mechs, nm, REPS, secs, v) < 0)
		return;
	for (int i = 0; i < nm; i++) {
		uint64_t cap = 0;
		for (int k = 0; k < 4; k++)
			if (all[k] == mechs[i])
				cap = caps[k];
		add_result(mechs[i], "idle-cpu", 0, cap, "%", v + i * REPS, REPS);
	}
}

/*
 * N writers into one pipe, each writing until its time is up (up to
 * WRITERS_BYTES), measured while all of them write.  Time-bound, not a
 * share of a fixed total: a writer sharing its CPU writes 1/N of a
 * gigabyte within a time slice or two, so the writers would take turns
 * one after the other and the test would measure starting and ending
 * processes.
 */
static void test_writers(void)
{
	static const int mechs[] = { M_KPIPE, M_RP };
	static const uint64_t caps[] = { 64 * KiB, 64 * KiB };
	static const int ns[] = { 1, 2, 4, 8 };
	struct row rows[4][MAX_ROWS];
	uint64_t budget = B.quick ? STREAM_BUDGET : WRITERS_BUDGET;
	char name[24];
	int nr = 0;

	if (!want_test("writers-1") && !want_test("writers-2") &&
	    !want_test("writers-4") && !want_test("writers-8"))
		return;
	for (int k = 0; k < 4; k++)
		nr = rows_for(rows[k], mechs, caps, 2);
	for (int rep = 0; rep < REPS; rep++)
		for (int k = 0; k < 4; k++) {
			snprintf(name, sizeof(name), "writers-%d", ns[k]);
			if (!want_test(name))
				continue;
			for (int i = 0; i < nr; i++) {
				struct row *r = &rows[k][i];
				if (r->dead)
					continue;
				progress(name, 4 * KiB, r->mech, r->cap, rep);
				if (run_stream(r->mech, r->cap, 4 * KiB,
					       WRITERS_BYTES * (uint64_t)ns[k], ns[k],
					       budget, name, true,
					       &r->v[r->n]) == 0) {
					run_log(name, 4 * KiB, r->mech, r->cap, rep, r->v[r->n]);
					r->n++;
				}
				else
					r->dead = 1;
			}
		}
	for (int k = 0; k < 4; k++) {
		snprintf(name, sizeof(name), "writers-%d", ns[k]);
		for (int i = 0; i < nr; i++)
			if (!rows[k][i].dead)
				add_result(rows[k][i].mech, name, 4 * KiB, rows[k][i].cap,
					   "GB/s", rows[k][i].v, rows[k][i].n);
	}
}

/*
 * Throughput against capacity: 64 KiB writes through ringpipe and through
 * a kernel pipe set to the same capacity with F_SETPIPE_SZ (beyond
 * /proc/sys/fs/pipe-max-size only with CAP_SYS_RESOURCE: such rows are
 * skipped with a note).
 */
static void test_capacity(void)
{
	static const uint64_t caps[] = { 4 * KiB, 64 * KiB, MiB, 16 * MiB, 64 * MiB };
	enum { NCAPS = sizeof(caps) / sizeof(caps[0]) };
	struct row rows[NCAPS][2];
	int nr = 0;

	if (!want_extra_test("capacity"))
		return;
	for (int k = 0; k < NCAPS; k++) {
		static const int mechs[] = { M_KBIG, M_RP };
		uint64_t c[2] = { caps[k], caps[k] };
		nr = rows_for(rows[k], mechs, c, 2);
	}
	for (int rep = 0; rep < REPS; rep++)
		for (int k = 0; k < NCAPS; k++)
			for (int i = 0; i < nr; i++) {
				struct row *r = &rows[k][i];
				if (r->dead)
					continue;
				progress("capacity", 64 * KiB, r->mech, r->cap, rep);
				if (run_stream(r->mech, r->cap, 64 * KiB, STREAM_BYTES, 1,
					       B.quick ? STREAM_BUDGET : 2000000000ULL, "capacity", false,
					       &r->v[r->n]) == 0) {
					run_log("capacity", 64 * KiB, r->mech, r->cap, rep, r->v[r->n]);
					r->n++;
				} else {
					r->dead = 1;
				}
			}
	for (int k = 0; k < NCAPS; k++)
		for (int i = 0; i < nr; i++)
			if (!rows[k][i].dead)
				add_result(rows[k][i].mech, "capacity", 64 * KiB, rows[k][i].cap,
					   "GB/s", rows[k][i].v, rows[k][i].n);
}

/* Memory per open named pipe, MEM_PIPES of them held (bench_memory.c). */
static void test_memory(void)
{
	static const int mechs[] = { M_KPIPE, M_RP };
	static const uint64_t caps[] = { 64 * KiB, 64 * KiB };
	struct row rows[2];
	char err[200];
	const char *method = NULL;

	if (!want_extra_test("memory"))
		return;
	int nr = rows_for(rows, mechs, caps, 2);
	for (int rep = 0; rep < REPS; rep++)
		for (int i = 0; i < nr; i++) {
			struct row *r = &rows[i];
			if (r->dead)
				continue;
			progress("memory", MSG, r->mech, r->cap, rep);
			if (bench_memory(r->mech == M_KPIPE, MEM_PIPES, r->cap, &r->v[r->n],
					 &method, err, sizeof(err)) == 0) {
				run_log("memory", MSG, r->mech, r->cap, rep, r->v[r->n]);
				r->n++;
			} else {
				failure("memory %s: %s", mech_names[r->mech], err);
				r->dead = 1;
			}
		}
	for (int i = 0; i < nr; i++)
		if (!rows[i].dead)
			add_result(rows[i].mech, "memory", MSG, rows[i].cap, "KiB",
				   rows[i].v, rows[i].n);
	if (method)
		note("memory: KiB per open named pipe with %d held, both ends open and "
		     "64 bytes queued in each; measured as %s", MEM_PIPES, method);
}

static void add_python(const char *mech, const char *test, uint64_t size, double med,
		       double min, double max, const char *unit, int runs, void *arg)
{
	static const char *const units[] = { "msg/s", "GB/s", "us" };
	int m;

	(void)arg;
	for (m = M_PYRP; m <= M_PYMQ; m++)
		if (!strcmp(mech, mech_names[m]))
			break;
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++)
		if (m <= M_PYMQ && want_mech(m) && !strcmp(unit, units[u]))
			add_stats(m, test, size, 0, units[u], med, min, max, runs);
}

/* ringpipe.Pipe and Queue against multiprocessing's, measured by Python. */
static void test_python(void)
{
	char err[300];

	if (!want_extra_test("python"))
		return;
	if (!want_mech(M_PYRP) && !want_mech(M_PYMP) && !want_mech(M_PYRQ) && !want_mech(M_PYMQ))
		return;
	progress("python", 0, M_PYRP, 0, 0);
	if (bench_python(REPS, B.quick, B.quick ? 300 : 1800, add_python, NULL,
			 err, sizeof(err)) < 0)
		note("python skipped: %s (build it with make, or pip install ./python)", err);
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

static const char *const test_order[] = {
	"stream", "msgrate", "rtt-p50", "rtt-p99", "rtt-sleeping", "idle-cpu",
	"writers-1", "writers-2", "writers-4", "writers-8", "capacity", "memory",
};

static int lower_is_better(const char *unit)
{
	return !strcmp(unit, "us") || !strcmp(unit, "%") || !strcmp(unit, "KiB");
}

static void print_json(void)
{
	printf("{\"results\": [");
	for (int i = 0; i < B.nres; i++) {
		const struct result *r = &B.res[i];
		printf("%s\n  {\"mechanism\": \"%s\", \"test\": \"%s\", \"size\": %" PRIu64
		       ", \"value\": %.6g, \"unit\": \"%s\", \"min\": %.6g, \"max\": %.6g"
		       ", \"runs\": %d",
		       i ? "," : "", mech_names[r->mech], r->test, r->size, r->med,
		       r->unit, r->min, r->max, r->runs);
		if (r->cap)
			printf(", \"capacity\": %" PRIu64, r->cap);
		printf("}");
	}
	printf("\n]}\n");
}

static const char *fmt_size(uint64_t n, char *buf, size_t len)
{
	if (n >= MiB && n % MiB == 0)
		snprintf(buf, len, "%" PRIu64 " MiB", n / MiB);
	else if (n >= KiB && n % KiB == 0)
		snprintf(buf, len, "%" PRIu64 " KiB", n / KiB);
	else
		snprintf(buf, len, "%" PRIu64 " B", n);
	return buf;
}

static const char *fmt_val(double v, const char *unit, char *buf, size_t len)
{
	if (!strcmp(unit, "msg/s")) {
		if (v >= 1e6)
			snprintf(buf, len, "%.2fM", v / 1e6);
		else
			snprintf(buf, len, "%.0fk", v / 1e3);
	} else if (!strcmp(unit, "%")) {
		snprintf(buf, len, "%.4f", v);
	} else if (v >= 100) {
		snprintf(buf, len, "%.0f", v);
	} else if (v >= 10) {
		snprintf(buf, len, "%.1f", v);
	} else if (v >= 1) {
		snprintf(buf, len, "%.2f", v);
	} else {
		snprintf(buf, len, "%.3f", v);
	}
	return buf;
}

/* "times better than base": higher is better whatever the unit. */
static void fmt_ratio(const struct result *r, const struct result *base, char *buf, size_t len)
{
	if (!base || r == base || base->med <= 0 || r->med <= 0) {
		snprintf(buf, len, "%s", r == base ? "1" : "-");
		return;
	}
	double x = lower_is_better(r->unit) ? base->med / r->med : r->med / base->med;
	snprintf(buf, len, x >= 10 ? "%.0fx" : "%.2fx", x);
}

struct target {
	const char *what;
	int mech; const char *test; uint64_t size; uint64_t cap;
	int base_mech; const char *base_test; uint64_t base_cap;  /* base_mech < 0: absolute */
	double goal; int at_most;
};

static const struct target targets[] = {
	{ "stream 64 KiB, 64 KiB capacity, vs kernel-pipe", M_RP, "stream", 64 * KiB, 64 * KiB,
	  M_KPIPE, "stream", 64 * KiB, 5, 0 },
	{ "stream 64 KiB, 1 MiB capacity, vs kernel-pipe-enlarged", M_RP, "stream", 64 * KiB, BIG_CAP,
	  M_KBIG, "stream", BIG_CAP, 4, 0 },
	{ "zero-copy stream 64 KiB at 1 MiB, fraction of memcpy in cache", M_RPZC, "stream", 64 * KiB,
	  BIG_CAP, M_MEMCPY, "stream", MiB, 0.5, 0 },
	{ "stream 64 B vs kernel-pipe", M_RP, "stream", 64, 64 * KiB,
	  M_KPIPE, "stream", 64 * KiB, 20, 0 },
	{ "msgrate 64 B vs kernel-pipe", M_RP, "msgrate", 64, 64 * KiB,
	  M_KPIPE, "msgrate", 64 * KiB, 20, 0 },
	{ "rtt-p50 in us", M_RP, "rtt-p50", 64, 64 * KiB, -1, NULL, 0, 1, 1 },
	{ "rtt-p99 in us", M_RP, "rtt-p99", 64, 64 * KiB, -1, NULL, 0, 5, 1 },
	{ "rtt-sleeping, time vs kernel-pipe", M_RP, "rtt-sleeping", 64, 64 * KiB,
	  M_KPIPE, "rtt-sleeping", 64 * KiB, 1.1, 1 },
	{ "idle-cpu in %", M_RP, "idle-cpu", 0, 64 * KiB, -1, NULL, 0, 1, 1 },
	{ "writers-8 vs writers-1 (ringpipe)", M_RP, "writers-8", 4 * KiB, 64 * KiB,
	  M_RP, "writers-1", 64 * KiB, 1, 0 },
	/* issue 4: messages, both sides at their default capacity (64 KiB) */
	{ "ringpipe-conn msgrate 64 B vs kernel-pipe-framed", M_CONN, "msgrate", 64, 64 * KiB,
	  M_KFRAMED, "msgrate", 64 * KiB, 10, 0 },
	{ "ringpipe-conn stream 1 MiB vs kernel-pipe-framed", M_CONN, "stream", MiB, 64 * KiB,
	  M_KFRAMED, "stream", 64 * KiB, 3, 0 },
	/* issue 6: Python, against multiprocessing in the same run */
	{ "python send_bytes 64 B vs multiprocessing.Pipe", M_PYRP, "msgrate", 64, 0,
	  M_PYMP, "msgrate", 0, 5, 0 },
	{ "python send_bytes 1 MiB vs multiprocessing.Pipe", M_PYRP, "stream", MiB, 0,
	  M_PYMP, "stream", 0, 3, 0 },
	{ "python send/recv small tuple vs multiprocessing.Pipe", M_PYRP, "objrate",
	  (uint64_t)-1, 0, M_PYMP, "objrate", 0, 2, 0 },
	{ "python round trip, time vs multiprocessing.Pipe", M_PYRP, "rtt-p50", 64, 0,
	  M_PYMP, "rtt-p50", 0, 0.05, 1 },
	{ "python Queue put/get vs multiprocessing.Queue", M_PYRQ, "queue", (uint64_t)-1, 0,
	  M_PYMQ, "queue", 0, 3, 0 },
};

/*
 * Other work on the machine skews every figure.  Busy CPU time of the whole
 * machine (/proc/stat) minus our own and our children's (getrusage) is what
 * other processes, or the hypervisor (steal), took while we ran.
 */
struct cpu_snap {
	double busy_s;     /* all CPUs, seconds */
	double ours_s;
	int ok;
};

static double tv_s(struct timeval t)
{
	return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

static void cpu_snap(struct cpu_snap *c)
{
	unsigned long long v[8] = { 0 };
	struct rusage self, kids;
	FILE *f = fopen("/proc/stat", "r");

	c->ok = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		   &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		long hz = sysconf(_SC_CLK_TCK);
		/* user nice system idle iowait irq softirq steal: all but idle, iowait */
		c->busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)(hz > 0 ? hz : 100);
		c->ok = 1;
	}
	fclose(f);
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	c->ours_s = tv_s(self.ru_utime) + tv_s(self.ru_stime) +
		    tv_s(kids.ru_utime) + tv_s(kids.ru_stime);
}

static void load_note(const struct cpu_snap *a, double elapsed)
{
	struct cpu_snap b;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	cpu_snap(&b);
	if (!a->ok || !b.ok || elapsed <= 0 || ncpu <= 0)
		return;
	double other = (b.busy_s - a->busy_s) - (b.ours_s - a->ours_s);
	double pct = 100 * other / (elapsed * (double)ncpu);
	if (pct < 0)
		pct = 0;
	if (pct >= 3)
		note("other processes (or the hypervisor) used %.0f%% of the CPUs during the run: "
		     "figures are disturbed; rerun on an idle machine", pct);
	else
		note("the machine was otherwise idle (%.1f%% of the CPUs used by others)", pct);
}

/* Python's rows, each against multiprocessing's in the same run. */
static void print_python(void)
{
	char a[32], c[32], d[32], e[32], mm[80];
	int any = 0;

	for (int i = 0; i < B.nres; i++) {
		const struct result *r = &B.res[i];
		if (!is_py_mech(r->mech))
			continue;
		if (!any++)
			printf("\nPython, measured by python -m ringpipe.bench in this run "
			       "(ringpipe.Pipe/Queue against multiprocessing's; unpinned):\n"
			       "%-13s %-7s %-21s %10s %-19s %-5s %9s\n", "test", "size",
			       "mechanism", "median", " min-max", "unit", "vs mp");
		int base = r->mech == M_PYRQ || r->mech == M_PYMQ ? M_PYMQ : M_PYMP;
		fmt_ratio(r, find(base, r->test, r->size, (uint64_t)-1), e, sizeof(e));
		fmt_val(r->min, r->unit, c, sizeof(c));
		fmt_val(r->max, r->unit, d, sizeof(d));
		snprintf(mm, sizeof(mm), " %s-%s", c, d);
		printf("%-13s %-7s %-21s %10s %-19s %-5s %9s\n", r->test,
		       fmt_size(r->size, a, sizeof(a)), mech_names[r->mech],
		       fmt_val(r->med, r->unit, c, sizeof(c)), mm, r->unit, e);
	}
}

/*
 * "AMD EPYC (family 23, model 1)": the model name alone named two hosts
 * of very different speed in this project's runs.  From the first CPU's
 * block of /proc/cpuinfo; "unknown CPU" where there is none.
 */
static void cpu_model(char *buf, size_t len)
{
	char line[256], name[128] = "unknown CPU", fam[16] = "", model[16] = "";
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f) && line[0] != '\n') {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		char *v = colon + 1 + (colon[1] == ' ');
		v[strcspn(v, "\n")] = 0;
		if (!strncmp(line, "model name", 10))
			snprintf(name, sizeof(name), "%s", v);
		else if (!strncmp(line, "cpu family", 10))
			snprintf(fam, sizeof(fam), "%s", v);
		else if (!strncmp(line, "model\t", 6))
			snprintf(model, sizeof(model), "%s", v);
	}
	if (f)
		fclose(f);
	if (fam[0] && model[0])
		snprintf(buf, len, "%s (family %s, model %s)", name, fam, model);
	else
		snprintf(buf, len, "%s", name);
}

static void print_human(double elapsed)
{
	char a[32], b[32], c[32], d[32], e[32], f[32], cpu[192];
	struct utsname u;

	uname(&u);
	cpu_model(cpu, sizeof(cpu));
	printf("\nringpipe bench%s: %ld CPUs, %s, %s %s; %s\n", B.quick ? " --quick" : "",
	       sysconf(_SC_NPROCESSORS_ONLN), cpu, u.sysname, u.release, B.pin_note);
	printf("median of %d runs each (min-max); GB/s = 10^9 bytes/s; "
	       "ratios are \"times better than\" (higher is better for every unit)\n",
	       REPS);
	if (want_mech(M_CONN) || want_mech(M_KFRAMED))
		printf("message rows (ringpipe-conn, kernel-pipe-framed; one message per write): "
		       "\"vs kernel\" is against kernel-pipe-framed,\n"
		       "  the same messages over a kernel pipe with a 4-byte length header each "
		       "(as multiprocessing does), not against raw kernel-pipe\n");
	if (B.quick)
		printf("--quick: each stream/msgrate run stops after %.2f s; "
		       "rtt %d round trips, rtt-sleeping %d, idle %.1f s\n",
		       QUICK_NS / 1e9, RTT_COUNT, SLEEPING_COUNT, IDLE_SECS);
	else
		printf("stream runs move 1 GiB (64 B writes: 64 MiB or 3 s); msgrate %d messages "
		       "or 3 s; rtt %d round trips, rtt-sleeping %d, idle %.1f s\n",
		       MSG_COUNT, RTT_COUNT, SLEEPING_COUNT, IDLE_SECS);
	if (want_test("writers-1") || want_test("writers-2") ||
	    want_test("writers-4") || want_test("writers-8"))
		printf("writers-N: N writers, each for %.2g s, measured from when all "
		       "have written a ring's worth until the first stops\n",
		       (double)(B.quick ? STREAM_BUDGET : WRITERS_BUDGET) / 1e9);
	const char *spin = getenv("RINGPIPE_SPIN_NS");
	if (spin)
		printf("RINGPIPE_SPIN_NS=%s\n", spin);
	printf("\n%-13s %-7s %-21s %-8s %10s %-19s %-5s %9s %9s\n", "test", "size",
	       "mechanism", "capacity", "median", " min-max", "unit",
	       "vs kernel", "vs enlgd");
	for (size_t t = 0; t < sizeof(test_order) / sizeof(test_order[0]); t++) {
		int any = 0;
		for (int i = 0; i < B.nres; i++) {
			const struct result *r = &B.res[i];
			if (strcmp(r->test, test_order[t]) || r->mech == M_MEMCPY ||
			    is_py_mech(r->mech))
				continue;
			if (!any++)
				printf("\n");
			/* Message rows compare with messages over a kernel pipe. */
			const struct result *k = find(is_msg_mech(r->mech) ? M_KFRAMED : M_KPIPE,
						      r->test, r->size, (uint64_t)-1);
			const struct result *kb = r->cap == BIG_CAP && !is_msg_mech(r->mech)
				? find(M_KBIG, r->test, r->size, (uint64_t)-1) : NULL;
			/* capacity rows compare with the kernel at the same capacity */
			if (!strcmp(r->test, "capacity"))
				kb = find(M_KBIG, r->test, r->size, r->cap);
			fmt_ratio(r, k, e, sizeof(e));
			if (kb)
				fmt_ratio(r, kb, f, sizeof(f));
			else
				snprintf(f, sizeof(f), " ");
			char mm[80];
			fmt_val(r->min, r->unit, c, sizeof(c));
			fmt_val(r->max, r->unit, d, sizeof(d));
			snprintf(mm, sizeof(mm), " %s-%s", c, d);
			printf("%-13s %-7s %-21s %-8s %10s %-19s %-5s %9s %9s\n", r->test,
			       strcmp(r->test, "idle-cpu") ? fmt_size(r->size, a, sizeof(a)) : "-",
			       mech_names[r->mech], r->cap ? fmt_size(r->cap, b, sizeof(b)) : "-",
			       fmt_val(r->med, r->unit, c, sizeof(c)), mm, r->unit, e, f);
		}
	}

	const struct result *mc = find(M_MEMCPY, "stream", MiB, MiB);
	const struct result *mm = NULL;
	for (int i = 0; i < B.nres; i++)
		if (B.res[i].mech == M_MEMCPY && B.res[i].cap != MiB)
			mm = &B.res[i];
	if (mc || mm) {
		printf("\nmemcpy limit, one core, 1 MiB blocks:");
		if (mc)
			printf(" in cache (1 MiB buffers) %.1f GB/s (%.1f-%.1f)", mc->med, mc->min, mc->max);
		if (mm)
			printf("%s to memory (%s buffers) %.1f GB/s (%.1f-%.1f)", mc ? ";" : "",
			       fmt_size(mm->cap, a, sizeof(a)), mm->med, mm->min, mm->max);
		printf("\n");
		const struct result *best = NULL;
		for (int i = 0; i < B.nres; i++) {
			const struct result *r = &B.res[i];
			if (r->mech == M_RPZC && !strcmp(r->test, "stream")) {
				if (!best || r->med > best->med)
					best = r;
				if ((r->size == MiB || r->size == 64 * KiB) && r->cap == BIG_CAP) {
					printf("ringpipe-zerocopy, %s writes, 1 MiB capacity: %.2f GB/s =",
					       fmt_size(r->size, a, sizeof(a)), r->med);
					if (mc)
						printf(" %.0f%% of memcpy in cache", 100 * r->med / mc->med);
					if (mm)
						printf("%s %.0f%% of memcpy to memory", mc ? "," : "",
						       100 * r->med / mm->med);
					printf("\n");
				}
			}
		}
		if (best && mc)
			printf("best ringpipe-zerocopy row (%s writes, %s capacity): "
			       "%.2f GB/s = %.0f%% of memcpy in cache\n",
			       fmt_size(best->size, a, sizeof(a)), fmt_size(best->cap, b, sizeof(b)),
			       best->med, 100 * best->med / mc->med);
	}

	print_python();

	int header = 0;
	for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
		const struct target *g = &targets[t];
		const struct result *r = find(g->mech, g->test, g->size, g->cap);
		const struct result *base = g->base_mech < 0 ? NULL
			: find(g->base_mech, g->base_test,
			       g->base_mech == M_MEMCPY ? MiB : g->size, g->base_cap);
		if (!r || (g->base_mech >= 0 && !base))
			continue;
		if (!header++)
			printf("\ntargets of issues 3, 4 and 6 (medians):\n");
		double x = base ? r->med / base->med : r->med;
		int ok = g->at_most ? x <= g->goal : x >= g->goal;
		printf("  %-62s %8.3g  (goal %s %g)  %-7s", g->what, x, g->at_most ? "<=" : ">=",
		       g->goal, ok ? "met" : "NOT met");
		/* What the bare ring makes of the same figure: the plain idea
		 * of a ring on this machine, without a pipe's rules. */
		const struct result *bare = find(M_BARE, g->test, g->size, g->cap);
		if (bare && (g->mech == M_RP || g->mech == M_RPZC))
			printf("  bare ring %.3g", base ? bare->med / base->med : bare->med);
		printf("\n");
	}

	if (B.nnotes) {
		printf("\nnotes:\n");
		for (int i = 0; i < B.nnotes; i++)
			printf("  - %s\n", B.notes[i]);
	}
	printf("\ntotal time %.1f s\n", elapsed);
}

/* ------------------------------------------------------------------ */
/* Entry point                                                        */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ringpipe bench [--json] [--quick] [--only MECH[,MECH...]] [--test T[,T...]]\n"
		"  --json     one JSON object {\"results\": [...]} on stdout\n"
		"  --quick    stream, msgrate and writers runs of 70 ms, fewer round trips,\n"
		"             message rows only if --only names them (under 30 s)\n"
		"  --only     mechanisms: ringpipe, ringpipe-zerocopy, kernel-pipe,\n"
		"             kernel-pipe-enlarged, unix-socket, posix-mq, memcpy,\n"
		"             bare-ring (a reference: a minimal ring with no pipe rules),\n"
		"             ringpipe-conn, kernel-pipe-framed (messages: stream, msgrate),\n"
		"             ringpipe-python, mp-pipe, ringpipe-queue, mp-queue (python)\n"
		"  --test     stream, msgrate, rtt (rtt-p50, rtt-p99, rtt-sleeping),\n"
		"             idle-cpu, writers (writers-1, -2, -4, -8), capacity (64 KiB\n"
		"             writes at 4 KiB..64 MiB), memory (per open named pipe, %d held),\n"
		"             python (python -m ringpipe.bench); --quick runs the last three\n"
		"             only when named here\n"
		"every figure is the median of 5 runs\n", MEM_PIPES);
}

static int parse_list(const char *arg, int mechs)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", arg);
	int n = 0;
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save), n++) {
		if (mechs) {
			int m;
			for (m = 0; m < M_COUNT; m++)
				if (!strcmp(tok, mech_names[m]))
					break;
			if (m == M_COUNT) {
				fprintf(stderr, "ringpipe bench: unknown mechanism '%s'\n", tok);
				return -1;
			}
			B.mechs |= 1u << m;
		} else {
			static const char *const known[] = {
				"stream", "msgrate", "rtt", "rtt-p50", "rtt-p99", "rtt-sleeping",
				"idle-cpu", "writers", "writers-1", "writers-2", "writers-4",
				"writers-8", "capacity", "memory", "python",
			};
			size_t k;
			for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
				if (!strcmp(tok, known[k]))
					break;
			if (k == sizeof(known) / sizeof(known[0])) {
				fprintf(stderr, "ringpipe bench: unknown test '%s'\n", tok);
				return -1;
			}
			if (B.ntests < 16)
				snprintf(B.tests[B.ntests++], sizeof(B.tests[0]), "%s", tok);
		}
	}
	if (n == 0) {
		/* Nothing selected would mean everything: a full run. */
		fprintf(stderr, "ringpipe bench: empty %s list\n", mechs ? "--only" : "--test");
		return -1;
	}
	return 0;
}

static void probe_mq(void)
{
	char err[200];
	struct chan c;
	FILE *f = fopen("/proc/sys/fs/mqueue/msg_default", "r");

	B.mq_maxmsg = 10;
	if (f) {
		long v;
		if (fscanf(f, "%ld", &v) == 1 && v > 0)
			B.mq_maxmsg = v;
		fclose(f);
	}
	if (chan_open(&c, M_MQ, 0, err, sizeof(err)) < 0) {
		B.mq_ok = 0;
		note("posix-mq skipped: %s", err);
		return;
	}
	chan_close(&c);
	B.mq_ok = 1;
	note("posix-mq: queues of %ld 64-byte messages (fs.mqueue.msg_default)", B.mq_maxmsg);
	struct stat st;
	if (stat("/dev/mqueue", &st) < 0)
		note("/dev/mqueue is not mounted, but mq_open works: posix-mq measured");
}

int rp_cmd_bench(int argc, char **argv)
{
	memset(&B, 0, sizeof(B));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			B.json = 1;
		} else if (!strcmp(a, "--quick")) {
			B.quick = 1;
		} else if (!strcmp(a, "--only") || !strcmp(a, "--test")) {
			if (i + 1 >= argc) {
				usage(stderr);
				return 2;
			}
			if (parse_list(argv[++i], a[2] == 'o') < 0)
				return 2;
		} else if (!strncmp(a, "--only=", 7) || !strncmp(a, "--test=", 7)) {
			if (parse_list(a + 7, a[2] == 'o') < 0)
				return 2;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "ringpipe bench: unknown argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	/* --quick leaves out the message rows too (5 s more) unless --only
	 * names them: the mechanisms are the byte streams. */
	B.only = B.mechs != 0;
	if (!B.mechs)
		B.mechs = ((1u << M_COUNT) - 1) &
			  ~(B.quick ? 1u << M_CONN | 1u << M_KFRAMED : 0);
	B.progress = isatty(STDERR_FILENO);

	if (setup_buffers() < 0) {
		fprintf(stderr, "ringpipe bench: mmap: %s\n", strerror(errno));
		return 1;
	}

	/* Children are reaped with sigtimedwait; failed writes give EPIPE. */
	sigset_t chld, oldmask;
	struct sigaction dfl = { .sa_handler = SIG_DFL }, ign = { .sa_handler = SIG_IGN };
	struct sigaction old_chld, old_pipe;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigaction(SIGCHLD, &dfl, &old_chld);
	sigaction(SIGPIPE, &ign, &old_pipe);
	sigprocmask(SIG_BLOCK, &chld, &oldmask);

	struct cpu_snap snap0;
	cpu_snap(&snap0);
	uint64_t t0 = now_ns();
	pin_probe();
	if (!B.pin)
		note("%s", B.pin_note);
	if (want_mech(M_MQ))
		probe_mq();

	test_stream();
	test_msgrate();
	test_rtt(0);
	test_rtt(1);
	test_idle();
	test_writers();
	test_capacity();
	test_memory();
	test_python();
	if (B.quick && !B.ntests)
		note("--quick leaves out capacity, memory and python: run ringpipe bench "
		     "without --quick, or name them with --test");
	if (B.quick && !B.only && (want_test("stream") || want_test("msgrate")))
		note("--quick leaves out the message rows (ringpipe-conn, kernel-pipe-framed): "
		     "name them with --only");
	double elapsed = (now_ns() - t0) / 1e9;
	load_note(&snap0, elapsed);
	if (B.progress)
		fprintf(stderr, "\r\033[K");

	if (B.json) {
		print_json();
		for (int i = 0; i < B.nnotes; i++)
			fprintf(stderr, "ringpipe bench: %s\n", B.notes[i]);
		fprintf(stderr, "ringpipe bench: %s; %.1f s\n", B.pin_note, elapsed);
	} else {
		print_human(elapsed);
	}
	fflush(stdout);

	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	sigaction(SIGCHLD, &old_chld, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	munmap(pattern, PAT_LEN);
	munmap(rbuf, RBUF);
	munmap(S, sizeof(*S));
	return B.failures ? 1 : 0;
}

#ifdef RP_BENCH_MAIN
int main(int argc, char **argv)
{
	return rp_cmd_bench(argc, argv);
}
#endif
