/*
 * cmd_top.c - `ringpipe top`: a live view of every ringpipe, its fill and
 * throughput.  Fits 80 columns, draws on the alternate screen when stdout
 * is a terminal, and puts the terminal back however it exits ('q',
 * Ctrl-C, SIGTERM or the -n count running out).
 */
#define _GNU_SOURCE
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static struct termios saved_tio;
static bool tty, tio_saved;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void term_restore(void)
{
	if (tty)
		fputs("\033[?25h\033[?1049l", stdout);   /* cursor on, main screen */
	fflush(stdout);
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

static void term_setup(void)
{
	tty = isatty(STDOUT_FILENO);
	if (tty)
		fputs("\033[?1049h\033[?25l", stdout);   /* alternate screen, no cursor */
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios t = saved_tio;
		t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		t.c_cc[VMIN] = 0;
		t.c_cc[VTIME] = 0;
		tio_saved = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
	}
}

struct sample {
	dev_t dev;
	ino_t ino;
	uint64_t head;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void draw(struct tool_inventory *inv, struct sample *prev, size_t nprev, double dt)
{
	char cap[16], rate[16];
	if (tty)
		fputs("\033[H\033[2J", stdout);
	printf("ringpipe top - %zu pipes   (q to quit)\n\n", inv->npipes);
	printf("%-24s %6s %-22s %9s %3s %3s %s\n", "PIPE", "CAP", "FILL", "RATE/s",
	       "R", "W", "STATE");
	for (size_t i = 0; i < inv->npipes; i++) {
		struct tool_pipe *p = &inv->pipes[i];
		uint64_t q = p->valid ? p->head - p->tail : 0;
		double fill = p->valid && p->capacity ? (double)q / (double)p->capacity : 0;
		char bar[21];
		int n = (int)(fill * 20 + 0.5);
		for (int k = 0; k < 20; k++)
			bar[k] = k < n ? '#' : '.';
		bar[20] = '\0';
		uint64_t r = 0;
		for (size_t k = 0; k < nprev; k++)
			if (prev[k].dev == p->dev && prev[k].ino == p->ino && p->head >= prev[k].head)
				r = (uint64_t)((p->head - prev[k].head) / dt);
		const char *name = p->name;
		size_t len = strlen(name);
		if (len > 24)
			name += len - 24;       /* keep the informative end of a path */
		printf("%-24s %6s [%s] %9s %3zu %3zu %s\n", name,
		       tool_human(p->capacity, cap, sizeof(cap)), bar,
		       tool_human(r, rate, sizeof(rate)), tool_count_role(p, 'r'),
		       tool_count_role(p, 'w'),
		       !p->valid ? tool_pipe_problem(p) : p->rd_sleepers ? "reader asleep" :
		       p->wr_sleepers ? "writer asleep" : "");
	}
	if (inv->ndenied)
		printf("\n%zu processes could not be inspected (permission denied)\n",
		       inv->ndenied);
	fflush(stdout);
}

int rp_cmd_top(int argc, char **argv)
{
	double delay = 1.0;
	long count = -1;
	int c;
	while ((c = getopt(argc, argv, "d:n:")) != -1) {
		char *end;
		switch (c) {
		case 'd':
			delay = strtod(optarg, &end);
			/* NaN fails both comparisons: say it the other way. */
			if (*end || end == optarg || !(delay >= 0.05 && delay <= 3600)) {
				tool_err("top", "invalid delay '%s'", optarg);
				return 2;
			}
			break;
		case 'n':
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || count < 1) {
				tool_err("top", "invalid count '%s'", optarg);
				return 2;
			}
			break;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		tool_err("top", "unexpected argument '%s'", argv[optind]);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	term_setup();

	struct sample *prev = NULL;
	size_t nprev = 0;
	double last = now_s();
	int status = 0;
	while (!stop && count != 0) {
		struct tool_inventory inv;
		if (tool_inventory_scan(&inv) < 0) {
			status = 1;
			break;
		}
		double t = now_s();
		draw(&inv, prev, nprev, t - last > 1e-3 ? t - last : 1e-3);
		last = t;
		free(prev);
		prev = calloc(inv.npipes ? inv.npipes : 1, sizeof(*prev));
		nprev = prev ? inv.npipes : 0;
		for (size_t i = 0; i < nprev; i++)
			prev[i] = (struct sample){ inv.pipes[i].dev, inv.pipes[i].ino,
						   inv.pipes[i].head };
		tool_inventory_free(&inv);
		if (count > 0 && --count == 0)
			break;
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		if (poll(&pfd, tio_saved ? 1 : 0, (int)(delay * 1000)) > 0) {
			char ch;
			if (read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q'))
				break;
		}
	}
	free(prev);
	term_restore();
	return status;
}
