/*
 * main.c - the `ringpipe` command: dispatch and shared helpers.
 */
#define _GNU_SOURCE
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *args, *what;
} cmds[] = {
	{ "mkfifo", rp_cmd_mkfifo, "[-m MODE] [-s CAPACITY] PATH...", "create named pipes" },
	{ "rm",     rp_cmd_rm,     "[--stale] PATH...", "remove them" },
	{ "ls",     rp_cmd_ls,     "[PATH...]", "list pipes and who holds them" },
	{ "stat",   rp_cmd_stat,   "[--json] PATH", "one pipe in detail" },
	{ "read",   rp_cmd_read,   "[--progress] PATH", "copy the pipe to stdout until EOF" },
	{ "write",  rp_cmd_write,  "[--progress] PATH", "copy stdin into the pipe, then close" },
	{ "top",    rp_cmd_top,    "[-d SECONDS] [-n COUNT]", "live view of all pipes" },
	{ "bench",  rp_cmd_bench,  "[--json] [--quick] [--only M,..] [--test T,..]",
	  "ringpipe against kernel pipes" },
};

/* "NAME ARGS", then what it does from column 42 (or two spaces on). */
static void print_usage(FILE *f, size_t i)
{
	int n = fprintf(f, "%s %s", cmds[i].name, cmds[i].args);
	fprintf(f, "%*s%s\n", n < 39 ? 41 - n : 2, "", cmds[i].what);
}

void tool_err(const char *what, const char *fmt, ...)
{
	va_list ap;
	fputs("ringpipe: ", stderr);
	if (what)
		fprintf(stderr, "%s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *tool_strerror(int err)
{
	return err == EINVAL ? "not a ringpipe" : strerror(err);
}

bool tool_parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return false;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (*end == 'i' && shift)
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || (shift && v > (~0ULL >> shift)))
		return false;
	*out = (size_t)(v << shift);
	return true;
}

const char *tool_human(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	double d = (double)v;
	int u = 0;
	while (d >= 1024 && u < 6) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu", (unsigned long long)v);
	else
		snprintf(buf, len, d < 10 ? "%.1f%c" : "%.0f%c", d, units[u]);
	return buf;
}

static void usage(FILE *f)
{
	fputs("usage: ringpipe COMMAND [ARGS]\n\ncommands:\n", f);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		fputs("  ", f);
		print_usage(f, i);
	}
	fputs("\n'ringpipe COMMAND --help' for one command; see ringpipe(1).\n", f);
}

/*
 * A standard descriptor that is closed would be the next open's: the ring
 * file of an end, which `read` would then print into and `write` copy out
 * of.  Hold each with /dev/null opened O_PATH, where reads and writes fail
 * with EBADF, as cat's do on a closed descriptor.
 */
static void hold_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF &&
		    open("/dev/null", O_PATH | O_CLOEXEC) != fd)
			exit(2);        /* cannot say so: stderr may be the one */
}

/* What a command printed must have reached stdout, as with coreutils. */
static int stdout_flushed(int status)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return status;
	tool_err("stdout", "%s", strerror(errno ? errno : EIO));
	return status ? status : 1;
}

int main(int argc, char **argv)
{
	hold_std_fds();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return stdout_flushed(0);
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		for (int a = 2; a < argc; a++) {
			if (!strcmp(argv[a], "--"))
				break;
			/* bench lists its mechanisms and tests itself. */
			if ((!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) &&
			    cmds[i].fn != rp_cmd_bench) {
				fputs("usage: ringpipe ", stdout);
				print_usage(stdout, i);
				return stdout_flushed(0);
			}
		}
		/* getopt's own messages then read "ringpipe: CMD: ...". */
		char name[32];
		snprintf(name, sizeof(name), "ringpipe: %s", cmds[i].name);
		argv[1] = name;
		return stdout_flushed(cmds[i].fn(argc - 1, argv + 1));
	}
	tool_err(NULL, "unknown command '%s'", argv[1]);
	usage(stderr);
	return 2;
}
