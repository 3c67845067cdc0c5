/*
 * call_cost.c - the fixed cost of a small call: N times, in one process,
 * write 64 bytes and read them back (or send and receive a 64-byte
 * message).  Nobody sleeps and no line moves between CPUs, so this is the
 * fast path alone; run it under callgrind for instruction counts
 * (docs/DESIGN.md, "Small writes"):
 *
 *   make && valgrind --tool=callgrind build/scripts/call_cost pipe 100000
 *   build/scripts/call_cost conn 10000000
 *   build/scripts/call_cost pipe 10000000 threads
 *
 * With "threads", a second thread (asleep throughout) makes the process
 * multi-threaded first: calls then count references and keep the cancel
 * state (docs/DESIGN.md, "Handles").
 */
#include "ringpipe.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;

static void *idle(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&idle_lock);         /* held by main until the end */
	pthread_mutex_unlock(&idle_lock);
	return NULL;
}

int main(int argc, char **argv)
{
	int conn = argc > 1 && strcmp(argv[1], "conn") == 0;
	unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000000;
	int threads = argc > 3 && strcmp(argv[3], "threads") == 0;
	pthread_t t;
	char m[64] = { 1 };
	rp_end *e[2];
	rp_conn *c[2];

	pthread_mutex_lock(&idle_lock);
	if (threads && pthread_create(&t, NULL, idle, NULL) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		return 1;
	}
	if (conn ? rp_conn_pipe(c, 0) : rp_pipe(e)) {
		perror("ringpipe");
		return 1;
	}
	double t0 = now_ns();
	for (unsigned long i = 0; i < n; i++) {
		int ok = conn ? rp_send(c[1], m, sizeof(m)) == 0 &&
				rp_recv(c[0], m, sizeof(m)) == (ssize_t)sizeof(m)
			      : rp_write(e[1], m, sizeof(m)) == (ssize_t)sizeof(m) &&
				rp_read(e[0], m, sizeof(m)) == (ssize_t)sizeof(m);
		if (!ok) {
			perror("ringpipe");
			return 1;
		}
	}
	printf("%s: %.1f ns per 64-byte %s%s\n", conn ? "rp_conn" : "rp_pipe",
	       (now_ns() - t0) / n, conn ? "send + receive" : "write + read",
	       threads ? " (multi-threaded process)" : "");
	pthread_mutex_unlock(&idle_lock);
	if (threads)
		pthread_join(t, NULL);
	return 0;
}
