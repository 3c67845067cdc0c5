/*
 * export.c - handing an end to a program started by exec.
 *
 * An end is four or five descriptors, which exec keeps (unless O_CLOEXEC), so the
 * token only has to name them:  "rp1:<r|w>:<shm>:<bell>:<wake>:<gate>:<drain>"
 * (drain is -1 for a write end).
 * O_NONBLOCK travels by itself: it is a flag of the ring descriptor's OFD.
 * rp_import trusts none of it: each descriptor must exist and be of the
 * right kind and direction, and the ring's header is validated as at open.
 */
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int rp_export(rp_end *h, char *token, size_t len)
{
	struct rp_end *e = rp__end_get(h, 0);
	if (!e)
		return -1;
	int r = -1;
	if (!token) {
		errno = EINVAL;
	} else {
		int n = snprintf(token, len, "rp1:%c:%d:%d:%d:%d:%d",
				 e->role == RP_READER ? 'r' : 'w', e->shm_fd,
				 e->bell, e->wake, e->gate, e->drain);
		if (n < 0 || (size_t)n >= len)
			errno = ERANGE;
		else
			r = 0;
	}
	rp__end_put(e);
	return r;
}

/* Is `fd` open, of the given type, with the given access mode? */
static bool fd_is(int fd, mode_t type, int acc)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);
	return fl >= 0 && fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type &&
	       (fl & O_ACCMODE) == acc;
}

static rp_end *import_end(const char *token)
{
	int shm, bell, wake, gate, drain, used = 0;
	char role;

	if (!token || sscanf(token, "rp1:%c:%d:%d:%d:%d:%d%n", &role,
			     &shm, &bell, &wake, &gate, &drain, &used) != 6 ||
	    token[used] != '\0' || (role != 'r' && role != 'w')) {
		errno = EINVAL;
		return NULL;
	}
	bool rd = role == 'r';
	if (!fd_is(shm, S_IFREG, O_RDWR) ||
	    !fd_is(bell, S_IFIFO, rd ? O_RDONLY : O_RDWR) ||
	    !fd_is(wake, S_IFIFO, rd ? O_RDWR : O_RDONLY) ||
	    !fd_is(gate, S_IFIFO, rd ? O_RDONLY : O_WRONLY) ||
	    (rd ? !fd_is(drain, S_IFIFO, O_RDONLY) : drain != -1)) {
		errno = EBADF;
		return NULL;
	}
	struct rp_end *e = rp__end_alloc();
	if (!e)
		return NULL;
	if (rp__map(e, shm) < 0) {
		rp__end_unref(e);
		return NULL;
	}
	/* The imported end owns the inherited descriptors from now on. */
	e->shm_fd = shm, e->bell = bell, e->wake = wake, e->gate = gate;
	e->drain = drain;
	if (rp__end_open(e, rd ? RP_READER : RP_WRITER,
			 O_CLOEXEC) < 0) {
		rp__end_discard(e);
		return NULL;
	}
	return e;
}

rp_end *rp_import(const char *token)
{
	int c = rp__cancel_off();
	rp_end *e = import_end(token);
	rp__cancel_back(c);
	return e;
}
