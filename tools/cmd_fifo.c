/*
 * cmd_fifo.c - `ringpipe mkfifo` and `ringpipe rm`, like mkfifo(1) and rm(1).
 */
#define _GNU_SOURCE
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <ringpipe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int rp_cmd_mkfifo(int argc, char **argv)
{
	mode_t mode = 0666;        /* as mkfifo(1): the umask filters it */
	size_t cap = 0;
	int c, status = 0;
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "size", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};

	while ((c = getopt_long(argc, argv, "m:s:", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'm':
			errno = 0;
			mode = (mode_t)strtoul(optarg, &end, 8);
			if (errno || *end || end == optarg || mode > 07777) {
				tool_err(NULL, "invalid mode '%s' (octal, e.g. 0600)", optarg);
				return 2;
			}
			/* An explicit mode is exact, as with mkfifo -m. */
			umask(0);
			break;
		case 's':
			if (!tool_parse_size(optarg, &cap) || cap == 0) {
				tool_err(NULL, "invalid capacity '%s' (e.g. 65536, 64K, 1M)", optarg);
				return 2;
			}
			break;
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		tool_err("mkfifo", "missing PATH");
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		if (rp_mkfifo(argv[i], mode, cap) < 0) {
			tool_err(argv[i], "%s", errno == EINVAL ? "invalid capacity (4K .. 4G)"
								: strerror(errno));
			status = 1;
		}
	}
	return status;
}

int rp_cmd_rm(int argc, char **argv)
{
	int c, status = 0;
	bool stale = false;
	static const struct option opts[] = {
		{ "stale", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'S')
			return 2;
		stale = true;
	}
	if (!stale && optind >= argc) {
		tool_err("rm", "missing PATH (or --stale)");
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		if (rp_unlink(argv[i]) < 0) {
			tool_err(argv[i], "%s", tool_strerror(errno));
			status = 1;
		}
	}
	if (stale) {
		int r = tool_reap_stale(true);
		if (r == -1)
			tool_err("/dev/shm", "%s", strerror(errno));
		if (r < 0)
			status = 1;     /* -2: some were not removed, each said */
	}
	return status;
}
