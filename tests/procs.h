/*
 * procs.h - helpers for test cases that run several processes: shared
 * memory for results, sleeping, and children that cannot outlive their
 * case.  Include after harness.h.  A file may set RP_CHILD_ALARM (seconds
 * a child may live) before including it.
 */
#ifndef RP_PROCS_H
#define RP_PROCS_H

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

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
		rp_alarm(RP_CHILD_ALARM);
	}
	return pid;
}

/* Wait until `pid` sleeps in the kernel (state S): blocked, not spinning. */
static UNUSED void wait_sleeping(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	double end = rp_now_ms() + rp_ms(10000);
	for (;;) {
		FILE *f = fopen(path, "r");
		CHECK(f != NULL);
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		char *p = strrchr(buf, ')');
		CHECK(p != NULL && p[1] == ' ');
		if (p[2] == 'S')
			return;
		CHECK(rp_now_ms() < end);
		sleep_ms(5);
	}
}

#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#define TEST_AUDIT_ARCH 0       /* unknown: refuse_membarrier() fails */
#endif

/* From now on membarrier(2) fails with EPERM in this process, as under a
 * seccomp policy that does not allow it. */
static UNUSED void refuse_membarrier(void)
{
	CHECK(TEST_AUDIT_ARCH != 0);
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_membarrier, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof f / sizeof f[0]), f };
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
}

#endif
