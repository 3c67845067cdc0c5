/* test_basic.c - byte pipes: order, consumption, capacity, fork, EOF, atomicity. */
#include "harness.h"
#include <ringpipe.h>

#include <fcntl.h>
#include <stdint.h>

static unsigned char pat(size_t i) { return (unsigned char)(i * 7 + i / 251); }

static void mkpipe(rp_end *e[2], int flags, size_t cap)
{
	CHECK(rp_pipe2(e, flags, cap) == 0);
	CHECK(e[0] != NULL && e[1] != NULL);
}

/* Read until n bytes or EOF; returns the count. */
static size_t read_full(rp_end *r, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = rp_read(r, (char *)buf + got, n - got);
		CHECK(k >= 0);
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return got;
}

/* Capacity as the ring really holds it: a nonblocking write into the empty ring. */
static size_t real_capacity(size_t cap)
{
	rp_end *e[2];
	static unsigned char big[1 << 18];
	mkpipe(e, O_NONBLOCK, cap);
	ssize_t n = rp_write(e[1], big, sizeof big);
	CHECK(n > 0);
	CHECK(rp_nread(e[0]) == n);
	CHECK(rp_close(e[0]) == 0 && rp_close(e[1]) == 0);
	return (size_t)n;
}

TEST(fifo_order)
{
	enum { N = 40000 };
	static unsigned char in[N], out[N];
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	for (size_t i = 0; i < N; i++)
		in[i] = pat(i);
	for (size_t off = 0, k = 1; off < N; off += k, k = k % 97 + 1) {
		if (k > N - off)
			k = N - off;
		CHECK(rp_write(e[1], in + off, k) == (ssize_t)k);
	}
	for (size_t off = 0; off < N; off += 13) {
		size_t k = N - off < 13 ? N - off : 13;
		CHECK(read_full(e[0], out + off, k) == k);
	}
	CHECK(memcmp(in, out, N) == 0);
}

TEST(data_is_read_once)
{
	rp_end *e[2];
	char buf[100];
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_write(e[1], "0123456789", 10) == 10);
	CHECK(rp_read(e[0], buf, 4) == 4);
	CHECK(memcmp(buf, "0123", 4) == 0);
	CHECK(rp_read(e[0], buf, sizeof buf) == 6);
	CHECK(memcmp(buf, "456789", 6) == 0);
	CHECK(rp_nread(e[0]) == 0);
}

TEST(read_returns_available_without_filling_buffer)
{
	rp_end *e[2];
	char buf[100];
	rp_alarm(5);
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_write(e[1], "hello", 5) == 5);
	CHECK(rp_read(e[0], buf, sizeof buf) == 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	/* a byte stream: one read takes bytes of several writes */
	CHECK(rp_write(e[1], "ab", 2) == 2);
	CHECK(rp_write(e[1], "cd", 2) == 2);
	CHECK(rp_read(e[0], buf, sizeof buf) == 4);
	CHECK(memcmp(buf, "abcd", 4) == 0);
}

TEST(read_on_write_end_is_ebadf)
{
	rp_end *e[2];
	char buf[8];
	struct iovec iov = { buf, sizeof buf };
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_write(e[1], "x", 1) == 1);
	CHECK_ERR(rp_read(e[1], buf, sizeof buf), EBADF);
	CHECK_ERR(rp_readv(e[1], &iov, 1), EBADF);
	CHECK(rp_nread(e[0]) == 1);
}

TEST(write_on_read_end_is_ebadf)
{
	rp_end *e[2];
	struct iovec iov = { "xyz", 3 };
	CHECK(rp_pipe(e) == 0);
	CHECK_ERR(rp_write(e[0], "x", 1), EBADF);
	CHECK_ERR(rp_writev(e[0], &iov, 1), EBADF);
	CHECK(rp_nread(e[0]) == 0);
}

TEST(capacity_default_is_65536)
{
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_capacity(e[0]) == 65536 && rp_capacity(e[1]) == 65536);
	CHECK(RP_DEFAULT_CAPACITY == 65536);
	CHECK(rp_set_nonblock(e[1], 1) == 0);
	static unsigned char big[65536 + 4096];
	CHECK(rp_write(e[1], big, sizeof big) == 65536);
}

TEST(capacity_zero_means_default)
{
	rp_end *e[2];
	mkpipe(e, 0, 0);
	CHECK(rp_capacity(e[0]) == RP_DEFAULT_CAPACITY);
	CHECK(rp_capacity(e[1]) == RP_DEFAULT_CAPACITY);
	CHECK(real_capacity(0) == RP_DEFAULT_CAPACITY);
}

TEST(capacity_rounds_up_to_power_of_two)
{
	static const size_t want[][2] = {
		{ 5000, 8192 }, { 8192, 8192 }, { 8193, 16384 },
		{ 12345, 16384 }, { 65537, 131072 },
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		rp_end *e[2];
		mkpipe(e, 0, want[i][0]);
		CHECK(rp_capacity(e[0]) == want[i][1]);
		CHECK(rp_capacity(e[1]) == want[i][1]);
		CHECK(rp_close(e[0]) == 0 && rp_close(e[1]) == 0);
		CHECK(real_capacity(want[i][0]) == want[i][1]);
	}
}

TEST(capacity_minimum_is_4096)
{
	static const size_t req[] = { 1, 100, 2048, 4095, 4096 };
	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
		rp_end *e[2];
		mkpipe(e, 0, req[i]);
		CHECK(rp_capacity(e[0]) == 4096 && rp_capacity(e[1]) == 4096);
		CHECK(rp_close(e[0]) == 0 && rp_close(e[1]) == 0);
		CHECK(real_capacity(req[i]) == 4096);
	}
}

TEST(nread_counts_queued_bytes)
{
	rp_end *e[2];
	char buf[200];
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_nread(e[0]) == 0);
	CHECK(rp_write(e[1], buf, 100) == 100);
	CHECK(rp_nread(e[0]) == 100 && rp_nread(e[1]) == 100);
	CHECK(rp_write(e[1], buf, 50) == 50);
	CHECK(rp_nread(e[0]) == 150);
	CHECK(rp_read(e[0], buf, 30) == 30);
	CHECK(rp_nread(e[0]) == 120 && rp_nread(e[1]) == 120);
	CHECK(rp_read(e[0], buf, sizeof buf) == 120);
	CHECK(rp_nread(e[0]) == 0);
}

TEST(fork_parent_to_child_transfer)
{
	enum { N = 300000, CHUNK = 10000 };
	static unsigned char buf[N];
	rp_end *e[2];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		rp_alarm(8);
		CHECK(rp_close(e[1]) == 0);
		CHECK(read_full(e[0], buf, N) == N);
		for (size_t i = 0; i < N; i++)
			CHECK(buf[i] == pat(i));
		CHECK(rp_read(e[0], buf, 1) == 0);
		_exit(0);
	}
	rp_alarm(8);
	CHECK(rp_close(e[0]) == 0);
	for (size_t i = 0; i < N; i++)
		buf[i] = pat(i);
	for (size_t off = 0; off < N; off += CHUNK)
		CHECK(rp_write(e[1], buf + off, CHUNK) == CHUNK);
	CHECK(rp_close(e[1]) == 0);
	rp_wait_ok(pid);
}

/* A child's close of its inherited copies does not close the parent's. */
TEST(child_close_keeps_parent_ends_open)
{
	rp_end *e[2];
	char c;
	signal(SIGPIPE, SIG_IGN);
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0 && rp_close(e[1]) == 0);
		_exit(0);
	}
	rp_wait_ok(pid);
	CHECK(rp_set_nonblock(e[0], 1) == 0);
	CHECK_ERR(rp_read(e[0], &c, 1), EAGAIN);
	CHECK(rp_write(e[1], "y", 1) == 1);
	CHECK(rp_read(e[0], &c, 1) == 1 && c == 'y');
}

TEST(zero_length_read_returns_zero)
{
	rp_end *e[2];
	char buf[4];
	rp_alarm(5);
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_read(e[0], buf, 0) == 0); /* empty, writer open: must not block */
	CHECK(rp_write(e[1], "ab", 2) == 2);
	CHECK(rp_read(e[0], buf, 0) == 0);
	CHECK(rp_nread(e[0]) == 2);
}

TEST(zero_length_write_returns_zero)
{
	rp_end *e[2];
	static char full[4096];
	rp_alarm(5);
	mkpipe(e, 0, 4096);
	CHECK(rp_write(e[1], "x", 0) == 0);
	CHECK(rp_nread(e[0]) == 0);
	CHECK(rp_write(e[1], full, sizeof full) == sizeof full);
	CHECK(rp_write(e[1], "x", 0) == 0); /* full and blocking: still no wait */
	CHECK(rp_nread(e[0]) == 4096);
}

TEST(readv_writev_scatter_gather_order)
{
	rp_end *e[2];
	char a[1], b[3], c[2], d[10] = "untouched";
	struct iovec out[] = { { "ab", 2 }, { "", 0 }, { "cde", 3 }, { "f", 1 } };
	struct iovec in[] = { { a, 1 }, { b, 3 }, { c, 2 }, { d, sizeof d } };
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_writev(e[1], out, 4) == 6);
	CHECK(rp_nread(e[0]) == 6);
	CHECK(rp_readv(e[0], in, 4) == 6);
	CHECK(memcmp(a, "a", 1) == 0 && memcmp(b, "bcd", 3) == 0 && memcmp(c, "ef", 2) == 0);
	CHECK(strcmp(d, "untouched") == 0);
}

TEST(eof_after_writer_close_drains_data_first)
{
	rp_end *e[2];
	char buf[100];
	rp_alarm(5);
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_write(e[1], "data", 4) == 4);
	CHECK(rp_close(e[1]) == 0);
	CHECK(rp_read(e[0], buf, sizeof buf) == 4);
	CHECK(memcmp(buf, "data", 4) == 0);
	CHECK(rp_read(e[0], buf, sizeof buf) == 0);
	CHECK(rp_read(e[0], buf, sizeof buf) == 0); /* EOF repeats */
}

/* The writer's death by SIGKILL counts as a close, even before it is reaped. */
TEST(eof_when_writer_killed_before_reaped)
{
	rp_end *e[2];
	char buf[100];
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		CHECK(rp_write(e[1], "abcd", 4) == 4);
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	CHECK(rp_close(e[1]) == 0);
	siginfo_t si;
	CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0);
	CHECK(si.si_code == CLD_KILLED);
	rp_alarm(5);
	CHECK(read_full(e[0], buf, sizeof buf) == 4);
	CHECK(memcmp(buf, "abcd", 4) == 0);
	CHECK(waitpid(pid, NULL, 0) == pid);
}

TEST(last_writer_close_wakes_all_blocked_readers)
{
	enum { NR = 3 };
	rp_end *e[2];
	pid_t pid[NR];
	CHECK(rp_pipe(e) == 0);
	for (int i = 0; i < NR; i++) {
		pid[i] = fork();
		CHECK(pid[i] >= 0);
		if (pid[i] == 0) {
			char c;
			rp_alarm(5);
			CHECK(rp_close(e[1]) == 0);
			CHECK(rp_read(e[0], &c, 1) == 0);
			_exit(0);
		}
	}
	CHECK(rp_close(e[0]) == 0);
	usleep(300 * 1000);
	CHECK(rp_close(e[1]) == 0);
	for (int i = 0; i < NR; i++)
		rp_wait_ok(pid[i]);
}

/* A blocking RP_PIPE_BUF write lands whole: no part of it shows while it waits for room. */
TEST(pipe_buf_write_waits_until_whole_record_fits)
{
	static unsigned char a[6000], b[RP_PIPE_BUF], buf[8192];
	rp_end *e[2];
	memset(a, 'a', sizeof a);
	memset(b, 'b', sizeof b);
	mkpipe(e, 0, 8192);
	CHECK(rp_write(e[1], a, sizeof a) == sizeof a); /* 2192 bytes free */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		rp_alarm(8);
		CHECK(rp_close(e[1]) == 0);
		usleep(300 * 1000);
		CHECK(rp_nread(e[0]) == 6000);
		CHECK(rp_read(e[0], buf, 1000) == 1000); /* 3192 free: still too little */
		usleep(300 * 1000);
		CHECK(rp_nread(e[0]) == 5000);
		CHECK(rp_read(e[0], buf, 1000) == 1000); /* 4192 free: the record fits */
		double t0 = rp_now_ms();
		while (rp_nread(e[0]) != 4000 + RP_PIPE_BUF && rp_now_ms() - t0 < 3000)
			usleep(1000);
		CHECK(rp_nread(e[0]) == 4000 + RP_PIPE_BUF);
		CHECK(read_full(e[0], buf, sizeof buf) == 4000 + RP_PIPE_BUF);
		for (size_t i = 0; i < 4000 + RP_PIPE_BUF; i++)
			CHECK(buf[i] == (i < 4000 ? 'a' : 'b'));
		_exit(0);
	}
	rp_alarm(8);
	CHECK(rp_close(e[0]) == 0);
	double t0 = rp_now_ms();
	CHECK(rp_write(e[1], b, sizeof b) == sizeof b);
	CHECK(rp_now_ms() - t0 >= 250); /* blocked until the second read */
	CHECK(rp_close(e[1]) == 0);
	rp_wait_ok(pid);
}

/* Several writer processes: every RP_PIPE_BUF record arrives unmixed. */
TEST(pipe_buf_writes_not_interleaved)
{
	enum { NW = 4, NREC = 64 };
	static unsigned char rec[RP_PIPE_BUF];
	rp_end *e[2];
	pid_t pid[NW];
	int count[NW] = { 0 };
	mkpipe(e, 0, 8192);
	for (int w = 0; w < NW; w++) {
		pid[w] = fork();
		CHECK(pid[w] >= 0);
		if (pid[w] == 0) {
			rp_alarm(8);
			CHECK(rp_close(e[0]) == 0);
			memset(rec, 'A' + w, sizeof rec);
			for (int i = 0; i < NREC; i++)
				CHECK(rp_write(e[1], rec, sizeof rec) == sizeof rec);
			_exit(0);
		}
	}
	rp_alarm(8);
	CHECK(rp_close(e[1]) == 0);
	size_t n;
	while ((n = read_full(e[0], rec, sizeof rec)) == sizeof rec) {
		int w = rec[0] - 'A';
		CHECK(w >= 0 && w < NW);
		for (size_t i = 1; i < sizeof rec; i++)
			CHECK(rec[i] == rec[0]);
		count[w]++;
	}
	CHECK(n == 0);
	for (int w = 0; w < NW; w++) {
		rp_wait_ok(pid[w]);
		CHECK(count[w] == NREC);
	}
}
