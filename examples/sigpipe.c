/*
 * sigpipe.c - writing to a widowed pipe: SIGPIPE, or EPIPE.
 *
 * "widowing pipes sends a signal SIGPIPE" (the seed primer).  Once no read
 * end is open anywhere, a write raises SIGPIPE, whose default action
 * kills the writer.  A process that ignores (or catches, or blocks)
 * SIGPIPE survives and sees the write fail with EPIPE instead, which is
 * what Python programs see as BrokenPipeError.
 *
 * 1. A reader child reads one message, closes its end and exits; the
 *    parent has closed its own read end, so the pipe is now widowed.
 * 2. A writer child with the default SIGPIPE disposition writes: it dies.
 * 3. The parent ignores SIGPIPE and writes: -1 with errno EPIPE.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ringpipe.h>

int main(void)
{
	rp_end *ends[2];
	int status, ok = 1;

	if (rp_pipe(ends) == -1) {
		perror("rp_pipe");
		return 1;
	}

	/* 1. The only reader reads one message and goes away. */
	fflush(stdout);
	pid_t reader = fork();
	if (reader == 0) {
		char buf[64] = { 0 };
		rp_close(ends[1]);
		ssize_t n = rp_read(ends[0], buf, sizeof(buf) - 1);
		printf("reader: got %zd bytes \"%s\", closes its end and exits\n",
		       n, buf);
		rp_close(ends[0]);
		exit(0);
	}
	rp_close(ends[0]);              /* the parent keeps only the write end */
	rp_write(ends[1], "hello", 5);
	waitpid(reader, &status, 0);
	printf("parent: the reader is gone; the pipe is widowed\n");

	/* 2. Default disposition: the write kills the writer. */
	fflush(stdout);
	pid_t writer = fork();
	if (writer == 0) {
		signal(SIGPIPE, SIG_DFL);
		rp_write(ends[1], "anyone there?", 13);
		printf("writer: still alive?!\n");      /* not reached */
		exit(0);
	}
	waitpid(writer, &status, 0);
	if (WIFSIGNALED(status))
		printf("writer child (SIGPIPE default): killed by signal %d (%s)\n",
		       WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		printf("writer child (SIGPIPE default): exited with %d\n",
		       WEXITSTATUS(status));
	ok &= WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE;

	/* 3. Ignored: the write just fails with EPIPE.  Again and again. */
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < 2; i++) {
		errno = 0;
		ssize_t n = rp_write(ends[1], "anyone there?", 13);
		printf("parent (SIGPIPE ignored): rp_write returned %zd, errno %d (%s)\n",
		       n, errno, strerror(errno));
		ok &= n == -1 && errno == EPIPE;
	}

	/* A zero-length write is the exception: it succeeds, no EPIPE. */
	ssize_t z = rp_write(ends[1], "", 0);
	printf("parent: a 0-byte write returns %zd\n", z);
	ok &= z == 0;

	rp_close(ends[1]);
	return ok ? 0 : 1;
}
