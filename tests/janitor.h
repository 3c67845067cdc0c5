/*
 * janitor.h - cleanup for test cases that make named pipes (shared by the
 * test files that need it; include after harness.h).
 */
#ifndef RP_JANITOR_H
#define RP_JANITOR_H

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#ifndef UNUSED
#define UNUSED __attribute__((unused))
#endif

/*
 * If the case fails (CHECK exits at once), nothing would remove its named
 * pipes: a janitor process waits until the case and all its children are
 * gone (EOF on a pipe they all hold), then removes the directory, its
 * FIFOs and their /dev/shm files.  It calls no library code.
 *
 * A case that hangs is killed with its kin: timeout(1) signals its process
 * group, ctest its descendants.  So the janitor is no kin of it: it starts
 * a session of its own, and its parent exits at once, leaving it to init.
 * (It is no child for the case's wait(2) calls to find, either.)
 */
static UNUSED void janitor_clean(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			char p[512], s[512];
			snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
			struct stat st;
			if (lstat(p, &st) == 0 && S_ISFIFO(st.st_mode)) {
				static const char *const sfx[] = { "", ".wake", ".gate" };
				for (int i = 0; i < 3; i++) {
					snprintf(s, sizeof s, "/dev/shm/ringpipe.%llx.%llu%s",
						 (unsigned long long)st.st_dev,
						 (unsigned long long)st.st_ino, sfx[i]);
					unlink(s);
				}
			}
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

static UNUSED void janitor(const char *dir)
{
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (setsid() < 0 || fork() != 0)
			_exit(0);
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		close(p[1]);
		char c;
		while (read(p[0], &c, 1) != 0)
			;
		janitor_clean(dir);
		_exit(0);
	}
	close(p[0]); /* p[1] stays open for the life of the case */
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

#endif
