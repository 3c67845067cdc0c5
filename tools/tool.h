/*
 * tool.h - what the `ringpipe` command's subcommands share.
 */
#ifndef RP_TOOL_H
#define RP_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int rp_cmd_mkfifo(int argc, char **argv);
int rp_cmd_rm(int argc, char **argv);
int rp_cmd_ls(int argc, char **argv);
int rp_cmd_stat(int argc, char **argv);
int rp_cmd_read(int argc, char **argv);
int rp_cmd_write(int argc, char **argv);
int rp_cmd_top(int argc, char **argv);
int rp_cmd_bench(int argc, char **argv);

/* "ringpipe: <what>: <why>" on stderr. */
void tool_err(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The reason for errno, in the words a ringpipe user expects. */
const char *tool_strerror(int err);
/* "64K", "1M", "4096" -> bytes; false if malformed. */
bool tool_parse_size(const char *s, size_t *out);
/* 1536 -> "1.5K" */
const char *tool_human(uint64_t bytes, char *buf, size_t len);

/* What ls, stat and top know about one pipe. */
struct tool_holder {
	pid_t pid;
	char comm[32];
	char role;                 /* 'r', 'w' or '?' */
};

struct tool_pipe {
	dev_t dev;                 /* the ring file: the pipe's identity */
	ino_t ino;
	bool named, valid;
	uint32_t layout;           /* the header's layout version if the magic is ours */
	char problem[32];          /* see tool_pipe_problem() */
	char name[320];            /* the FIFO's path, or "anon:<inode>" */
	char ring_path[320];       /* /dev/shm/... for named pipes */
	uint64_t capacity, head, tail;
	uint64_t started_ns;    /* when what head counts began */
	uint32_t rd_sleepers, wr_sleepers;
	uint64_t rd_blocked_ns, wr_blocked_ns;
	struct tool_holder *holders;
	size_t nholders;
};

/* Why a pipe is not valid: "damaged", "layout vN" for a ring made by a
 * release with another header layout, or "no permission" to read it. */
static inline const char *tool_pipe_problem(const struct tool_pipe *p)
{
	return p->problem[0] ? p->problem : "damaged";
}

struct tool_denied {
	pid_t pid;
	char comm[32];
};

struct tool_inventory {
	struct tool_pipe *pipes;
	size_t npipes;
	struct tool_denied *denied;   /* processes we could not inspect */
	size_t ndenied;
};

int tool_inventory_scan(struct tool_inventory *inv);
void tool_inventory_free(struct tool_inventory *inv);
/* The inventory entry for the named pipe at `path`, or NULL (errno set). */
struct tool_pipe *tool_inventory_find(struct tool_inventory *inv, const char *path);
size_t tool_count_role(const struct tool_pipe *p, char role);
/* Length of the well-formed UTF-8 sequence at s (RFC 3629), 0 if none. */
int tool_utf8_len(const unsigned char *s);
/* Remove ring files that no process holds and no FIFO names any more:
 * how many, -1 (errno) if /dev/shm cannot be read, -2 if some could not
 * be removed (each reported on stderr). */
int tool_reap_stale(bool verbose);

/* bench_memory.c: KiB per open named pipe, n held (both ends, 64 bytes
 * queued in each); kernel != 0 measures the kernel's FIFOs instead.
 * *method says how it was measured. */
int bench_memory(int kernel, int n, size_t capacity, double *kib_per_pipe,
		 const char **method, char *err, size_t errlen);

/* bench_python.c: run `python -m ringpipe.bench --tsv` and hand each result
 * to add(); -1 with the reason in err if Python or the package is missing. */
typedef void (*bench_python_add_fn)(const char *mech, const char *test, uint64_t size,
				    double med, double min, double max, const char *unit,
				    int runs, void *arg);
int bench_python(int runs, int quick, int timeout_s, bench_python_add_fn add, void *arg,
		 char *err, size_t errlen);

/* bench_bare.c: the bare ring, the least a byte ring in shared memory
 * does (one writer, one reader, spinning waits, no pipe rules): the
 * bench's reference ring.  The mapping is shared with children forked after
 * bare_open(); each process then writes or reads it.  cap: a power of 2. */
struct bare;
struct bare *bare_open(uint64_t cap);
void bare_free(struct bare *b);
uint64_t bare_capacity(const struct bare *b);
/* All n bytes, spinning for room; -1 EPIPE once the reader is done. */
int bare_write(struct bare *b, const void *buf, size_t n);
/* 1..n bytes, spinning for data; 0 once the writer is done and all read. */
ssize_t bare_read(struct bare *b, void *buf, size_t n);
/* End this process's side, if it used it (writer: EOF, reader: EPIPE). */
void bare_close_side(struct bare *b, int writer);

#endif
