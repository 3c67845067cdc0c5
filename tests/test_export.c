/* test_export.c - rp_export/rp_import across exec, and O_CLOEXEC.
 *
 * A case that needs a program started by exec re-executes this binary with its
 * own case name and RP_TEST_TOKEN (and RP_TEST_SOCK) in the environment; the
 * case sees the variable and plays the child's part.
 */
#include "harness.h"
#include <ringpipe.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

extern char **environ;

#define MSG "hello across exec"

static const char *child_token(void) { return getenv("RP_TEST_TOKEN"); }
static int child_sock(void) { return atoi(getenv("RP_TEST_SOCK")); }

/* fork + exec this binary as `self CASE` with the token and socket fd in its environment. */
static pid_t exec_self(const char *test_fn, const char *token, int sock)
{
	static char exe[4096], tokvar[RP_TOKEN_MAX + 32], sockvar[64];
	const char *name = test_fn + strlen("test_");
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	CHECK(n > 0);
	exe[n] = 0;
	snprintf(tokvar, sizeof tokvar, "RP_TEST_TOKEN=%s", token);
	snprintf(sockvar, sizeof sockvar, "RP_TEST_SOCK=%d", sock);
	size_t k = 0, j = 0;
	while (environ[k])
		k++;
	char **env = calloc(k + 3, sizeof *env);
	CHECK(env != NULL);
	for (size_t i = 0; i < k; i++)
		if (strncmp(environ[i], "RP_TEST_", 8) != 0)
			env[j++] = environ[i];
	env[j++] = tokvar;
	env[j++] = sockvar;
	char *argv[] = { exe, (char *)name, NULL };
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		execve(exe, argv, env);
		_exit(127);
	}
	free(env);
	return pid;
}

/* A socketpair whose [1] survives exec: the child says "ready" on it, then
 * waits for [0] to close. */
static void mksock(int sv[2])
{
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(fcntl(sv[1], F_SETFD, 0) == 0);
}

static void child_ready_then_hold(void)
{
	char c;
	int s = child_sock();
	CHECK(write(s, "r", 1) == 1);
	CHECK(read(s, &c, 1) == 0);
}

static void wait_ready(int s)
{
	struct pollfd p = { .fd = s, .events = POLLIN };
	char c;
	CHECK(poll(&p, 1, 5000) == 1);
	CHECK(read(s, &c, 1) == 1 && c == 'r');
}

static void export_ok(rp_end *e, char tok[RP_TOKEN_MAX])
{
	CHECK(rp_export(e, tok, RP_TOKEN_MAX) >= 0);
	CHECK(memchr(tok, 0, RP_TOKEN_MAX) != NULL && tok[0] != 0);
}

/* Nonblocking read until EOF or timeout; returns 1 on EOF. */
static int eof_within(rp_end *r, int ms)
{
	char buf[64];
	double t0 = rp_now_ms();
	CHECK(rp_set_nonblock(r, 1) == 0);
	do {
		ssize_t n = rp_read(r, buf, sizeof buf);
		if (n == 0)
			return 1;
		CHECK(n == -1 && errno == EAGAIN);
		usleep(5000);
	} while (rp_now_ms() - t0 < ms);
	return 0;
}

TEST(import_after_exec_writes_to_parent)
{
	const char *tok = child_token();
	if (tok) {
		rp_end *w = rp_import(tok);
		CHECK(w != NULL);
		CHECK(rp_write(w, MSG, strlen(MSG)) == (ssize_t)strlen(MSG));
		CHECK(rp_close(w) == 0);
		return;
	}
	rp_end *e[2];
	char t[RP_TOKEN_MAX], buf[64];
	size_t got = 0;
	ssize_t n;
	rp_alarm(8);
	CHECK(rp_pipe(e) == 0);
	export_ok(e[1], t);
	pid_t pid = exec_self(__func__, t, -1);
	CHECK(rp_close(e[1]) == 0);
	while ((n = rp_read(e[0], buf + got, sizeof buf - got)) > 0)
		got += (size_t)n;
	CHECK(n == 0);
	rp_wait_ok(pid);
	CHECK(got == strlen(MSG) && memcmp(buf, MSG, got) == 0);
}

TEST(import_after_exec_reads_from_parent)
{
	const char *tok = child_token();
	if (tok) {
		char buf[64];
		size_t got = 0;
		rp_end *r = rp_import(tok);
		CHECK(r != NULL);
		while (got < strlen(MSG)) {
			ssize_t n = rp_read(r, buf + got, sizeof buf - got);
			CHECK(n > 0);
			got += (size_t)n;
		}
		CHECK(got == strlen(MSG) && memcmp(buf, MSG, got) == 0);
		return;
	}
	rp_end *e[2];
	char t[RP_TOKEN_MAX];
	rp_alarm(8);
	CHECK(rp_pipe(e) == 0);
	export_ok(e[0], t);
	pid_t pid = exec_self(__func__, t, -1);
	CHECK(rp_close(e[0]) == 0);
	CHECK(rp_write(e[1], MSG, strlen(MSG)) == (ssize_t)strlen(MSG));
	rp_wait_ok(pid);
}

TEST(export_token_fits_rp_token_max)
{
	rp_end *e[2];
	char t[RP_TOKEN_MAX], big[4 * RP_TOKEN_MAX];
	CHECK(rp_pipe(e) == 0);
	for (int i = 0; i < 2; i++) {
		memset(t, 'X', sizeof t);
		export_ok(e[i], t);
		memset(big, 'X', sizeof big);
		CHECK(rp_export(e[i], big, sizeof big) >= 0);
		CHECK(strlen(big) + 1 <= RP_TOKEN_MAX);
		CHECK(strcmp(big, t) == 0);
	}
}

TEST(export_small_buffer_erange)
{
	rp_end *e[2];
	char t[RP_TOKEN_MAX], small[RP_TOKEN_MAX];
	CHECK(rp_pipe(e) == 0);
	export_ok(e[1], t);
	size_t len = strlen(t);
	CHECK_ERR(rp_export(e[1], small, len), ERANGE); /* no room for the NUL */
	CHECK_ERR(rp_export(e[1], small, 1), ERANGE);
	CHECK(rp_export(e[1], small, len + 1) >= 0);
	CHECK(strcmp(small, t) == 0);
}

TEST(export_keeps_end_open_in_exporter)
{
	rp_end *e[2];
	char t[RP_TOKEN_MAX], c;
	CHECK(rp_pipe(e) == 0);
	export_ok(e[0], t);
	export_ok(e[1], t);
	CHECK(rp_write(e[1], "k", 1) == 1);
	CHECK(rp_read(e[0], &c, 1) == 1 && c == 'k');
}

TEST(import_garbage_token_fails)
{
	static char longtok[4 * RP_TOKEN_MAX];
	memset(longtok, '7', sizeof longtok - 1);
	const char *bad[] = { "", "garbage", "0", "-1", "0:1:2", ":::", "rp:", longtok };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		CHECK(rp_import(bad[i]) == NULL);
		CHECK(errno == EINVAL || errno == EBADF);
	}
}

/* A token outlives the end it names: importing it afterwards must not revive it. */
TEST(import_token_of_closed_end_fails)
{
	rp_end *e[2];
	char t[RP_TOKEN_MAX], c;
	CHECK(rp_pipe(e) == 0);
	export_ok(e[1], t);
	CHECK(rp_close(e[1]) == 0);
	errno = 0;
	CHECK(rp_import(t) == NULL);
	CHECK(errno == EBADF || errno == EINVAL);
	CHECK(rp_set_nonblock(e[0], 1) == 0);
	CHECK(rp_read(e[0], &c, 1) == 0);
}

/* The writer, made O_CLOEXEC, is closed by the child's exec: EOF while the child lives. */
TEST(cloexec_end_closed_by_exec)
{
	if (child_token()) {
		child_ready_then_hold();
		return;
	}
	rp_end *e[2];
	char t[RP_TOKEN_MAX];
	int sv[2];
	rp_alarm(8);
	CHECK(rp_pipe2(e, O_CLOEXEC, 0) == 0);
	export_ok(e[1], t);
	mksock(sv);
	pid_t pid = exec_self(__func__, t, sv[1]);
	close(sv[1]);
	wait_ready(sv[0]);
	CHECK(rp_close(e[1]) == 0);
	CHECK(eof_within(e[0], 3000));
	CHECK(waitpid(pid, NULL, WNOHANG) == 0); /* child still alive */
	close(sv[0]);
	rp_wait_ok(pid);
}

/* Without O_CLOEXEC the exec'd child still holds the writer: no EOF until it exits. */
TEST(end_without_cloexec_survives_exec)
{
	if (child_token()) {
		child_ready_then_hold();
		return;
	}
	rp_end *e[2];
	char t[RP_TOKEN_MAX];
	int sv[2];
	rp_alarm(8);
	CHECK(rp_pipe(e) == 0);
	export_ok(e[1], t);
	mksock(sv);
	pid_t pid = exec_self(__func__, t, sv[1]);
	close(sv[1]);
	wait_ready(sv[0]);
	CHECK(rp_close(e[1]) == 0);
	CHECK(!eof_within(e[0], 300));
	close(sv[0]);
	CHECK(eof_within(e[0], 3000));
	rp_wait_ok(pid);
}

TEST(import_of_cloexec_end_fails_after_exec)
{
	const char *tok = child_token();
	if (tok) {
		errno = 0;
		CHECK(rp_import(tok) == NULL);
		CHECK(errno == EBADF || errno == EINVAL);
		return;
	}
	rp_end *e[2];
	char t[RP_TOKEN_MAX];
	rp_alarm(8);
	CHECK(rp_pipe2(e, O_CLOEXEC, 0) == 0);
	export_ok(e[1], t);
	pid_t pid = exec_self(__func__, t, -1);
	rp_wait_ok(pid);
	CHECK(rp_close(e[1]) == 0);
	CHECK(eof_within(e[0], 3000));
}
