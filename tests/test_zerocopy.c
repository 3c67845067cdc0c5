/* test_zerocopy.c - rp_write_reserve/commit and rp_read_peek/consume. */
#include "harness.h"
#include <ringpipe.h>

#include <fcntl.h>
#include <stdbool.h>
#include <unistd.h>

static unsigned char pat(size_t i) { return (unsigned char)(i * 31 + i / 256); }

static void mkpipe(rp_end *e[2], int flags, size_t cap)
{
	CHECK(rp_pipe2(e, flags, cap) == 0);
	CHECK(e[0] != NULL && e[1] != NULL);
}

/* Move head and tail to `off` bytes into the ring, leaving it empty. */
static void advance(rp_end *e[2], size_t off)
{
	static unsigned char junk[1 << 16];
	CHECK(off <= sizeof junk);
	CHECK(rp_write(e[1], junk, off) == (ssize_t)off);
	CHECK(rp_read(e[0], junk, off) == (ssize_t)off);
	CHECK(rp_nread(e[0]) == 0);
}

TEST(reserve_commit_round_trip)
{
	rp_end *e[2];
	unsigned char out[100];
	mkpipe(e, 0, 0);
	unsigned char *p = rp_write_reserve(e[1], 100);
	CHECK(p != NULL);
	for (size_t i = 0; i < 100; i++)
		p[i] = pat(i);
	CHECK(rp_nread(e[0]) == 0); /* not visible before commit */
	CHECK(rp_write_commit(e[1], 100) == 0);
	CHECK(rp_nread(e[0]) == 100);
	CHECK(rp_read(e[0], out, sizeof out) == 100);
	for (size_t i = 0; i < 100; i++)
		CHECK(out[i] == pat(i));
}

TEST(commit_of_part_publishes_prefix)
{
	rp_end *e[2];
	char out[100];
	mkpipe(e, 0, 0);
	char *p = rp_write_reserve(e[1], 100);
	CHECK(p != NULL);
	memcpy(p, "prefix-and-rest", 15);
	CHECK(rp_write_commit(e[1], 6) == 0);
	CHECK(rp_nread(e[0]) == 6);
	CHECK(rp_read(e[0], out, sizeof out) == 6);
	CHECK(memcmp(out, "prefix", 6) == 0);
}

TEST(reserve_full_capacity_contiguous_across_wrap)
{
	enum { CAP = 8192 };
	static unsigned char out[CAP];
	rp_end *e[2];
	mkpipe(e, 0, CAP);
	advance(e, 5000);
	unsigned char *p = rp_write_reserve(e[1], CAP);
	CHECK(p != NULL);
	for (size_t i = 0; i < CAP; i++)
		p[i] = pat(i);
	CHECK(rp_write_commit(e[1], CAP) == 0);
	CHECK(rp_nread(e[0]) == CAP);
	CHECK(rp_read(e[0], out, CAP) == CAP);
	for (size_t i = 0; i < CAP; i++)
		CHECK(out[i] == pat(i));
}

TEST(peek_contiguous_across_wrap)
{
	enum { CAP = 8192, N = 4000 };
	static unsigned char in[N];
	rp_end *e[2];
	size_t n = 0;
	for (size_t i = 0; i < N; i++)
		in[i] = pat(i);
	mkpipe(e, 0, CAP);
	advance(e, 6000); /* the next 4000 bytes straddle the end of the ring */
	CHECK(rp_write(e[1], in, N) == N);
	const unsigned char *p = rp_read_peek(e[0], &n);
	CHECK(p != NULL);
	CHECK(n == N);
	CHECK(memcmp(p, in, N) == 0);
	CHECK(rp_read_consume(e[0], N) == 0);
	CHECK(rp_nread(e[0]) == 0);
}

TEST(peek_does_not_consume)
{
	rp_end *e[2];
	size_t n = 0;
	char out[8];
	mkpipe(e, 0, 0);
	CHECK(rp_write(e[1], "abc", 3) == 3);
	const char *p = rp_read_peek(e[0], &n);
	CHECK(p != NULL && n == 3 && memcmp(p, "abc", 3) == 0);
	CHECK(rp_nread(e[0]) == 3);
	CHECK(rp_read_consume(e[0], 0) == 0);
	CHECK(rp_read(e[0], out, sizeof out) == 3 && memcmp(out, "abc", 3) == 0);
}

TEST(consume_advances)
{
	rp_end *e[2];
	size_t n = 0;
	char out[8];
	mkpipe(e, 0, 0);
	CHECK(rp_write(e[1], "abcdef", 6) == 6);
	const char *p = rp_read_peek(e[0], &n);
	CHECK(p != NULL && n == 6);
	CHECK(rp_read_consume(e[0], 2) == 0);
	CHECK(rp_nread(e[0]) == 4);
	p = rp_read_peek(e[0], &n);
	CHECK(p != NULL && n == 4 && memcmp(p, "cdef", 4) == 0);
	CHECK(rp_read_consume(e[0], 0) == 0);
	CHECK(rp_read(e[0], out, sizeof out) == 4 && memcmp(out, "cdef", 4) == 0);
}

TEST(consume_beyond_readable_einval)
{
	rp_end *e[2];
	size_t n = 0;
	mkpipe(e, 0, 0);
	CHECK(rp_write(e[1], "abc", 3) == 3);
	CHECK(rp_read_peek(e[0], &n) != NULL && n == 3);
	CHECK_ERR(rp_read_consume(e[0], 4), EINVAL);
	CHECK(rp_nread(e[0]) == 3);
}

TEST(peek_at_eof_returns_null_and_zero)
{
	rp_end *e[2];
	size_t n = 12345;
	rp_alarm(5);
	mkpipe(e, 0, 0);
	CHECK(rp_write(e[1], "xyz", 3) == 3);
	CHECK(rp_close(e[1]) == 0);
	const char *p = rp_read_peek(e[0], &n);
	CHECK(p != NULL && n == 3); /* data before EOF */
	CHECK(rp_read_consume(e[0], 3) == 0);
	n = 12345;
	CHECK(rp_read_peek(e[0], &n) == NULL);
	CHECK(n == 0);
}

TEST(peek_nonblock_empty_eagain)
{
	rp_end *e[2];
	size_t n = 0;
	mkpipe(e, O_NONBLOCK, 0);
	errno = 0;
	CHECK(rp_read_peek(e[0], &n) == NULL);
	CHECK(errno == EAGAIN);
}

TEST(peek_blocks_until_data)
{
	rp_end *e[2];
	size_t n = 0;
	rp_alarm(5);
	mkpipe(e, 0, 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		usleep(200 * 1000);
		CHECK(rp_write(e[1], "late", 4) == 4);
		_exit(0);
	}
	double t0 = rp_now_ms();
	const char *p = rp_read_peek(e[0], &n);
	CHECK(rp_now_ms() - t0 >= 100);
	CHECK(p != NULL && n == 4 && memcmp(p, "late", 4) == 0);
	rp_wait_ok(pid);
}

TEST(commit_more_than_reserved_einval)
{
	rp_end *e[2];
	mkpipe(e, 0, 0);
	CHECK(rp_write_reserve(e[1], 100) != NULL);
	CHECK_ERR(rp_write_commit(e[1], 101), EINVAL);
	CHECK(rp_nread(e[0]) == 0);
}

TEST(commit_without_reserve_einval)
{
	rp_end *e[2];
	mkpipe(e, 0, 0);
	CHECK_ERR(rp_write_commit(e[1], 1), EINVAL);
	CHECK(rp_nread(e[0]) == 0);
}

TEST(reserve_beyond_capacity_einval)
{
	rp_end *e[2];
	mkpipe(e, O_NONBLOCK, 8192);
	errno = 0;
	CHECK(rp_write_reserve(e[1], 8193) == NULL);
	CHECK(errno == EINVAL);
	errno = 0;
	CHECK(rp_write_reserve(e[1], (size_t)1 << 40) == NULL);
	CHECK(errno == EINVAL);
	CHECK(rp_write_reserve(e[1], 8192) != NULL); /* exactly the capacity is fine */
}

TEST(reserve_nonblock_full_eagain)
{
	static unsigned char buf[4096];
	rp_end *e[2];
	mkpipe(e, O_NONBLOCK, 4096);
	CHECK(rp_write(e[1], buf, 4096) == 4096);
	errno = 0;
	CHECK(rp_write_reserve(e[1], 1) == NULL);
	CHECK(errno == EAGAIN);
}

/* Like a write of n bytes: no partial span when less than n is free. */
TEST(reserve_nonblock_needs_whole_span)
{
	static unsigned char buf[4096];
	rp_end *e[2];
	mkpipe(e, O_NONBLOCK, 4096);
	CHECK(rp_write(e[1], buf, 4000) == 4000);
	errno = 0;
	CHECK(rp_write_reserve(e[1], 200) == NULL);
	CHECK(errno == EAGAIN);
	unsigned char *p = rp_write_reserve(e[1], 96);
	CHECK(p != NULL);
	memset(p, 7, 96);
	CHECK(rp_write_commit(e[1], 96) == 0);
	CHECK(rp_nread(e[0]) == 4096);
}

TEST(reserve_blocks_until_room)
{
	static unsigned char buf[4096];
	rp_end *e[2];
	rp_alarm(5);
	mkpipe(e, 0, 4096);
	CHECK(rp_write(e[1], buf, 4096) == 4096);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		usleep(200 * 1000);
		CHECK(rp_read(e[0], buf, 4096) == 4096);
		_exit(0);
	}
	double t0 = rp_now_ms();
	unsigned char *p = rp_write_reserve(e[1], 4096);
	CHECK(p != NULL);
	CHECK(rp_now_ms() - t0 >= 100);
	memset(p, 1, 4096);
	CHECK(rp_write_commit(e[1], 4096) == 0);
	rp_wait_ok(pid);
	CHECK(rp_nread(e[0]) == 4096);
}

TEST(zerocopy_on_wrong_end_ebadf)
{
	rp_end *e[2];
	size_t n = 0;
	mkpipe(e, O_NONBLOCK, 0);
	CHECK(rp_write(e[1], "q", 1) == 1);
	errno = 0;
	CHECK(rp_write_reserve(e[0], 1) == NULL && errno == EBADF);
	CHECK_ERR(rp_write_commit(e[0], 1), EBADF);
	errno = 0;
	CHECK(rp_read_peek(e[1], &n) == NULL && errno == EBADF);
	CHECK_ERR(rp_read_consume(e[1], 1), EBADF);
	CHECK(rp_nread(e[0]) == 1);
}

/* A child that holds a reservation (or a peek) on the end it inherited
 * until told to let go; the parent's calls on its own copy are
 * non-blocking.  Returns the child; *go is where to tell it. */
static pid_t hold_in_child(rp_end *e[2], bool peek, int *go)
{
	int up[2], down[2];
	CHECK(pipe(up) == 0 && pipe(down) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		size_t n = 0;
		char c;
		close(up[0]), close(down[1]);   /* the parent's death ends the wait */
		if (peek)
			CHECK(rp_read_peek(e[0], &n) != NULL && n == 4);
		else
			CHECK(rp_write_reserve(e[1], 16) != NULL);
		CHECK(write(up[1], "h", 1) == 1);
		CHECK(read(down[0], &c, 1) == 1);
		CHECK((peek ? rp_read_consume(e[0], n) : rp_write_commit(e[1], 0)) == 0);
		_exit(0);
	}
	char c;
	CHECK(read(up[0], &c, 1) == 1);
	close(up[0]), close(up[1]), close(down[0]);
	*go = down[1];
	return pid;
}

/* O_NONBLOCK means EAGAIN, not a wait for another process's commit. */
TEST(nonblocking_write_eagain_while_another_process_holds_a_reservation)
{
	rp_end *e[2];
	int go;
	char c = 'x';
	rp_alarm(10);
	mkpipe(e, O_NONBLOCK, 4096);
	pid_t pid = hold_in_child(e, false, &go);
	errno = 0;
	CHECK(rp_write(e[1], &c, 1) == -1 && errno == EAGAIN);
	errno = 0;
	CHECK(rp_write_reserve(e[1], 1) == NULL && errno == EAGAIN);
	CHECK(write(go, "g", 1) == 1);
	rp_wait_ok(pid);
	CHECK(rp_write(e[1], &c, 1) == 1);
	close(go);
}

/* The same for a read while another process holds a peek. */
TEST(nonblocking_read_eagain_while_another_process_holds_a_peek)
{
	rp_end *e[2];
	int go;
	char buf[8];
	size_t n;
	rp_alarm(10);
	mkpipe(e, O_NONBLOCK, 4096);
	CHECK(rp_write(e[1], "abcd", 4) == 4);
	pid_t pid = hold_in_child(e, true, &go);
	errno = 0;
	CHECK(rp_read(e[0], buf, sizeof buf) == -1 && errno == EAGAIN);
	errno = 0;
	CHECK(rp_read_peek(e[0], &n) == NULL && errno == EAGAIN);
	CHECK(write(go, "g", 1) == 1);
	rp_wait_ok(pid);
	CHECK(rp_write(e[1], "e", 1) == 1);
	CHECK(rp_read(e[0], buf, sizeof buf) == 1 && buf[0] == 'e');
	close(go);
}
