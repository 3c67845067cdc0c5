/*
 * sender_receiver.c - the seed primer's first program, on ringpipe.
 *
 * The primer ("What are Unix pipes and why do they matter?") opens with:
 *
 *     def sender(conn):
 *         messages = ["Hello", "World", "Done"]
 *         for msg in messages:
 *             print(f"Sending: {msg}")
 *             conn.send(msg)
 *         conn.close()
 *
 *     def receiver(conn):
 *         while True:
 *             try:
 *                 msg = conn.recv()         # Blocks until data is available
 *                 print(f"Received: {msg}")
 *             except EOFError:              # Sender has closed the connection
 *                 break
 *
 *     parent_conn, child_conn = Pipe()
 *     p1 = Process(target=sender, args=(child_conn,))
 *     p2 = Process(target=receiver, args=(parent_conn,))
 *     p1.start(); p2.start(); p1.join(); p2.join()
 *
 * Here the same two processes talk through a ringpipe byte pipe.  Two
 * things change on the way:
 *
 *   - A pipe is a byte stream with no message boundaries, so "Hello" and
 *     "World" could arrive as one read of "HelloWorld".  Like
 *     multiprocessing.Connection, each message is framed with a 4-byte
 *     big-endian length.  A frame of at most RP_PIPE_BUF bytes written in
 *     one rp_write() is atomic, so frames never tear.
 *
 *   - The primer's program never ends: the receiver waits for EOFError
 *     forever, because the parent, and under fork the receiver itself,
 *     still hold the sending end.  EOF only comes when every copy of the
 *     write end is closed, so here every process closes the ends it does
 *     not use (step 3 of the primer: "Start the processes, close the
 *     pipes, and join them").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ringpipe.h>

/* ---- a tiny message layer over the byte pipe ------------------------- */

/* Send one message: header and payload in one atomic write. */
static int send_msg(rp_end *w, const char *msg)
{
	unsigned char frame[RP_PIPE_BUF];
	size_t len = strlen(msg);

	if (len > sizeof(frame) - 4)
		return -1;
	frame[0] = (unsigned char)(len >> 24);
	frame[1] = (unsigned char)(len >> 16);
	frame[2] = (unsigned char)(len >> 8);
	frame[3] = (unsigned char)len;
	memcpy(frame + 4, msg, len);
	return rp_write(w, frame, 4 + len) == (ssize_t)(4 + len) ? 0 : -1;
}

/* Read exactly n bytes: 1 if done, 0 on EOF before the first byte, -1 else. */
static int read_exact(rp_end *r, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = rp_read(r, (char *)buf + got, n - got);
		if (k == 0)
			return got == 0 ? 0 : -1;   /* EOF (mid-message is an error) */
		if (k < 0)
			return -1;
		got += (size_t)k;
	}
	return 1;
}

/* Receive one message into buf: its length, -1 at EOF, -2 on error. */
static long recv_msg(rp_end *r, char *buf, size_t cap)
{
	unsigned char h[4];
	int st = read_exact(r, h, 4);
	if (st <= 0)
		return st == 0 ? -1 : -2;
	uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
		       (uint32_t)h[2] << 8 | h[3];
	if (len >= cap || read_exact(r, buf, len) != 1)
		return -2;
	buf[len] = '\0';
	return (long)len;
}

/* ---- the primer's two processes -------------------------------------- */

static int sender(rp_end *conn)
{
	const char *messages[] = { "Hello", "World", "Done" };
	for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
		printf("Sending: %s\n", messages[i]);
		fflush(stdout);
		if (send_msg(conn, messages[i]) == -1) {
			perror("send");
			return 1;
		}
	}
	rp_close(conn);
	return 0;
}

static int receiver(rp_end *conn)
{
	char msg[RP_PIPE_BUF];
	int count = 0;
	for (;;) {
		long n = recv_msg(conn, msg, sizeof(msg));  /* blocks until data */
		if (n == -1) {                  /* EOF: the sender has closed */
			printf("Receiver: sender has closed the connection\n");
			break;
		}
		if (n < 0) {
			fprintf(stderr, "receiver: broken message\n");
			return 1;
		}
		printf("Received: %s\n", msg);
		fflush(stdout);
		count++;
	}
	rp_close(conn);
	return count == 3 ? 0 : 1;
}

int main(void)
{
	rp_end *ends[2];                /* ends[0] receives, ends[1] sends */

	/* Create the pipe. */
	if (rp_pipe(ends) == -1) {
		perror("rp_pipe");
		return 1;
	}

	/* Create and start the processes; each keeps only its own end. */
	fflush(stdout);
	pid_t p1 = fork();
	if (p1 == 0) {
		rp_close(ends[0]);
		exit(sender(ends[1]));
	}
	pid_t p2 = fork();
	if (p2 == 0) {
		rp_close(ends[1]);      /* or the receiver never sees EOF */
		exit(receiver(ends[0]));
	}
	if (p1 == -1 || p2 == -1) {
		perror("fork");
		return 1;
	}

	/* Close the pipes in the parent, then join the processes. */
	rp_close(ends[0]);
	rp_close(ends[1]);

	int s1, s2;
	waitpid(p1, &s1, 0);
	waitpid(p2, &s2, 0);
	int ok = WIFEXITED(s1) && WEXITSTATUS(s1) == 0 &&
		 WIFEXITED(s2) && WEXITSTATUS(s2) == 0;
	printf("%s\n", ok ? "both processes finished" : "FAILED");
	return ok ? 0 : 1;
}
