/*
 * cmd_ls.c - `ringpipe ls` and `ringpipe stat`: what lsof and stat(1)
 * show for kernel pipes, for ringpipes.
 */
#define _GNU_SOURCE
#include "tool.h"
#include "layout.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *state(const struct tool_pipe *p)
{
	uint64_t q = p->head - p->tail;
	if (!p->valid)
		return tool_pipe_problem(p);
	if (!p->nholders)
		return "closed";
	if (p->rd_sleepers && p->wr_sleepers)
		return "both asleep";
	if (p->rd_sleepers)
		return "reader asleep";
	if (p->wr_sleepers)
		return "writer asleep";
	if (q == p->capacity)
		return "full";
	if (q == 0)
		return "empty";
	return "flowing";
}

static void holders_text(const struct tool_pipe *p, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < p->nholders && off + 1 < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%d/%s:%c", i ? " " : "",
				 (int)p->holders[i].pid, p->holders[i].comm,
				 p->holders[i].role);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (!p->nholders)
		snprintf(buf, len, "-");
}

/* One pipe; `name` is the path it was asked for by, or NULL for the one
 * it was made at (which a rename since leaves behind). */
static void print_row(const struct tool_pipe *p, const char *name)
{
	char cap[16], q[16], moved[16], hold[512];
	holders_text(p, hold, sizeof(hold));
	printf("%-28s %6s %7s %7s  %-13s %s\n", name ? name : p->name,
	       tool_human(p->capacity, cap, sizeof(cap)),
	       tool_human(p->valid ? p->head - p->tail : 0, q, sizeof(q)),
	       tool_human(p->head, moved, sizeof(moved)), state(p), hold);
}

int rp_cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = { { NULL, 0, NULL, 0 } };
	struct tool_inventory inv;
	int status = 0;

	if (getopt_long(argc, argv, "", opts, NULL) != -1)
		return 2;               /* getopt said which option */
	if (tool_inventory_scan(&inv) < 0) {
		tool_err("/proc", "%s", strerror(errno));
		return 1;
	}
	printf("%-28s %6s %7s %7s  %-13s %s\n", "PIPE", "CAP", "QUEUED", "MOVED",
	       "STATE", "HOLDERS (pid/command:r|w)");
	if (optind < argc) {
		for (int i = optind; i < argc; i++) {
			struct tool_pipe *p = tool_inventory_find(&inv, argv[i]);
			if (!p) {
				tool_err(argv[i], "%s", tool_strerror(errno));
				status = 1;
				continue;
			}
			print_row(p, argv[i]);
		}
	} else {
		for (size_t i = 0; i < inv.npipes; i++)
			print_row(&inv.pipes[i], NULL);
	}
	for (size_t i = 0; i < inv.ndenied; i++)
		fprintf(stderr, "ringpipe: pid %d (%s): cannot inspect: permission denied\n",
			(int)inv.denied[i].pid, inv.denied[i].comm);
	tool_inventory_free(&inv);
	return status;
}

/* A JSON string: must be UTF-8, so a path's other bytes become U+FFFD. */
static void json_str(const char *s)
{
	putchar('"');
	while (*s) {
		unsigned char c = (unsigned char)*s;
		int n = tool_utf8_len((const unsigned char *)s);
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else if (n == 0)
			fputs("\\ufffd", stdout);
		else
			fwrite(s, 1, (size_t)n, stdout);
		s += n ? n : 1;
	}
	putchar('"');
}

static void json_holders(const struct tool_pipe *p, char role)
{
	bool first = true;
	putchar('[');
	for (size_t i = 0; i < p->nholders; i++) {
		if (p->holders[i].role != role)
			continue;
		printf("%s{\"pid\": %d, \"command\": ", first ? "" : ", ", (int)p->holders[i].pid);
		json_str(p->holders[i].comm);
		putchar('}');
		first = false;
	}
	putchar(']');
}

static double blocked_share(uint64_t blocked_ns, double age, size_t holders)
{
	if (age <= 0)
		return 0;
	double s = blocked_ns / 1e9 / age / (double)(holders ? holders : 1);
	return s < 1 ? s : 1;
}

static const char *verdict(const struct tool_pipe *p, double wr_share, double rd_share)
{
	if (!p->nholders)
		return "nobody has the pipe open";
	if (!tool_count_role(p, 'r'))
		return "no reader: writes fail with EPIPE";
	if (!tool_count_role(p, 'w'))
		return "no writer: readers get EOF once it is empty";
	if (wr_share > 0.25 && wr_share > rd_share)
		return "the reader is the bottleneck (writers wait for room)";
	if (rd_share > 0.25 && rd_share > wr_share)
		return "the writer is the bottleneck (readers wait for data)";
	return "neither side waits much";
}

int rp_cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return 2;
		json = true;
	}
	if (optind != argc - 1) {
		tool_err("stat", "expected exactly one PATH");
		return 2;
	}
	const char *path = argv[optind];
	struct tool_inventory inv;
	if (tool_inventory_scan(&inv) < 0) {
		tool_err("/proc", "%s", strerror(errno));
		return 1;
	}
	struct tool_pipe *p = tool_inventory_find(&inv, path);
	if (p && !p->valid && p->layout && p->layout != RP_LAYOUT_VERSION)
		tool_err(path, "made by a ringpipe with another header layout (version %u; "
			 "this one reads %u)", p->layout, RP_LAYOUT_VERSION);
	else if (p && !p->valid && p->problem[0])
		tool_err(path, "%s", tool_strerror(EACCES));
	else if (!p || !p->valid)
		tool_err(path, "%s", p ? "damaged ring" : tool_strerror(errno));
	if (!p || !p->valid) {
		tool_inventory_free(&inv);
		return 1;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	double age = p->started_ns && now > p->started_ns ? (now - p->started_ns) / 1e9 : 0;
	/* The blocked times add up every process's waits: a share is per
	 * holder of the side, and at most the whole time. */
	double wr_share = blocked_share(p->wr_blocked_ns, age, tool_count_role(p, 'w'));
	double rd_share = blocked_share(p->rd_blocked_ns, age, tool_count_role(p, 'r'));
	uint64_t queued = p->head - p->tail;
	const char *v = verdict(p, wr_share, rd_share);
	if (inv.ndenied && (!tool_count_role(p, 'r') || !tool_count_role(p, 'w'))) {
		/* The side we did not see may be among them: say so, and
		 * judge nothing. */
		tool_err(path, "%zu processes could not be inspected (permission "
			 "denied): holders may be missing", inv.ndenied);
		v = "unknown: some processes could not be inspected";
	}

	if (json) {
		printf("{\"path\": ");
		json_str(path);
		printf(", \"ring\": ");
		json_str(p->ring_path);
		printf(", \"capacity\": %llu, \"queued\": %llu, \"bytes_moved\": %llu, "
		       "\"readers\": ", (unsigned long long)p->capacity,
		       (unsigned long long)queued, (unsigned long long)p->head);
		json_holders(p, 'r');
		printf(", \"writers\": ");
		json_holders(p, 'w');
		printf(", \"readers_asleep\": %u, \"writers_asleep\": %u, "
		       "\"readers_blocked_s\": %.6f, \"writers_blocked_s\": %.6f, "
		       "\"age_s\": %.3f, \"readers_blocked_share\": %.4f, "
		       "\"writers_blocked_share\": %.4f, \"verdict\": ",
		       p->rd_sleepers, p->wr_sleepers, p->rd_blocked_ns / 1e9,
		       p->wr_blocked_ns / 1e9, age, rd_share, wr_share);
		json_str(v);
		printf("}\n");
	} else {
		char a[16], b[16], m[16];
		printf("  pipe: %s\n  ring: %s\n", path, p->ring_path);
		printf("  capacity: %s (%llu bytes)\n  queued: %s (%llu bytes, %.0f%% full)\n",
		       tool_human(p->capacity, a, sizeof(a)), (unsigned long long)p->capacity,
		       tool_human(queued, b, sizeof(b)), (unsigned long long)queued,
		       100.0 * (double)queued / (double)p->capacity);
		printf("  moved: %s (%llu bytes) in %.1f s\n", tool_human(p->head, m, sizeof(m)),
		       (unsigned long long)p->head, age);
		for (int pass = 0; pass < 2; pass++) {
			char role = pass ? 'w' : 'r';
			printf("  %s:", pass ? "writers" : "readers");
			if (!tool_count_role(p, role))
				printf(" none");
			for (size_t i = 0; i < p->nholders; i++)
				if (p->holders[i].role == role)
					printf(" %d (%s)", (int)p->holders[i].pid, p->holders[i].comm);
			printf("%s\n", (pass ? p->wr_sleepers : p->rd_sleepers) ? "  [asleep]" : "");
		}
		printf("  blocked: writers %.1f%% of the time on a full pipe, "
		       "readers %.1f%% on an empty one\n", 100 * wr_share, 100 * rd_share);
		printf("  verdict: %s\n", v);
	}
	tool_inventory_free(&inv);
	return 0;
}
