/*
 * inventory.c - find every ringpipe on the machine, like lsof finds pipes.
 *
 * Held pipes are found through /proc/PID/fd: an end's ring descriptor is a
 * link to "/memfd:ringpipe" (anonymous) or "/dev/shm/ringpipe.DEV.INO"
 * (named), and /proc/PID/fdinfo shows the OFD read lock on the end's role
 * byte (RP_LOCK_READER or RP_LOCK_WRITER).  Named pipes nobody holds are
 * found in /dev/shm.  The header is read (pread, not mapped: a truncation
 * would SIGBUS a mapping) and checked like any other untrusted input.
 */
#define _GNU_SOURCE
#include "tool.h"
#include "layout.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"

static void read_comm(pid_t pid, char *comm, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	FILE *f = fopen(path, "re");
	comm[0] = '\0';
	if (f) {
		if (fgets(comm, (int)len, f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	if (!comm[0])
		snprintf(comm, len, "?");
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629), 0 if none. */
int tool_utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	int n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 :
		c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	/* The second byte's range excludes overlongs, surrogates, > U+10FFFF. */
	unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
	for (int i = 1; i < n; i++)
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
			return 0;
	return n;
}

/*
 * Sleepers of a count word (layout.h): those named in a slot only while
 * the thread is there, since a sleeper killed in its sleep stays counted
 * until a peer's wake takes its count back; those without a slot (the
 * high half) cannot be checked and are taken as they are.
 */
static uint32_t live_sleepers(uint64_t w, const _Atomic uint32_t *who)
{
	uint32_t n = (uint32_t)(w >> 32);
	for (int i = 0; i < RP_SLEEP_SLOTS; i++) {
		if (!((w >> i) & 1))
			continue;
		pid_t tid = (pid_t)(atomic_load(&who[i]) & RP_LOCK_TID);  /* less a reaper's mark */
		if (tid == 0 || kill(tid, 0) == 0 || errno == EPERM)
			n++;            /* 0: counted in, its name not yet stored */
	}
	return n;
}

/*
 * Copy the header fields we show; false if it is not a valid ring.  The
 * header is read with pread(2), not mapped: a process that truncates the
 * ring while we look (as a hostile one may) would make a mapping SIGBUS.
 */
static bool read_header(int fd, struct tool_pipe *p)
{
	struct rp_shared copy;
	struct stat st;
	if (pread(fd, &copy, sizeof(copy), 0) != (ssize_t)sizeof(copy) ||
	    fstat(fd, &st) < 0)
		return false;
	const struct rp_shared *sh = &copy;
	bool ours = sh->magic == RP_MAGIC;
	/* A ring cut short of its capacity is damaged, header intact or not. */
	bool ok = ours && rp_header_valid(sh, (uint64_t)st.st_size);
	p->layout = ours ? sh->version : 0;
	if (ours && p->layout != RP_LAYOUT_VERSION)
		snprintf(p->problem, sizeof(p->problem), "layout v%u", p->layout);
	if (ok) {
		p->capacity = sh->capacity;
		p->head = atomic_load(&sh->head);
		p->tail = atomic_load(&sh->tail);
		p->started_ns = atomic_load(&sh->started_ns);
		if (!p->started_ns)
			p->started_ns = sh->created_ns;
		p->rd_sleepers = live_sleepers(atomic_load(&sh->rd_sleepers), sh->rd_who);
		p->wr_sleepers = live_sleepers(atomic_load(&sh->wr_sleepers), sh->wr_who);
		p->rd_blocked_ns = atomic_load(&sh->rd_blocked_ns);
		p->wr_blocked_ns = atomic_load(&sh->wr_blocked_ns);
	}
	/* The identity fields keep their place in every layout version
	 * (layout.h), so a ring of another release is still named. */
	if (ours && sh->fifo_ino) {
		char path[sizeof(sh->path) + 1];
		memcpy(path, sh->path, sizeof(sh->path));
		path[sizeof(sh->path)] = '\0';   /* untrusted: bound it */
		/* Shown as text: UTF-8 stays, control and stray bytes are '?'. */
		for (unsigned char *c = (unsigned char *)path; *c;) {
			int n = tool_utf8_len(c);
			if (n == 0 || (n == 1 && !isprint(*c)))
				*c = '?', n = 1;
			c += n;
		}
		p->named = true;
		snprintf(p->name, sizeof(p->name), "%s", path[0] ? path : "?");
	}
	return ok;
}

static struct tool_pipe *get_pipe(struct tool_inventory *inv, dev_t dev, ino_t ino,
				  bool *fresh)
{
	for (size_t i = 0; i < inv->npipes; i++)
		if (inv->pipes[i].dev == dev && inv->pipes[i].ino == ino) {
			*fresh = false;
			return &inv->pipes[i];
		}
	struct tool_pipe *np = realloc(inv->pipes, (inv->npipes + 1) * sizeof(*np));
	if (!np)
		return NULL;
	inv->pipes = np;
	struct tool_pipe *p = &np[inv->npipes++];
	memset(p, 0, sizeof(*p));
	p->dev = dev;
	p->ino = ino;
	snprintf(p->name, sizeof(p->name), "anon:%lu", (unsigned long)ino);
	*fresh = true;
	return p;
}

/* The role an end's ring descriptor announces through its OFD lock. */
static char fd_role(pid_t pid, const char *fd)
{
	char path[300], line[256];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, fd);
	FILE *f = fopen(path, "re");
	char role = '?';
	if (!f)
		return role;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b;
		if (strncmp(line, "lock:", 5) || !strstr(line, "OFDLCK"))
			continue;
		char *end = line + strlen(line);
		while (end > line && isspace((unsigned char)end[-1]))
			end--;
		*end = '\0';
		char *last = strrchr(line, ' ');
		if (!last || last == line)
			continue;
		*last = '\0';
		char *prev = strrchr(line, ' ');
		if (!prev || sscanf(prev + 1, "%llu", &a) != 1 || sscanf(last + 1, "%llu", &b) != 1)
			continue;
		if (a == RP_LOCK_READER && b == RP_LOCK_READER)
			role = 'r';
		else if (a == RP_LOCK_WRITER && b == RP_LOCK_WRITER)
			role = 'w';
	}
	fclose(f);
	return role;
}

static bool is_ring_link(const char *t)
{
	if (!strncmp(t, "/memfd:ringpipe", 15))
		return true;
	if (strncmp(t, SHM_DIR "/ringpipe.", sizeof(SHM_DIR "/ringpipe.") - 1))
		return false;
	return !strstr(t, ".wake") && !strstr(t, ".gate");
}

static void add_holder(struct tool_pipe *p, pid_t pid, const char *comm, char role)
{
	for (size_t i = 0; i < p->nholders; i++)
		if (p->holders[i].pid == pid && p->holders[i].role == role)
			return;          /* one line per process and role */
	struct tool_holder *h = realloc(p->holders, (p->nholders + 1) * sizeof(*h));
	if (!h)
		return;
	p->holders = h;
	h[p->nholders].pid = pid;
	h[p->nholders].role = role;
	snprintf(h[p->nholders].comm, sizeof(h->comm), "%s", comm);
	p->nholders++;
}

static void scan_process(struct tool_inventory *inv, pid_t pid)
{
	char dirpath[64], comm[32];
	snprintf(dirpath, sizeof(dirpath), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dirpath);
	if (!d) {
		if (errno == EACCES || errno == EPERM) {
			struct tool_denied *nd = realloc(inv->denied,
				(inv->ndenied + 1) * sizeof(*nd));
			if (nd) {
				inv->denied = nd;
				nd[inv->ndenied].pid = pid;
				read_comm(pid, nd[inv->ndenied].comm, sizeof(nd->comm));
				inv->ndenied++;
			}
		}
		return;
	}
	read_comm(pid, comm, sizeof(comm));
	struct dirent *de;
	while ((de = readdir(d))) {
		char link[330], target[512];
		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dirpath, de->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (!is_ring_link(target))
			continue;
		struct stat st;
		if (stat(link, &st) < 0)
			continue;
		bool fresh;
		struct tool_pipe *p = get_pipe(inv, st.st_dev, st.st_ino, &fresh);
		if (!p)
			continue;
		if (fresh) {
			int fd = open(link, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				p->valid = read_header(fd, p);
				close(fd);
			}
			if (!strncmp(target, SHM_DIR, sizeof(SHM_DIR) - 1)) {
				snprintf(p->ring_path, sizeof(p->ring_path), "%.*s",
					 (int)strcspn(target, " "), target);
			}
		}
		char role = fd_role(pid, de->d_name);
		if (role != '?')
			add_holder(p, pid, comm, role);
	}
	closedir(d);
}

static void scan_shm(struct tool_inventory *inv)
{
	DIR *d = opendir(SHM_DIR);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "ringpipe.", 9) || strstr(de->d_name, ".wake") ||
		    strstr(de->d_name, ".gate"))
			continue;
		char path[300];
		struct stat st;
		snprintf(path, sizeof(path), SHM_DIR "/%s", de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		bool fresh;
		struct tool_pipe *p = get_pipe(inv, st.st_dev, st.st_ino, &fresh);
		if (!p || !fresh)
			continue;
		snprintf(p->ring_path, sizeof(p->ring_path), "%s", path);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			p->valid = read_header(fd, p);
			close(fd);
		} else if (errno == EACCES || errno == EPERM) {
			snprintf(p->problem, sizeof(p->problem), "no permission");
		}
		if (!p->named)
			snprintf(p->name, sizeof(p->name), "%.280s (%s)", path,
				 tool_pipe_problem(p));
	}
	closedir(d);
}

int tool_inventory_scan(struct tool_inventory *inv)
{
	memset(inv, 0, sizeof(*inv));
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	struct dirent *de;
	pid_t self = getpid();
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == self)
			continue;
		scan_process(inv, (pid_t)pid);
	}
	closedir(d);
	scan_shm(inv);
	return 0;
}

void tool_inventory_free(struct tool_inventory *inv)
{
	for (size_t i = 0; i < inv->npipes; i++)
		free(inv->pipes[i].holders);
	free(inv->pipes);
	free(inv->denied);
	memset(inv, 0, sizeof(*inv));
}

size_t tool_count_role(const struct tool_pipe *p, char role)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nholders; i++)
		n += p->holders[i].role == role;
	return n;
}

struct tool_pipe *tool_inventory_find(struct tool_inventory *inv, const char *path)
{
	struct stat st, rs;
	char ring[128];

	if (stat(path, &st) < 0)
		return NULL;
	if (!S_ISFIFO(st.st_mode)) {
		errno = EINVAL;
		return NULL;
	}
	snprintf(ring, sizeof(ring), SHM_DIR "/ringpipe.%llx.%llu",
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	if (stat(ring, &rs) < 0) {
		errno = EINVAL;
		return NULL;
	}
	for (size_t i = 0; i < inv->npipes; i++)
		if (inv->pipes[i].dev == rs.st_dev && inv->pipes[i].ino == rs.st_ino)
			return &inv->pipes[i];
	errno = EINVAL;
	return NULL;
}

/* Is anyone holding this ring file (any OFD lock, i.e. any open end)? */
static bool ring_held(const char *ring)
{
	int fd = open(ring, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	bool held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
	close(fd);
	return held;
}

/* Is the entry `name` of directory fd `dir` the FIFO (dev, ino)? */
static bool is_the_fifo(int dir, const char *name, uint64_t dev, uint64_t ino)
{
	struct stat st;
	return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISFIFO(st.st_mode) && (uint64_t)st.st_dev == dev &&
	       (uint64_t)st.st_ino == ino;
}

/*
 * Might the FIFO this ring belongs to still exist?  Its absolute path was
 * recorded when it was made (cut to the header's 255 bytes).  The ring is
 * stale only if that directory is gone, or neither the path nor any other
 * entry of the directory is the FIFO (so a FIFO renamed within its
 * directory is found by its inode; one moved to another directory is not:
 * ringpipe(1)).  What we cannot read or judge, a path cut short or not
 * absolute, an unreadable directory, is kept.
 */
static bool fifo_alive(const char *ring)
{
	struct rp_shared sh;
	int fd = open(ring, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT;
	bool ok = pread(fd, &sh, sizeof(sh), 0) == (ssize_t)sizeof(sh) &&
		  sh.magic == RP_MAGIC && sh.fifo_ino;
	close(fd);
	if (!ok)
		return false;                   /* not a named ring's header */
	char path[sizeof(sh.path)];
	memcpy(path, sh.path, sizeof(path));
	if (path[0] != '/' || !memchr(path, '\0', sizeof(path)) ||
	    strlen(path) >= sizeof(path) - 1)
		return true;
	char *slash = strrchr(path, '/');
	const char *base = slash + 1;
	*slash = '\0';
	int dir = open(path[0] ? path : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return errno != ENOENT && errno != ENOTDIR;
	bool alive = is_the_fifo(dir, base, sh.fifo_dev, sh.fifo_ino);
	DIR *d = alive ? NULL : fdopendir(dup(dir));
	if (d) {
		struct dirent *de;
		while (!alive && (de = readdir(d)))
			alive = (uint64_t)de->d_ino == sh.fifo_ino &&
				is_the_fifo(dir, de->d_name, sh.fifo_dev, sh.fifo_ino);
		closedir(d);
	} else if (!alive) {
		alive = true;                   /* cannot look: keep */
	}
	close(dir);
	return alive;
}

int tool_reap_stale(bool verbose)
{
	DIR *d = opendir(SHM_DIR);
	int reaped = 0;
	bool failed = false;
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "ringpipe.", 9))
			continue;
		char ring[300], base[300];
		snprintf(base, sizeof(base), SHM_DIR "/%s", de->d_name);
		snprintf(ring, sizeof(ring), "%s", base);
		char *suffix = strstr(ring, ".wake");
		if (!suffix)
			suffix = strstr(ring, ".gate");
		if (suffix)
			*suffix = '\0';            /* a companion: judge by its ring */
		struct stat st;
		bool have_ring = stat(ring, &st) == 0;
		if (have_ring && (ring_held(ring) || fifo_alive(ring)))
			continue;
		/* Leave alone what a concurrent rp_mkfifo is still making. */
		if (lstat(base, &st) == 0 && time(NULL) - st.st_ctime < 10)
			continue;
		if (unlink(base) == 0) {
			reaped++;
			if (verbose)
				printf("removed %s\n", base);
		} else if (errno != ENOENT) {
			tool_err(base, "cannot remove: %s", strerror(errno));
			failed = true;
		}
	}
	closedir(d);
	if (failed) {
		errno = EPERM;
		return -2;
	}
	return reaped;
}
