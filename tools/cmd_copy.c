/*
 * cmd_copy.c - `ringpipe read` and `ringpipe write`: bridges between a
 * named ringpipe and a shell pipeline, like cat(1) through a FIFO.
 *
 * read copies straight out of the ring (rp_read_peek) into write(2), so
 * the only copies are the kernel's.  Errors behave as cat's do: SIGPIPE
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
#include <stdlib.h>
#include <string.h>
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
		tool_err(argv[0], "expected exactly one PATH");
		return -1;
	}
	*path = argv[optind];
	p->start = p->last = now_s();
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
	char *buf = malloc(CHUNK);
	int status = 0;
	if (!buf) {
		tool_err(NULL, "out of memory");
		rp_close(w);
		return 1;
	}
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tool_err("stdin", "%s", strerror(errno));
			status = 1;
			break;
		}
		if (n == 0)
			break;
		/* rp_write may return short (a signal); keep going. */
		for (ssize_t off = 0; off < n;) {
			ssize_t m = rp_write(w, buf + off, (size_t)(n - off));
			if (m < 0 && errno == EINTR)
				continue;
			if (m < 0) {
				tool_err(path, "%s", strerror(errno));
				status = 1;
				goto out;
			}
			off += m;
		}
		p.bytes += (uint64_t)n;
		progress_show(&p, false);
	}
out:
	progress_show(&p, true);
	free(buf);
	if (rp_close(w) < 0 && !status) {
		tool_err(path, "%s", strerror(errno));
		status = 1;
	}
	return status;
}
