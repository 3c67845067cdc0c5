/*
 * wrong_end.c - a pipe is one-way: using an end the wrong way is EBADF.
 *
 * The seed primer shows it in Python:
 *
 *     r, w = os.pipe()
 *     os.write(r, b"test")   # [Errno 9] Bad file descriptor
 *
 * ringpipe gives the same error, from the same errno, for both mistakes:
 * writing the read end and reading the write end.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <ringpipe.h>

int main(void)
{
	rp_end *ends[2];
	char c;
	int ok = 1;

	if (rp_pipe(ends) == -1) {
		perror("rp_pipe");
		return 1;
	}

	/* Try writing to the read end. */
	errno = 0;
	if (rp_write(ends[0], "test", 4) == -1)
		printf("Writing to read end: [Errno %d] %s\n", errno, strerror(errno));
	else
		printf("Writing to read end: unexpectedly succeeded\n");
	ok &= errno == EBADF;

	/* And reading from the write end. */
	errno = 0;
	if (rp_read(ends[1], &c, 1) == -1)
		printf("Reading from write end: [Errno %d] %s\n", errno, strerror(errno));
	else
		printf("Reading from write end: unexpectedly succeeded\n");
	ok &= errno == EBADF;

	/* The right way round works, and the failed calls changed nothing. */
	char buf[8] = { 0 };
	ok &= rp_write(ends[1], "test", 4) == 4;
	ok &= rp_read(ends[0], buf, sizeof(buf)) == 4 && memcmp(buf, "test", 4) == 0;
	printf("Writing the write end and reading the read end: \"%s\"\n", buf);

	/* A closed end is also EBADF, like a closed descriptor. */
	rp_close(ends[1]);
	errno = 0;
	if (rp_write(ends[1], "x", 1) == -1)
		printf("Writing a closed end: [Errno %d] %s\n", errno, strerror(errno));
	ok &= errno == EBADF;

	rp_close(ends[0]);
	return ok ? 0 : 1;
}
