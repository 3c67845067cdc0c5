/* test_nonblock.c - O_NONBLOCK: EAGAIN, partial and all-or-nothing writes, flags. */
#include "harness.h"
#include <ringpipe.h>

#include <fcntl.h>

static unsigned char pat(size_t i) { return (unsigned char)(i * 13 + 5); }

static void mkpipe(rp_end *e[2], int flags, size_t cap)
{
	CHECK(rp_pipe2(e, flags, cap) == 0);
	CHECK(e[0] != NULL && e[1] != NULL);
}

TEST(nonblock_read_empty_eagain)
{
	rp_end *e[2];
	char buf[8];
	struct iovec iov = { buf, sizeof buf };
	mkpipe(e, O_NONBLOCK, 0);
	CHECK_ERR(rp_read(e[0], buf, sizeof buf), EAGAIN);
	CHECK_ERR(rp_readv(e[0], &iov, 1), EAGAIN);
	CHECK(rp_write(e[1], "x", 1) == 1);
	CHECK(rp_read(e[0], buf, sizeof buf) == 1);
	CHECK_ERR(rp_read(e[0], buf, sizeof buf), EAGAIN);
}

TEST(nonblock_read_empty_without_writer_is_eof)
{
	rp_end *e[2];
	char buf[8];
	mkpipe(e, O_NONBLOCK, 0);
	CHECK(rp_close(e[1]) == 0);
	CHECK(rp_read(e[0], buf, sizeof buf) == 0);
}

TEST(nonblock_write_full_eagain)
{
	static unsigned char buf[8192];
	rp_end *e[2];
	mkpipe(e, O_NONBLOCK, 4096);
	CHECK(rp_write(e[1], buf, 4096) == 4096);
	CHECK_ERR(rp_write(e[1], buf, 1), EAGAIN);
	CHECK_ERR(rp_write(e[1], buf, sizeof buf), EAGAIN);
	struct iovec iov = { buf, 10 };
	CHECK_ERR(rp_writev(e[1], &iov, 1), EAGAIN);
	CHECK(rp_nread(e[0]) == 4096);
}

TEST(nonblock_oversized_write_fills_empty_ring)
{
	static unsigned char in[8192 + 4096], out[8192];
	rp_end *e[2];
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = pat(i);
	mkpipe(e, O_NONBLOCK, 8192);
	CHECK(rp_write(e[1], in, sizeof in) == 8192);
	CHECK(rp_nread(e[0]) == 8192);
	CHECK(rp_read(e[0], out, sizeof out) == 8192);
	CHECK(memcmp(in, out, sizeof out) == 0);
}

TEST(nonblock_large_write_partial_count)
{
	static unsigned char in[10000], out[8192];
	rp_end *e[2];
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = pat(i);
	mkpipe(e, O_NONBLOCK, 8192);
	CHECK(rp_write(e[1], "0123456789", 10) == 10);
	ssize_t n = rp_write(e[1], in, sizeof in); /* > RP_PIPE_BUF, 8182 free */
	CHECK(n > 0 && n <= 8182);
	CHECK(rp_nread(e[0]) == 10 + n);
	CHECK(rp_read(e[0], out, sizeof out) == 10 + n);
	CHECK(memcmp(out, "0123456789", 10) == 0);
	CHECK(memcmp(out + 10, in, (size_t)n) == 0);
}

TEST(nonblock_small_write_all_or_nothing)
{
	static unsigned char buf[RP_PIPE_BUF];
	rp_end *e[2];
	mkpipe(e, O_NONBLOCK, 4096);
	CHECK(rp_write(e[1], buf, 4086) == 4086); /* 10 bytes free */
	CHECK_ERR(rp_write(e[1], buf, 11), EAGAIN);
	CHECK(rp_nread(e[0]) == 4086);
	CHECK_ERR(rp_write(e[1], buf, RP_PIPE_BUF), EAGAIN);
	CHECK(rp_nread(e[0]) == 4086);
	struct iovec iov[2] = { { buf, 6 }, { buf, 5 } };
	CHECK_ERR(rp_writev(e[1], iov, 2), EAGAIN);
	CHECK(rp_nread(e[0]) == 4086);
	CHECK(rp_write(e[1], buf, 10) == 10);
	CHECK(rp_nread(e[0]) == 4096);
}

TEST(set_nonblock_toggles_read_end)
{
	rp_end *e[2];
	char c;
	rp_alarm(5);
	CHECK(rp_pipe(e) == 0);
	CHECK(rp_set_nonblock(e[0], 1) == 0);
	CHECK_ERR(rp_read(e[0], &c, 1), EAGAIN);
	CHECK(rp_set_nonblock(e[0], 0) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		usleep(200 * 1000);
		CHECK(rp_write(e[1], "z", 1) == 1);
		_exit(0);
	}
	double t0 = rp_now_ms();
	CHECK(rp_read(e[0], &c, 1) == 1 && c == 'z'); /* blocks again */
	CHECK(rp_now_ms() - t0 >= 100);
	rp_wait_ok(pid);
}

TEST(set_nonblock_toggles_write_end)
{
	static unsigned char buf[4096];
	rp_end *e[2];
	rp_alarm(5);
	mkpipe(e, 0, 4096);
	CHECK(rp_write(e[1], buf, sizeof buf) == sizeof buf);
	CHECK(rp_set_nonblock(e[1], 1) == 0);
	CHECK_ERR(rp_write(e[1], "x", 1), EAGAIN);
	CHECK(rp_set_nonblock(e[1], 0) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		usleep(200 * 1000);
		CHECK(rp_read(e[0], buf, 1) == 1);
		_exit(0);
	}
	double t0 = rp_now_ms();
	CHECK(rp_write(e[1], "x", 1) == 1); /* blocks again */
	CHECK(rp_now_ms() - t0 >= 100);
	rp_wait_ok(pid);
}

/* O_NONBLOCK belongs to the open end, shared with a forked child as for a descriptor. */
TEST(nonblock_flag_shared_across_fork)
{
	rp_end *e[2];
	char c;
	rp_alarm(5);
	CHECK(rp_pipe(e) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(rp_set_nonblock(e[0], 1) == 0);
		_exit(0);
	}
	rp_wait_ok(pid);
	CHECK_ERR(rp_read(e[0], &c, 1), EAGAIN);
}

TEST(pipe2_invalid_flags_einval)
{
	static const int bad[] = { O_APPEND, O_RDWR, O_WRONLY, O_CREAT, O_TRUNC,
				   O_NONBLOCK | O_APPEND, O_CLOEXEC | O_RDWR };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		rp_end *sentinel = (rp_end *)&bad[i];
		rp_end *e[2] = { sentinel, sentinel };
		CHECK_ERR(rp_pipe2(e, bad[i], 0), EINVAL);
		CHECK(e[0] == sentinel && e[1] == sentinel); /* left untouched */
	}
}

TEST(pipe2_cloexec_accepted)
{
	rp_end *e[2];
	char c;
	mkpipe(e, O_CLOEXEC, 0);
	CHECK(rp_write(e[1], "k", 1) == 1);
	CHECK(rp_read(e[0], &c, 1) == 1 && c == 'k');
	rp_end *f[2];
	mkpipe(f, O_CLOEXEC | O_NONBLOCK, 4096);
	CHECK_ERR(rp_read(f[0], &c, 1), EAGAIN);
}
