/* test_poll.c - readiness of rp_fileno() under poll, select and epoll. */
#include "harness.h"
#include <ringpipe.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>

static void mkpipe(rp_end *e[2], int flags, size_t cap)
{
	CHECK(rp_pipe2(e, flags, cap) == 0);
	CHECK(e[0] != NULL && e[1] != NULL);
}

/* revents of one poll() on fd, 0 on timeout. */
static short revents(rp_end *e, short events, int timeout_ms)
{
	struct pollfd p = { .fd = rp_fileno(e), .events = events };
	CHECK(p.fd >= 0);
	int r = poll(&p, 1, timeout_ms);
	CHECK(r >= 0);
	return r ? p.revents : 0;
}

/* Nonblocking pipe of capacity 4096, full, with the writer having seen EAGAIN. */
static void mkfull(rp_end *e[2])
{
	static unsigned char buf[4096];
	mkpipe(e, O_NONBLOCK, 4096);
	CHECK(rp_write(e[1], buf, sizeof buf) == sizeof buf);
	CHECK_ERR(rp_write(e[1], buf, 1), EAGAIN);
}

TEST(read_end_not_readable_when_empty)
{
	rp_end *e[2];
	char c;
	mkpipe(e, O_NONBLOCK, 0);
	CHECK_ERR(rp_read(e[0], &c, 1), EAGAIN);
	double t0 = rp_now_ms();
	CHECK(revents(e[0], POLLIN, 100) == 0);
	CHECK(rp_now_ms() - t0 >= 90); /* poll waited for its timeout */
}

TEST(read_end_pollin_when_data)
{
	rp_end *e[2];
	mkpipe(e, O_NONBLOCK, 0);
	CHECK(revents(e[0], POLLIN, 0) == 0);
	CHECK(rp_write(e[1], "d", 1) == 1);
	CHECK(revents(e[0], POLLIN, 0) == POLLIN);
	CHECK(revents(e[0], POLLIN, 0) == POLLIN); /* level-triggered, consumes nothing */
	CHECK(rp_nread(e[0]) == 1);
}

TEST(read_end_not_pollin_after_drain)
{
	rp_end *e[2];
	char buf[16];
	mkpipe(e, O_NONBLOCK, 0);
	CHECK(rp_write(e[1], "0123456789", 10) == 10);
	CHECK(revents(e[0], POLLIN, 0) == POLLIN);
	CHECK(rp_read(e[0], buf, 5) == 5);
	CHECK(revents(e[0], POLLIN, 0) == POLLIN);
	CHECK(rp_read(e[0], buf, 5) == 5);
	CHECK(revents(e[0], POLLIN, 0) == 0);
	CHECK_ERR(rp_read(e[0], buf, 1), EAGAIN);
	CHECK(revents(e[0], POLLIN, 50) == 0);
}

/* The same when the zero-copy calls drain it: a consume of all it peeked
 * left the descriptor polling readable on an empty pipe. */
TEST(read_end_not_pollin_after_peek_and_consume_drain)
{
	rp_end *e[2];
	size_t n;
	mkpipe(e, O_NONBLOCK, 0);
	CHECK(rp_write(e[1], "0123456789", 10) == 10);
	CHECK(revents(e[0], POLLIN, 0) == POLLIN);
	CHECK(rp_read_peek(e[0], &n) != NULL && n == 10);
	CHECK(rp_read_consume(e[0], 4) == 0);
	CHECK(revents(e[0], POLLIN, 0) == POLLIN);
	CHECK(rp_read_peek(e[0], &n) != NULL && n == 6);
	CHECK(rp_read_consume(e[0], 6) == 0);
	CHECK(revents(e[0], POLLIN, 0) == 0);
	CHECK(rp_read_peek(e[0], &n) == NULL && errno == EAGAIN);
	CHECK(revents(e[0], POLLIN, 50) == 0);
}

/* The read end is shared with a child forked before anyone asked for its
 * descriptor; the child takes the data: the parent's descriptor must stop
 * polling readable (a kernel pipe's does: SEMANTICS P1). */
TEST(read_end_not_pollin_after_another_process_takes_the_data)
{
	rp_end *e[2];
	int go[2], back[2];
	char c;
	rp_alarm(10);
	mkpipe(e, 0, 0);
	CHECK(pipe(go) == 0 && pipe(back) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char buf[16];
		close(go[1]);
		for (int i = 0; i < 3; i++) {
			CHECK(read(go[0], &c, 1) == 1);
			CHECK(rp_read(e[0], buf, sizeof buf) == 3);
			CHECK(write(back[1], "t", 1) == 1);
		}
		_exit(0);
	}
	close(go[0]);
	for (int i = 0; i < 3; i++) {
		CHECK(revents(e[0], POLLIN, 0) == 0);
		CHECK(rp_write(e[1], "abc", 3) == 3);
		CHECK(revents(e[0], POLLIN, 0) == POLLIN);
		CHECK(write(go[1], "g", 1) == 1);
		CHECK(read(back[0], &c, 1) == 1);
		CHECK(revents(e[0], POLLIN, 100) == 0);
	}
	rp_wait_ok(pid);
}

TEST(write_end_pollout_when_room)
{
	static unsigned char buf[1000];
	rp_end *e[2];
	mkpipe(e, O_NONBLOCK, 4096);
	CHECK(revents(e[1], POLLOUT, 0) == POLLOUT);
	CHECK(rp_write(e[1], buf, sizeof buf) == sizeof buf);
	CHECK(revents(e[1], POLLOUT, 0) == POLLOUT);
}

TEST(write_end_not_pollout_when_full)
{
	rp_end *e[2];
	mkfull(e);
	CHECK(revents(e[1], POLLOUT, 100) == 0);
}

/* A kernel pipe's write end stops polling writable once the pipe is full,
 * whoever filled it and however (SEMANTICS P3): here a blocking end whose
 * descriptor was asked for first, filled by one write, no EAGAIN. */
TEST(write_end_not_pollout_once_a_blocking_write_fills_the_ring)
{
	static unsigned char buf[4096];
	rp_end *e[2];
	char c;
	mkpipe(e, 0, 4096);
	CHECK(revents(e[1], POLLOUT, 0) == POLLOUT);
	CHECK(rp_write(e[1], buf, sizeof buf) == sizeof buf);
	CHECK(revents(e[1], POLLOUT, 100) == 0);
	CHECK(rp_read(e[0], &c, 1) == 1);
	CHECK(revents(e[1], POLLOUT, 0) == POLLOUT);
}

/* The same when the descriptor is asked for only once the pipe is full. */
TEST(write_end_not_pollout_when_asked_for_while_full)
{
	static unsigned char buf[4096];
	rp_end *e[2];
	mkpipe(e, 0, 4096);
	CHECK(rp_write(e[1], buf, 100) == 100);
	CHECK(rp_write(e[1], buf, sizeof buf - 100) == sizeof buf - 100);
	CHECK(revents(e[1], POLLOUT, 100) == 0);
}

TEST(write_end_pollout_after_read_frees_room)
{
	rp_end *e[2];
	char c;
	mkfull(e);
	CHECK(revents(e[1], POLLOUT, 0) == 0);
	CHECK(rp_read(e[0], &c, 1) == 1);
	CHECK(revents(e[1], POLLOUT, 0) == POLLOUT);
	CHECK(rp_write(e[1], "x", 1) == 1);
}

TEST(write_end_pollout_wakes_when_other_process_drains)
{
	rp_end *e[2];
	mkfull(e);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		static unsigned char buf[4096];
		usleep(200 * 1000);
		CHECK(rp_read(e[0], buf, sizeof buf) == sizeof buf);
		_exit(0);
	}
	double t0 = rp_now_ms();
	CHECK(revents(e[1], POLLOUT, 5000) & POLLOUT);
	double dt = rp_now_ms() - t0;
	CHECK(dt >= 100 && dt < rp_ms(1200));
	rp_wait_ok(pid);
}

TEST(read_end_pollhup_after_writers_closed)
{
	rp_end *e[2];
	char buf[4];
	mkpipe(e, O_NONBLOCK, 0);
	CHECK(rp_write(e[1], "hi", 2) == 2);
	CHECK(rp_close(e[1]) == 0);
	short r = revents(e[0], POLLIN, 0);
	CHECK((r & POLLIN) && (r & POLLHUP));
	CHECK(rp_read(e[0], buf, sizeof buf) == 2);
	CHECK(revents(e[0], POLLIN, 0) & POLLHUP);
	CHECK(rp_read(e[0], buf, sizeof buf) == 0);
}

TEST(read_end_pollhup_when_writer_process_exits)
{
	rp_end *e[2];
	mkpipe(e, 0, 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(rp_close(e[0]) == 0);
		usleep(200 * 1000);
		_exit(0); /* without closing the writer */
	}
	CHECK(rp_close(e[1]) == 0);
	double t0 = rp_now_ms();
	CHECK(revents(e[0], POLLIN, 5000) & POLLHUP);
	CHECK(rp_now_ms() - t0 < rp_ms(1200));
	rp_wait_ok(pid);
}

TEST(write_end_pollerr_after_readers_closed)
{
	rp_end *e[2];
	mkpipe(e, O_NONBLOCK, 0);
	CHECK(rp_close(e[0]) == 0);
	short r = revents(e[1], POLLOUT, 0);
	CHECK(r & POLLERR);
	CHECK(r & POLLOUT); /* not full, and a write would not block */
}

TEST(write_end_pollerr_wakes_when_reader_process_dies)
{
	rp_end *e[2];
	mkfull(e);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(rp_close(e[1]) == 0);
		usleep(200 * 1000);
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	CHECK(rp_close(e[0]) == 0);
	double t0 = rp_now_ms();
	CHECK(revents(e[1], POLLOUT, 5000) & POLLERR);
	CHECK(rp_now_ms() - t0 < rp_ms(1200));
	CHECK(waitpid(pid, NULL, 0) == pid);
}

TEST(poll_wakes_when_other_process_writes)
{
	rp_end *e[2];
	char c;
	mkpipe(e, O_NONBLOCK, 0);
	CHECK_ERR(rp_read(e[0], &c, 1), EAGAIN);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		usleep(200 * 1000);
		CHECK(rp_write(e[1], "w", 1) == 1);
		_exit(0);
	}
	double t0 = rp_now_ms();
	CHECK(revents(e[0], POLLIN, 5000) & POLLIN);
	double dt = rp_now_ms() - t0;
	CHECK(dt >= 100 && dt < rp_ms(1200));
	CHECK(rp_read(e[0], &c, 1) == 1 && c == 'w');
	rp_wait_ok(pid);
}

TEST(select_sees_readable_and_writable)
{
	rp_end *e[2];
	mkpipe(e, 0, 0);
	CHECK(rp_write(e[1], "s", 1) == 1);
	int rfd = rp_fileno(e[0]), wfd = rp_fileno(e[1]);
	CHECK(rfd >= 0 && wfd >= 0 && rfd < FD_SETSIZE && wfd < FD_SETSIZE);
	fd_set rs, ws;
	FD_ZERO(&rs);
	FD_ZERO(&ws);
	FD_SET(rfd, &rs);
	FD_SET(wfd, &ws);
	struct timeval tv = { 0, 100 * 1000 };
	CHECK(select((rfd > wfd ? rfd : wfd) + 1, &rs, &ws, NULL, &tv) == 2);
	CHECK(FD_ISSET(rfd, &rs) && FD_ISSET(wfd, &ws));
}

/* Both in one epoll set with a socket: each reports only its own readiness. */
TEST(epoll_with_socketpair)
{
	rp_end *e[2];
	int sv[2];
	char c;
	struct epoll_event ev, out[4];
	mkpipe(e, O_NONBLOCK, 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = 1 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, rp_fileno(e[0]), &ev) == 0);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = 2 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev) == 0);

	CHECK(epoll_wait(ep, out, 4, 0) == 0);
	CHECK(write(sv[1], "s", 1) == 1);
	CHECK(epoll_wait(ep, out, 4, 1000) == 1 && out[0].data.u32 == 2);
	CHECK(rp_write(e[1], "p", 1) == 1);
	CHECK(epoll_wait(ep, out, 4, 1000) == 2);
	CHECK(out[0].data.u32 + out[1].data.u32 == 3);
	CHECK(read(sv[0], &c, 1) == 1);
	CHECK(epoll_wait(ep, out, 4, 1000) == 1 && out[0].data.u32 == 1);
	CHECK(rp_read(e[0], &c, 1) == 1 && c == 'p');
	CHECK(epoll_wait(ep, out, 4, 100) == 0);
}
