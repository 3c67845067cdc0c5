/*
 * named_pipe.c - a named ringpipe, opened by path by two processes.
 *
 * rp_mkfifo() makes the name (here in /tmp), like mkfifo(3): it opens
 * nothing.  Two children then meet through the name alone, as unrelated
 * programs would: neither uses anything inherited from the parent but the
 * path string.  As with a FIFO, the reader's rp_open() waits for a writer
 * and the writer's waits for a reader.  rp_unlink() removes the name and
 * the pipe's files in /dev/shm.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ringpipe.h>

static const char *const lines[] = { "first line\n", "second line\n", "last line\n" };
#define NLINES (sizeof(lines) / sizeof(lines[0]))

static int writer(const char *path)
{
	rp_end *w = rp_open(path, O_WRONLY);    /* blocks until a reader opens */
	if (!w) {
		perror("writer: rp_open");
		return 1;
	}
	printf("writer %d: opened %s for writing\n", (int)getpid(), path);
	fflush(stdout);
	for (size_t i = 0; i < NLINES; i++)
		if (rp_write(w, lines[i], strlen(lines[i])) == -1) {
			perror("writer: rp_write");
			return 1;
		}
	rp_close(w);                            /* the reader will see EOF */
	return 0;
}

static int reader(const char *path)
{
	char buf[256];
	size_t got = 0;
	ssize_t n;

	rp_end *r = rp_open(path, O_RDONLY);    /* blocks until a writer opens */
	if (!r) {
		perror("reader: rp_open");
		return 1;
	}
	printf("reader %d: opened %s for reading\n", (int)getpid(), path);
	fflush(stdout);
	while ((n = rp_read(r, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	rp_close(r);
	buf[got] = '\0';
	printf("reader %d: read %zu bytes until EOF:\n%s", (int)getpid(), got, buf);

	/* Check we got exactly what the writer sent. */
	char want[256] = "";
	for (size_t i = 0; i < NLINES; i++)
		strcat(want, lines[i]);
	return n == 0 && strcmp(buf, want) == 0 ? 0 : 1;
}

int main(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/ringpipe-example-%d", (int)getpid());

	if (rp_mkfifo(path, 0600, 0) == -1) {
		perror("rp_mkfifo");
		return 1;
	}
	printf("made named pipe %s\n", path);

	/* Start the reader first and the writer second; either order works. */
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		fflush(stdout);
		pids[i] = fork();
		if (pids[i] == -1) {
			perror("fork");
			return 1;
		}
		if (pids[i] == 0)
			exit(i == 0 ? reader(path) : writer(path));
	}

	int ok = 1;
	for (int i = 0; i < 2; i++) {
		int status;
		waitpid(pids[i], &status, 0);
		ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}

	if (rp_unlink(path) == -1) {
		perror("rp_unlink");
		ok = 0;
	} else {
		printf("removed %s%s\n", path,
		       access(path, F_OK) == -1 ? "" : " (but it is still there!)");
		ok &= access(path, F_OK) == -1;
	}
	return ok ? 0 : 1;
}
