/*
 * harness.h - a minimal one-behaviour-per-case test harness.
 *
 * Each test file defines cases with TEST(name) { ... }.  CMake registers
 * every case as its own ctest test ("file.name") by scanning the source
 * for TEST( lines, so a case runs in a fresh process with its own timeout.
 * CHECK() failures print file:line and exit 1; a case passes by returning.
 * SKIP(why) ends a case that cannot run in this build (ctest shows it as
 * skipped, exit code 77, never as passed).
 */
#ifndef RP_HARNESS_H
#define RP_HARNESS_H

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef void (*rp_test_fn)(void);
struct rp_test_case { const char *name; rp_test_fn fn; };

#define RP_MAX_CASES 256
static struct rp_test_case rp_cases[RP_MAX_CASES];
static int rp_ncases;

#define TEST(name)                                                        \
	static void test_##name(void);                                    \
	__attribute__((constructor)) static void reg_##name(void)          \
	{                                                                 \
		if (rp_ncases < RP_MAX_CASES)                             \
			rp_cases[rp_ncases++] =                           \
				(struct rp_test_case){ #name, test_##name }; \
	}                                                                 \
	static void test_##name(void)

#define CHECK(cond)                                                       \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "%s:%d: CHECK(%s) failed (errno=%d %s)\n", \
				__FILE__, __LINE__, #cond, errno,         \
				strerror(errno));                         \
			_exit(1);                                         \
		}                                                         \
	} while (0)

#define RP_SKIP_CODE 77
#define SKIP(why)                                                         \
	do {                                                              \
		fprintf(stderr, "SKIP: %s\n", why);                       \
		_exit(RP_SKIP_CODE);                                      \
	} while (0)

#define CHECK_ERR(expr, err)                                              \
	do {                                                              \
		errno = 0;                                                \
		long rp_r_ = (long)(expr);                                \
		if (rp_r_ != -1 || errno != (err)) {                      \
			fprintf(stderr, "%s:%d: %s = %ld errno=%d (%s), want -1 %s\n", \
				__FILE__, __LINE__, #expr, rp_r_, errno,  \
				strerror(errno), #err);                   \
			_exit(1);                                         \
		}                                                         \
	} while (0)

static inline double rp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* An upper bound on a time, in ms, scaled by $RP_TIME_SCALE: make
 * test-valgrind sets 20, as everything runs some 20 times slower there,
 * and test-asan and test-tsan 3.
 * Lower bounds ("blocked at least 100 ms") need no scaling. */
static inline double rp_ms(double ms)
{
	const char *s = getenv("RP_TIME_SCALE");
	double k = s ? strtod(s, NULL) : 1.0;
	return k >= 1.0 ? ms * k : ms;
}

/* A watchdog of `s` seconds (alarm(2)), scaled as rp_ms() scales: a case
 * slowed down by valgrind must not be killed as hung. */
static inline void rp_alarm(unsigned s)
{
	alarm((unsigned)(rp_ms(s * 1000.0) / 1000));
}

/* Wait for a child; CHECK that it exited 0 (so child CHECKs fail the case). */
static inline void rp_wait_ok(pid_t pid)
{
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "child %d failed: status 0x%x\n", (int)pid, st);
		_exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (int i = 0; i < rp_ncases; i++)
			puts(rp_cases[i].name);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s CASE | --list\n", argv[0]);
		return 2;
	}
	for (int i = 0; i < rp_ncases; i++) {
		if (strcmp(rp_cases[i].name, argv[1]) == 0) {
			rp_cases[i].fn();
			return 0;
		}
	}
	fprintf(stderr, "no such case: %s\n", argv[1]);
	return 2;
}

#endif
