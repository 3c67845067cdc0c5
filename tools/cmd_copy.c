/*
 * cmd_copy.c - `ringpipe read` and `ringpipe write`: bridges between a
 * named ringpipe and a shell pipeline, like cat(1) through a FIFO.
 *
 * read copies straight out of the ring (rp_read_peek) into write(2), and
 * write reads straight into it (rp_write_reserve), so the only copies are
 * the kernel's.  Errors behave as cat's do: SIGPIPE
 * ends us as it would end cat; if it is ignored, EPIPE is reported and
 * the status is 1.
 */
#define _GNU_SOURCE
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ringpipe.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

struct progress {
	bool on;
	uint64_t bytes;
	double start, last;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress_show(struct progress *p, bool final)
{
	double t = now_s();
	if (!p->on || (!final && t - p->last < 0.5))
		return;
	p->last = t;
	char b[32], r[32];
	double el = t - p->start > 1e-6 ? t - p->start : 1e-6;
	fprintf(stderr, "\r%8s  %8s/s  %6.1fs%s", tool_human(p->bytes, b, sizeof(b)),
		tool_human((uint64_t)(p->bytes / el), r, sizeof(r)), el, final ? "\n" : "");
}

/*
 * A bridge sits in a shell pipeline next to processes that move the same
 * data through kernel pipes, usually more busy processes than CPUs: a
 * waiting end that spins takes the CPU the producer or consumer needs
 * (measured: about 20% slower than cat through a FIFO when fed by a third
 * process, on par without the spin).  So the bridges sleep at once, unless
 * the user sets RINGPIPE_SPIN_NS.
 */
static void no_spin_by_default(void)
{
	setenv("RINGPIPE_SPIN_NS", "0", 0);
}

static int parse(int argc, char **argv, struct progress *p, const char **path)
{
	static const struct option opts[] = {
		{ "progress", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "p", opts, NULL)) != -1) {
		if (c != 'p')
			return -1;
		p->on = true;
	}
	if (optind != argc - 1) {
		/* argv[0] is "ringpipe: read" (main.c), as getopt's messages say. */
		fprintf(stderr, "%s: expected exactly one PATH\n", argv[0]);
		return -1;
	}
	*path = argv[optind];
	p->start = p->last = now_s();
	no_spin_by_default();
	return 0;
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

int rp_cmd_read(int argc, char **argv)
{
	struct progress p = { 0 };
	const char *path;
	if (parse(argc, argv, &p, &path) < 0)
		return 2;
	rp_end *r = rp_open(path, O_RDONLY);
	if (!r) {
		tool_err(path, "%s", tool_strerror(errno));
		return 1;
	}
	int status = 0;
	for (;;) {
		size_t n;
		const char *span = rp_read_peek(r, &n);
		if (!span) {
			if (errno == EINTR)
				continue;
			if (n == 0 && errno == 0)
				break;                          /* EOF */
			tool_err(path, "%s", strerror(errno));
			status = 1;
			break;
		}
		if (n > CHUNK)
			n = CHUNK;
		if (write_all(STDOUT_FILENO, span, n) < 0) {
			tool_err("stdout", "%s", strerror(errno));
			status = 1;
			break;
		}
		rp_read_consume(r, n);
		p.bytes += n;
		progress_show(&p, false);
	}
	progress_show(&p, true);
	rp_close(r);
	return status;
}

/*
 * One read(2) from stdin into a reservation in the ring, committed: what
 * was read (> 0), 0 at EOF, -1 with errno.  A reservation holds the
 * writers' lock, so other writers of the pipe must never wait on our
 * stdin: from a pipe or a socket we wait for data before reserving and
 * then read with RWF_NOWAIT (EAGAIN: someone else took it; wait again).
 * A file never blocks for long, so it is read plainly.  *unsupported is
 * set when the kernel refuses RWF_NOWAIT on stdin.  A failure of the ring
 * (EPIPE) is -2, with the message given.
 */
static ssize_t fill_from_stdin(rp_end *w, const char *path, size_t len, bool stream,
			       bool *unsupported)
{
	for (;;) {
		if (stream) {
			struct pollfd pf = { .fd = STDIN_FILENO, .events = POLLIN };
			if (poll(&pf, 1, -1) < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
		}
		void *span = rp_write_reserve(w, len);
		if (!span) {
			if (errno == EINTR)
				continue;
			tool_err(path, "%s", strerror(errno));
			return -2;
		}
		struct iovec v = { span, len };
		ssize_t n = stream ? preadv2(STDIN_FILENO, &v, 1, -1, RWF_NOWAIT)
				   : read(STDIN_FILENO, span, len);
		int err = errno;
		rp_write_commit(w, n > 0 ? (size_t)n : 0);
		if (n >= 0)
			return n;
		if (err == EAGAIN || err == EINTR)
			continue;
		if (err == EOPNOTSUPP || err == EINVAL)
			*unsupported = true;
		errno = err;
		return -1;
	}
}

/* The old way, when stdin refuses RWF_NOWAIT: through a buffer. */
static ssize_t copy_from_stdin(rp_end *w, char *buf, const char *path)
{
	ssize_t n;

	do
		n = read(STDIN_FILENO, buf, CHUNK);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	/* rp_write may return short (a signal); keep going. */
	for (ssize_t off = 0; off < n;) {
		ssize_t m = rp_write(w, buf + off, (size_t)(n - off));
		if (m < 0 && errno == EINTR)
			continue;
		if (m < 0) {
			tool_err(path, "%s", strerror(errno));
			return -2;
		}
		off += m;
	}
	return n;
}

int rp_cmd_write(int argc, char **argv)
{
	struct progress p = { 0 };
	const char *path;
	if (parse(argc, argv, &p, &path) < 0)
		return 2;
	rp_end *w = rp_open(path, O_WRONLY);
	if (!w) {
		tool_err(path, "%s", tool_strerror(errno));
		return 1;
	}
	/* A quarter ring per read: the reader drains one part while we fill
	 * the next (as rp_write publishes big writes). */
	size_t cap = rp_capacity(w);
	size_t len = cap / 4 < 4096 ? cap : cap / 4 > CHUNK ? CHUNK : cap / 4;
	struct stat st;
	bool stream = fstat(STDIN_FILENO, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
	bool unsupported = false;
	char *buf = NULL;
	int status = 0;
	for (;;) {
		ssize_t n;
		if (!unsupported) {
			n = fill_from_stdin(w, path, len, stream, &unsupported);
			if (n == -1 && unsupported)
				continue;
		} else {
			if (!buf && !(buf = malloc(CHUNK))) {
				tool_err(NULL, "out of memory");
				status = 1;
				break;
			}
			n = copy_from_stdin(w, buf, path);
		}
		if (n == -2) {
			status = 1;
			break;
		}
		if (n < 0) {
			tool_err("stdin", "%s", strerror(errno));
			status = 1;
			break;
		}
		if (n == 0)
			break;
		p.bytes += (uint64_t)n;
		progress_show(&p, false);
	}
	progress_show(&p, true);
	free(buf);
	if (rp_close(w) < 0 && !status) {
		tool_err(path, "%s", strerror(errno));
		status = 1;
	}
	return status;
}
