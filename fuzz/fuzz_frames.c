/*
 * fuzz_frames.c - libFuzzer target for the message layer's frame decoder.
 *
 * Each input is the raw byte stream a hostile sender could put into a
 * pipe under a connection.  It is written (at most one ring's worth) into
 * a fresh 64 KiB pipe with rp_write, the writer is closed, and the read
 * end is wrapped with rp_conn_from_ends.  Before that, a few KiB short of
 * a ring's worth is written and read back, so that the input straddles
 * the ring's wrap point (at an offset that depends on the input's size):
 * headers and payloads split across it must decode as any others.  Then
 * rp_recv_alloc (limit 1 MiB) and rp_recv with a small buffer take turns
 * until ENODATA, or until the same error comes back twice in a row.
 *
 * The library must never crash, leak (memory, descriptors, mappings: a
 * failing rp_pipe2 traps), hang (a bounded loop traps), return an error
 * other than EBADMSG / EMSGSIZE / ENODATA, or return more bytes than the
 * input could hold.
 *
 * Build and run (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -Iinclude -Isrc src/[a-z]*.c fuzz/fuzz_frames.c -lpthread -o build/fuzz/fuzz_frames
 *   build/fuzz/fuzz_frames -max_total_time=20 -timeout=10 -dict=fuzz/frames.dict \
 *         build/fuzz/corpus fuzz/corpus/frames
 */
#include <ringpipe.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CAP  65536
#define FUZZ_MAX  (1u << 20)
#define MAX_CALLS 20000      /* each success consumes >= 16 bytes: far more than enough */

#define must(cond)                                                          \
	do {                                                                \
		if (!(cond))                                                \
			__builtin_trap();                                   \
	} while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rp_end *e[2];
	size_t n = size < FUZZ_CAP ? size : FUZZ_CAP;

	/* Fails only if an earlier input leaked descriptors or mappings. */
	must(rp_pipe2(e, 0, FUZZ_CAP) == 0);
	must(rp_capacity(e[1]) == FUZZ_CAP);

	/* Move head and tail near the end of the ring. */
	static unsigned char pad[FUZZ_CAP];
	size_t skip = FUZZ_CAP - 24 - (size * 7) % 4096;
	must(rp_write(e[1], pad, skip) == (ssize_t)skip);
	for (size_t got = 0; got < skip;) {
		ssize_t r = rp_read(e[0], pad, skip - got);
		must(r > 0);
		got += (size_t)r;
	}
	if (n)
		must(rp_write(e[1], data, n) == (ssize_t)n);
	must(rp_close(e[1]) == 0);

	rp_conn *c = rp_conn_from_ends(e[0], NULL);
	must(c != NULL);
	must(rp_conn_set_max_message(c, FUZZ_MAX) == 0);

	unsigned char small[64];
	int last_err = 0, calls;
	for (calls = 0; calls < MAX_CALLS; calls++) {
		ssize_t r;
		if (calls % 2 == 0) {
			void *m = (void *)&sink;
			r = rp_recv_alloc(c, &m);
			if (r >= 0) {
				must(m != NULL);
				must((size_t)r <= FUZZ_MAX && (size_t)r + 16 <= n);
				const uint8_t *p = m;
				uint8_t x = 0;
				for (ssize_t i = 0; i < r; i++)   /* every byte readable */
					x ^= p[i];
				sink = x;
				free(m);
			} else {
				must(m == NULL);
			}
		} else {
			memset(small, 0xa5, sizeof small);
			r = rp_recv(c, small, sizeof small);
			if (r >= 0)
				must((size_t)r <= sizeof small && (size_t)r + 16 <= n);
		}
		if (r >= 0) {
			last_err = 0;
			continue;
		}
		int err = errno;
		if (err == ENODATA)
			break;
		must(err == EBADMSG || err == EMSGSIZE);
		if (err == last_err)
			break;
		last_err = err;
	}
	must(calls < MAX_CALLS);

	/* Once at the end, the end stays: ENODATA again, for both calls. */
	if (calls < MAX_CALLS && errno == ENODATA) {
		void *m = NULL;
		must(rp_recv(c, small, sizeof small) == -1 && errno == ENODATA);
		must(rp_recv_alloc(c, &m) == -1 && errno == ENODATA);
		must(rp_poll(c, 0) == 1);
	}
	must(rp_conn_close(c) == 0);
	return 0;
}
