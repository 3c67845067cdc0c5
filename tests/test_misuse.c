/* test_misuse.c - bad arguments and closed ends get errors, never crashes. */
#include "harness.h"
#include <ringpipe.h>

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>

/* -1 (or NULL) with errno a or b. */
#define CHECK_INT_FAIL(expr, a, b)                                              \
	do {                                                                    \
		errno = 0;                                                      \
		long r_ = (long)(expr);                                         \
		CHECK(r_ == -1 && (errno == (a) || errno == (b)));               \
	} while (0)
#define CHECK_PTR_FAIL(expr, a, b)                                              \
	do {                                                                    \
		errno = 0;                                                      \
		CHECK((expr) == NULL && (errno == (a) || errno == (b)));         \
	} while (0)
/* rp_capacity has no -1: accept 0 or (size_t)-1 with errno set. */
#define CHECK_CAP_FAIL(expr, a, b)                                              \
	do {                                                                    \
		errno = 0;                                                      \
		size_t c_ = (expr);                                             \
		CHECK((c_ == 0 || c_ == (size_t)-1) && (errno == (a) || errno == (b))); \
	} while (0)

static void mkpipe(rp_end *e[2], int flags, size_t cap)
{
	CHECK(rp_pipe2(e, flags, cap) == 0);
	CHECK(e[0] != NULL && e[1] != NULL);
}

/* Every call on end x fails with EBADF. */
static void all_calls_ebadf(rp_end *x)
{
	char buf[RP_TOKEN_MAX];
	struct iovec iov = { buf, 1 };
	size_t n = 0;
	CHECK_ERR(rp_read(x, buf, 1), EBADF);
	CHECK_ERR(rp_write(x, "x", 1), EBADF);
	CHECK_ERR(rp_readv(x, &iov, 1), EBADF);
	CHECK_ERR(rp_writev(x, &iov, 1), EBADF);
	CHECK_ERR(rp_fileno(x), EBADF);
	CHECK_ERR(rp_set_nonblock(x, 1), EBADF);
	CHECK_ERR(rp_nread(x), EBADF);
	CHECK_CAP_FAIL(rp_capacity(x), EBADF, EBADF);
	CHECK_PTR_FAIL(rp_write_reserve(x, 1), EBADF, EBADF);
	CHECK_ERR(rp_write_commit(x, 1), EBADF);
	CHECK_PTR_FAIL(rp_read_peek(x, &n), EBADF, EBADF);
	CHECK_ERR(rp_read_consume(x, 1), EBADF);
	CHECK_ERR(rp_export(x, buf, sizeof buf), EBADF);
	CHECK_ERR(rp_close(x), EBADF);
}

TEST(null_end_rejected_by_io_calls)
{
	char buf[8];
	struct iovec iov = { buf, sizeof buf };
	CHECK_INT_FAIL(rp_read(NULL, buf, 1), EBADF, EINVAL);
	CHECK_INT_FAIL(rp_write(NULL, "x", 1), EBADF, EINVAL);
	CHECK_INT_FAIL(rp_readv(NULL, &iov, 1), EBADF, EINVAL);
	CHECK_INT_FAIL(rp_writev(NULL, &iov, 1), EBADF, EINVAL);
	CHECK_INT_FAIL(rp_close(NULL), EBADF, EINVAL);
}

TEST(null_end_rejected_by_query_calls)
{
	CHECK_INT_FAIL(rp_fileno(NULL), EBADF, EINVAL);
	CHECK_INT_FAIL(rp_set_nonblock(NULL, 1), EBADF, EINVAL);
	CHECK_INT_FAIL(rp_nread(NULL), EBADF, EINVAL);
	CHECK_CAP_FAIL(rp_capacity(NULL), EBADF, EINVAL);
}

TEST(null_end_rejected_by_zerocopy_calls)
{
	size_t n = 0;
	CHECK_PTR_FAIL(rp_write_reserve(NULL, 1), EBADF, EINVAL);
	CHECK_INT_FAIL(rp_write_commit(NULL, 1), EBADF, EINVAL);
	CHECK_PTR_FAIL(rp_read_peek(NULL, &n), EBADF, EINVAL);
	CHECK_INT_FAIL(rp_read_consume(NULL, 1), EBADF, EINVAL);
}

TEST(null_end_rejected_by_export)
{
	char tok[RP_TOKEN_MAX];
	CHECK_INT_FAIL(rp_export(NULL, tok, sizeof tok), EBADF, EINVAL);
}

TEST(null_pipe_array_rejected)
{
	CHECK_INT_FAIL(rp_pipe(NULL), EINVAL, EFAULT);
	CHECK_INT_FAIL(rp_pipe2(NULL, 0, 0), EINVAL, EFAULT);
	CHECK_INT_FAIL(rp_pipe2(NULL, O_NONBLOCK, 4096), EINVAL, EFAULT);
}

TEST(null_path_rejected)
{
	CHECK_INT_FAIL(rp_mkfifo(NULL, 0600, 0), EINVAL, EFAULT);
	CHECK_PTR_FAIL(rp_open(NULL, O_RDONLY | O_NONBLOCK), EINVAL, EFAULT);
	CHECK_PTR_FAIL(rp_open(NULL, O_WRONLY | O_NONBLOCK), EINVAL, EFAULT);
	CHECK_INT_FAIL(rp_unlink(NULL), EINVAL, EFAULT);
}

TEST(null_token_rejected)
{
	rp_end *e[2];
	mkpipe(e, 0, 0);
	CHECK_PTR_FAIL(rp_import(NULL), EINVAL, EBADF);
	CHECK_INT_FAIL(rp_export(e[1], NULL, RP_TOKEN_MAX), EINVAL, EFAULT);
}

/* NULL buffers fail (EFAULT as the kernel, or EINVAL) and move no data. */
TEST(null_buffer_rejected_without_moving_data)
{
	rp_end *e[2];
	size_t n;
	rp_alarm(5);
	mkpipe(e, 0, 0);
	CHECK(rp_write(e[1], "abc", 3) == 3);
	CHECK_INT_FAIL(rp_read(e[0], NULL, 3), EFAULT, EINVAL);
	CHECK_INT_FAIL(rp_readv(e[0], NULL, 1), EFAULT, EINVAL);
	CHECK_PTR_FAIL(rp_read_peek(e[0], NULL), EFAULT, EINVAL);
	CHECK(rp_nread(e[0]) == 3);
	CHECK_INT_FAIL(rp_write(e[1], NULL, 3), EFAULT, EINVAL);
	CHECK_INT_FAIL(rp_writev(e[1], NULL, 1), EFAULT, EINVAL);
	CHECK(rp_nread(e[0]) == 3);
	CHECK(rp_read_peek(e[0], &n) != NULL && n == 3);
}

TEST(invalid_iovcnt_einval)
{
	rp_end *e[2];
	char buf[4];
	struct iovec iov = { buf, sizeof buf };
	rp_alarm(5);
	mkpipe(e, 0, 0);
	CHECK(rp_write(e[1], "abc", 3) == 3);
	CHECK_ERR(rp_readv(e[0], &iov, -1), EINVAL);
	CHECK_ERR(rp_writev(e[1], &iov, -1), EINVAL);
	CHECK_ERR(rp_readv(e[0], &iov, IOV_MAX + 1), EINVAL);
	CHECK_ERR(rp_writev(e[1], &iov, IOV_MAX + 1), EINVAL);
	CHECK(rp_nread(e[0]) == 3);
}

TEST(double_close_ebadf)
{
	rp_end *e[2];
	mkpipe(e, 0, 0);
	CHECK(rp_close(e[0]) == 0);
	CHECK_ERR(rp_close(e[0]), EBADF);
	CHECK(rp_close(e[1]) == 0);
	CHECK_ERR(rp_close(e[1]), EBADF);
}

TEST(calls_on_closed_write_end_ebadf)
{
	rp_end *e[2];
	char c;
	mkpipe(e, 0, 0);
	CHECK(rp_close(e[1]) == 0);
	all_calls_ebadf(e[1]);
	CHECK(rp_read(e[0], &c, 1) == 0); /* the reader still works: EOF */
}

TEST(calls_on_closed_read_end_ebadf)
{
	rp_end *e[2];
	signal(SIGPIPE, SIG_IGN);
	mkpipe(e, 0, 0);
	CHECK(rp_close(e[0]) == 0);
	all_calls_ebadf(e[0]);
	CHECK_ERR(rp_write(e[1], "x", 1), EPIPE); /* the writer still works: EPIPE */
}

TEST(calls_on_both_closed_ends_ebadf)
{
	rp_end *e[2];
	mkpipe(e, O_NONBLOCK, 4096);
	CHECK(rp_write(e[1], "left", 4) == 4);
	CHECK(rp_close(e[1]) == 0);
	CHECK(rp_close(e[0]) == 0);
	all_calls_ebadf(e[0]);
	all_calls_ebadf(e[1]);
}

TEST(pipe2_absurd_capacity_einval)
{
	static const size_t caps[] = { SIZE_MAX, (size_t)1 << 40, (SIZE_MAX >> 1) + 2,
				       RP_MAX_CAPACITY + 1, RP_MAX_CAPACITY * 2 };
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		rp_end *sentinel = (rp_end *)&caps[i];
		rp_end *e[2] = { sentinel, sentinel };
		CHECK_ERR(rp_pipe2(e, 0, caps[i]), EINVAL);
		CHECK(e[0] == sentinel && e[1] == sentinel);
	}
}
