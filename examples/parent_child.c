/*
 * parent_child.c - the classic pipe(2) + fork(2) pattern, with ringpipe.
 *
 * The parent makes a pipe, forks, and writes one message; the child reads
 * it and prints it.  Each process closes the end it does not use, exactly
 * as with kernel pipes: otherwise the child, still holding a write end
 * itself, would never see end of file.
 *
 * Build: cc -std=gnu11 -Iinclude examples/parent_child.c build/libringpipe.a -lpthread
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ringpipe.h>

int main(void)
{
	rp_end *ends[2];        /* ends[0] reads, ends[1] writes */
	const char msg[] = "hello from the parent through a ringpipe";

	if (rp_pipe(ends) == -1) {
		perror("rp_pipe");
		return 1;
	}

	fflush(stdout);         /* don't let the child inherit buffered output */
	pid_t pid = fork();
	if (pid == -1) {
		perror("fork");
		return 1;
	}

	if (pid == 0) {
		/* Child: the reader.  Drop our copy of the write end first. */
		char buf[256];
		size_t got = 0;
		ssize_t n;

		rp_close(ends[1]);
		/* A read returns what is there; loop until EOF (0). */
		while ((n = rp_read(ends[0], buf + got, sizeof(buf) - 1 - got)) > 0)
			got += (size_t)n;
		if (n == -1) {
			perror("child: rp_read");
			_exit(1);
		}
		buf[got] = '\0';
		printf("child %d read %zu bytes: \"%s\"\n", (int)getpid(), got, buf);
		rp_close(ends[0]);
		exit(strcmp(buf, msg) == 0 ? 0 : 1);
	}

	/* Parent: the writer. */
	rp_close(ends[0]);
	printf("parent %d writes %zu bytes\n", (int)getpid(), strlen(msg));
	fflush(stdout);
	if (rp_write(ends[1], msg, strlen(msg)) != (ssize_t)strlen(msg)) {
		perror("parent: rp_write");
		return 1;
	}
	rp_close(ends[1]);      /* the last writer is gone: the child gets EOF */

	int status;
	if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "child failed\n");
		return 1;
	}
	printf("child exited 0: message delivered once, then EOF\n");
	return 0;
}
