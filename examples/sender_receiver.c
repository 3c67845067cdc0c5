/*
 * sender_receiver.c - the primer's first program, in C over ringpipe.
 *
 * The primer writes it with multiprocessing:
 *
 *     def sender(conn):
 *         for msg in ["Hello", "World", "Done"]:
 *             print(f"Sending: {msg}")
 *             conn.send(msg)
 *         conn.close()
 *
 *     def receiver(conn):
 *         while True:
 *             try:
 *                 msg = conn.recv()       # blocks until data is available
 *                 print(f"Received: {msg}")
 *             except EOFError:            # the sender has closed
 *                 break
 *
 *     parent_conn, child_conn = Pipe()
 *     Process(target=sender, args=(child_conn,)) ...
 *     Process(target=receiver, args=(parent_conn,)) ...
 *
 * As the primer writes it, that program never ends: EOF comes only when
 * every copy of the sending end is closed, and the parent and the receiver
 * (which inherit both connections through fork) still hold one.  So here
 * each process closes the connection it does not use, and the parent
 * closes both: then the sender's close is the last, and the receiver
 * sees EOF (ENODATA, ringpipe's EOFError) and exits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ringpipe.h>

static int sender(rp_conn *conn)
{
	const char *messages[] = { "Hello", "World", "Done" };
	for (int i = 0; i < 3; i++) {
		printf("Sending: %s\n", messages[i]);
		fflush(stdout);
		if (rp_send(conn, messages[i], strlen(messages[i])) < 0) {
			perror("rp_send");
			return 1;
		}
	}
	rp_conn_close(conn);
	return 0;
}

static int receiver(rp_conn *conn)
{
	char msg[256];
	for (;;) {
		ssize_t n = rp_recv(conn, msg, sizeof(msg) - 1);  /* blocks */
		if (n < 0 && errno == ENODATA)
			break;                  /* EOF: the sender has closed */
		if (n < 0) {
			perror("rp_recv");
			return 1;
		}
		msg[n] = '\0';
		printf("Received: %s\n", msg);
		fflush(stdout);
	}
	rp_conn_close(conn);
	return 0;
}

int main(void)
{
	rp_conn *c[2];                  /* parent_conn, child_conn = Pipe() */
	if (rp_conn_pipe(c, 1) < 0) {
		perror("rp_conn_pipe");
		return 1;
	}
	rp_conn *parent_conn = c[0], *child_conn = c[1];

	fflush(stdout);
	pid_t p1 = fork();
	if (p1 == 0) {
		rp_conn_close(parent_conn);   /* not ours */
		exit(sender(child_conn));
	}
	pid_t p2 = fork();
	if (p2 == 0) {
		rp_conn_close(child_conn);    /* else we would never see EOF */
		exit(receiver(parent_conn));
	}
	rp_conn_close(parent_conn);           /* the parent uses neither */
	rp_conn_close(child_conn);

	int s1 = 1, s2 = 1;
	if (p1 < 0 || p2 < 0 || waitpid(p1, &s1, 0) < 0 || waitpid(p2, &s2, 0) < 0) {
		perror("fork/wait");
		return 1;
	}
	return WIFEXITED(s1) && !WEXITSTATUS(s1) && WIFEXITED(s2) && !WEXITSTATUS(s2) ? 0 : 1;
}
