/*
 * blocked_writer.c - a full pipe makes the writer wait for the reader.
 *
 * The pipe gets the smallest capacity, 4096 bytes.  The parent fills it,
 * shows that a non-blocking write now fails with EAGAIN, then makes a
 * blocking write of three more rings' worth.  The child reader sleeps for
 * 300 ms before it drains the pipe, so the writer is blocked about that
 * long: flow control, as the seed primer says, "the producer will be told
 * to wait".  The timings are printed from one clock shared by both
 * processes (CLOCK_MONOTONIC).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ringpipe.h>

#define READER_DELAY_MS 300

static double t0;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Print a line stamped with the time since the start, in milliseconds. */
#define LOG(...) do { printf("[%7.1f ms] ", (now() - t0) * 1e3); \
		      printf(__VA_ARGS__); fflush(stdout); } while (0)

int main(void)
{
	rp_end *ends[2];

	if (rp_pipe2(ends, 0, RP_MIN_CAPACITY) == -1) {
		perror("rp_pipe2");
		return 1;
	}
	size_t cap = rp_capacity(ends[1]);
	size_t more = 3 * cap;
	char *buf = malloc(more);
	if (!buf)
		return 1;
	memset(buf, 'x', more);

	t0 = now();
	fflush(stdout);
	pid_t pid = fork();
	if (pid == -1) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		/* Child: a slow reader. */
		size_t total = 0;
		ssize_t n;

		rp_close(ends[1]);
		usleep(READER_DELAY_MS * 1000);
		LOG("reader: wakes up, drains the pipe\n");
		while ((n = rp_read(ends[0], buf, more)) > 0)
			total += (size_t)n;
		LOG("reader: EOF after %zu bytes\n", total);
		rp_close(ends[0]);
		exit(n == 0 && total == cap + more ? 0 : 1);
	}

	/* Parent: the writer. */
	rp_close(ends[0]);

	ssize_t n = rp_write(ends[1], buf, cap);
	LOG("writer: wrote %zd bytes; queued %zd of capacity %zu: the pipe is full\n",
	    n, rp_nread(ends[1]), cap);

	/* Non-blocking, a full pipe refuses even one byte... */
	rp_set_nonblock(ends[1], 1);
	ssize_t nb = rp_write(ends[1], buf, 1);
	int nb_errno = errno;
	LOG("writer: non-blocking write of 1 byte: %zd (%s)\n", nb,
	    nb == -1 ? strerror(nb_errno) : "?");
	rp_set_nonblock(ends[1], 0);

	/* ...blocking, the writer waits until the reader makes room. */
	LOG("writer: blocking write of %zu more bytes...\n", more);
	double start = now();
	ssize_t m = rp_write(ends[1], buf, more);
	double blocked_ms = (now() - start) * 1e3;
	LOG("writer: write returned %zd after %.1f ms\n", m, blocked_ms);
	rp_close(ends[1]);

	int status;
	waitpid(pid, &status, 0);
	int ok = n == (ssize_t)cap && nb == -1 && nb_errno == EAGAIN &&
		 m == (ssize_t)more && WIFEXITED(status) &&
		 WEXITSTATUS(status) == 0 &&
		 blocked_ms >= READER_DELAY_MS / 3.0;   /* generous: it blocked */
	printf("%s: the writer was blocked %.0f ms by a reader that slept %d ms\n",
	       ok ? "ok" : "FAILED", blocked_ms, READER_DELAY_MS);
	free(buf);
	return ok ? 0 : 1;
}
