/*
 * ring_bound.c - what one 64-byte message per call can cost between two
 * CPUs of this machine, with none of a pipe's rules: a bare ring for one
 * writer and one reader (no lock, no sleeping, no checks), and a kernel
 * pipe beside it in the same run.  docs/DESIGN.md ("Small writes") quotes
 * it as the ceiling for `ringpipe bench --test msgrate`.
 *
 *   make && build/scripts/ring_bound          (x86 only: it pauses)
 *
 * Options: -l  add a lock (CAS and exchange) around each call, as ringpipe's
 *              writers' and readers' locks;
 *          -w  with -l: the writer takes none (only the reader locks);
 *          -f  publish with an exchange (a full barrier), not a plain store;
 *          -p N  a reader that finds the ring empty pauses N times before
 *              it looks again (default 1);
 *          -r  round trips instead: one message each way through two such
 *              rings, RTT_COUNT times ("Round trips" in DESIGN.md);
 *          -P  a waiting reader prefetches the data line at its tail at
 *              every look.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAP   65536
#define MSG   64
#define COUNT 20000000ULL
#define RTT_COUNT 1000000ULL

struct ring {
	_Alignas(64) _Atomic uint64_t head;
	_Alignas(64) _Atomic uint64_t tail;
	_Alignas(64) _Atomic uint32_t wlock;
	_Alignas(64) _Atomic uint32_t rlock;
	_Alignas(64) unsigned char data[CAP];
};

static int locked, wfree, fenced, pauses = 1, rtt, prefetch;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s) < 0)
		perror("sched_setaffinity");
}

static void lock(_Atomic uint32_t *l)
{
	uint32_t z;
	while (z = 0, !atomic_compare_exchange_weak(l, &z, 1))
		;
}

static void publish(_Atomic uint64_t *pos, uint64_t v)
{
	if (fenced)
		atomic_exchange(pos, v);
	else
		atomic_store_explicit(pos, v, memory_order_release);
}

/* Each side keeps the other's index as last seen, as ringpipe does. */
static int put(struct ring *r, uint64_t *tail_seen, const void *m)
{
	if (locked && !wfree)
		lock(&r->wlock);
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	int ok = h + MSG - *tail_seen <= CAP ||
		 h + MSG - (*tail_seen = atomic_load_explicit(&r->tail,
					memory_order_acquire)) <= CAP;
	if (ok) {
		memcpy(r->data + h % CAP, m, MSG);
		publish(&r->head, h + MSG);
	}
	if (locked && !wfree)
		atomic_exchange_explicit(&r->wlock, 0, memory_order_release);
	return ok;
}

static int get(struct ring *r, uint64_t *head_seen, void *m)
{
	if (locked)
		lock(&r->rlock);
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	int ok = *head_seen - t >= MSG ||
		 (*head_seen = atomic_load_explicit(&r->head,
					memory_order_acquire)) - t >= MSG;
	if (ok) {
		memcpy(m, r->data + t % CAP, MSG);
		publish(&r->tail, t + MSG);
	}
	if (locked)
		atomic_exchange_explicit(&r->rlock, 0, memory_order_release);
	return ok;
}

static void get_waiting(struct ring *r, uint64_t *head_seen, void *m)
{
	while (!get(r, head_seen, m)) {
		if (prefetch)
			__builtin_prefetch(r->data + atomic_load_explicit(&r->tail,
						memory_order_relaxed) % CAP);
		for (int k = 0; k < pauses; k++)
			__builtin_ia32_pause();
	}
}

static double run_ring(void)
{
	struct ring *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned char m[MSG] = { 0 };
	uint64_t seen = 0;

	if (r == MAP_FAILED)
		exit(1);
	if (fork() == 0) {
		pin(0);
		for (uint64_t i = 0; i < COUNT; i++) {
			memcpy(m, &i, sizeof(i));
			while (!put(r, &seen, m))
				;
		}
		_exit(0);
	}
	pin(1);
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < COUNT; i++) {
		uint64_t v;
		get_waiting(r, &seen, m);
		memcpy(&v, m, sizeof(v));
		if (v != i) {
			fprintf(stderr, "message %llu corrupt\n", (unsigned long long)i);
			exit(1);
		}
	}
	uint64_t t1 = now_ns();
	wait(NULL);
	return COUNT * 1e9 / (double)(t1 - t0);
}

/* Nanoseconds per round trip: a message out on r[0], back on r[1]. */
static double run_rtt(void)
{
	struct ring *r = mmap(NULL, 2 * sizeof(*r), PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned char m[MSG] = { 0 };
	uint64_t tail_seen = 0, head_seen = 0;

	if (r == MAP_FAILED)
		exit(1);
	if (fork() == 0) {
		pin(0);
		for (uint64_t i = 0; i < RTT_COUNT; i++) {
			get_waiting(&r[0], &head_seen, m);
			while (!put(&r[1], &tail_seen, m))
				;
		}
		_exit(0);
	}
	pin(1);
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < RTT_COUNT; i++) {
		memcpy(m, &i, sizeof(i));
		while (!put(&r[0], &tail_seen, m))
			;
		get_waiting(&r[1], &head_seen, m);
		if (memcmp(m, &i, sizeof(i)) != 0) {
			fprintf(stderr, "round trip %llu corrupt\n", (unsigned long long)i);
			exit(1);
		}
	}
	uint64_t t1 = now_ns();
	wait(NULL);
	return (double)(t1 - t0) / RTT_COUNT;
}

static double run_kernel(void)
{
	int p[2];
	unsigned char m[MSG] = { 0 };
	uint64_t n = COUNT / 10;

	if (pipe(p) < 0)
		exit(1);
	if (fork() == 0) {
		pin(0);
		close(p[0]);
		for (uint64_t i = 0; i < n; i++)
			if (write(p[1], m, MSG) != MSG)
				_exit(1);
		_exit(0);
	}
	pin(1);
	close(p[1]);
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < n; i++)
		if (read(p[0], m, MSG) != MSG)
			exit(1);
	uint64_t t1 = now_ns();
	wait(NULL);
	close(p[0]);
	return n * 1e9 / (double)(t1 - t0);
}

int main(int argc, char **argv)
{
	int o;

	while ((o = getopt(argc, argv, "lwfp:rP")) != -1) {
		if (o == 'l')
			locked = 1;
		else if (o == 'w')
			wfree = 1;
		else if (o == 'f')
			fenced = 1;
		else if (o == 'p')
			pauses = atoi(optarg);
		else if (o == 'r')
			rtt = 1;
		else if (o == 'P')
			prefetch = 1;
		else
			return 2;
	}
	if (rtt) {
		printf("bare ring%s%s%s (pause %d): round trip %.3f us\n",
		       locked ? (wfree ? " +reader's lock" : " +locks") : "",
		       fenced ? " +full-barrier publish" : "",
		       prefetch ? " +prefetch" : "", pauses,
		       run_rtt() / 1e3);
		return 0;
	}
	double k = run_kernel(), b = run_ring();
	printf("kernel pipe %.2fM msg/s, bare ring%s%s (pause %d) %.2fM msg/s: %.1fx\n",
	       k / 1e6, locked ? (wfree ? " +reader's lock" : " +locks") : "",
	       fenced ? " +full-barrier publish" : "",
	       pauses, b / 1e6, b / k);
	return 0;
}
