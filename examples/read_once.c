/*
 * read_once.c - data in a pipe is read once.
 *
 * Unlike a file, a pipe has no offset to rewind: a read consumes what it
 * returns.  Here ten bytes are written; the first read asks for four and
 * gets "0123", the second read gets the rest, "456789", not the same
 * bytes again.  A third read finds the pipe empty.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include <ringpipe.h>

int main(void)
{
	rp_end *ends[2];
	char a[16] = { 0 }, b[16] = { 0 };
	int ok = 1;

	/* Non-blocking, so the last read reports "empty" instead of waiting. */
	if (rp_pipe2(ends, O_NONBLOCK, 0) == -1) {
		perror("rp_pipe2");
		return 1;
	}

	rp_write(ends[1], "0123456789", 10);
	printf("wrote \"0123456789\"; bytes waiting: %zd\n", rp_nread(ends[0]));

	ssize_t n1 = rp_read(ends[0], a, 4);
	printf("first read (asked 4):   %zd bytes \"%s\"; waiting now: %zd\n",
	       n1, a, rp_nread(ends[0]));

	ssize_t n2 = rp_read(ends[0], b, sizeof(b) - 1);
	printf("second read (asked 15): %zd bytes \"%s\"; waiting now: %zd\n",
	       n2, b, rp_nread(ends[0]));

	char c;
	ssize_t n3 = rp_read(ends[0], &c, 1);
	printf("third read: %zd (%s): nothing is left to read twice\n",
	       n3, n3 == -1 ? strerror(errno) : "?");

	ok &= n1 == 4 && strcmp(a, "0123") == 0;
	ok &= n2 == 6 && strcmp(b, "456789") == 0;
	ok &= n3 == -1 && errno == EAGAIN;

	rp_close(ends[0]);
	rp_close(ends[1]);
	return ok ? 0 : 1;
}
