/*
 * procs.h - helpers for test cases that run several processes: shared
 * memory for results, sleeping, and children that cannot outlive their
 * case.  Include after harness.h.  A file may set RP_CHILD_ALARM (seconds
 * a child may live) before including it.
 */
#ifndef RP_PROCS_H
#define RP_PROCS_H

#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef UNUSED
#define UNUSED __attribute__((unused))
#endif
#ifndef RP_CHILD_ALARM
#define RP_CHILD_ALARM 30
#endif

/* Zeroed memory that survives fork() shared, for children's results. */
static UNUSED void *shared_mem(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	memset(p, 0, n);
	return p;
}

static UNUSED void sleep_ms(double ms)
{
	struct timespec ts = { (time_t)(ms / 1000),
			       (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* fork() a child that dies with its parent and cannot hang forever. */
static UNUSED pid_t fork_child(void)
{
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		alarm(RP_CHILD_ALARM);
	}
	return pid;
}

#endif
