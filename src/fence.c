/*
 * fence.c - a writer's publish without a barrier of its own.
 *
 * The sleep handshake (wait.c) is a Dekker pair: a writer stores head,
 * then loads the readers' sleeper count; a reader adds itself to the
 * count, then loads head.  Each side needs a full barrier between its
 * store and its load, or both may miss the other.  The writer passes
 * there on every write and the reader only on its way to sleep, so the
 * writer's barrier moves to the reader: membarrier(2) with
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED makes every running thread of every
 * registered process execute a full barrier before it returns (a thread
 * that is not running passed one when it was switched out).  Wherever
 * that barrier falls in a writer's store-then-load, either the load comes
 * after it and sees the reader's count, or the store came before it and
 * the reader, loading head after the call, sees the store.
 *
 * The same holds the other way round: a reader publishes tail with a
 * plain store when its unlock is a biased one (lock.c), and a writer going
 * to sleep for room fences for it; and a thread revoking a biased lock
 * fences for the lock's owner.
 *
 * A process relies on this only when it registered (once, and again in a
 * fork child: registration belongs to an address space, and registering
 * twice is harmless), and only while no peer has failed to issue the
 * call: one that cannot (a seccomp filter, say) sets heavy_publish in the
 * ring, every writer and reader goes back to the full barrier, and no lock
 * is biased again.  The publish that raced with that first failure is
 * covered by the sleeper's own looks at the ring (sleep.c).
 */
#include "internal.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

bool rp__light_publish;

static int membarrier(int cmd)
{
	return (int)syscall(SYS_membarrier, cmd, 0, 0);
}

void rp__fence_register(void)
{
#ifdef RP_TSAN
	/* ThreadSanitizer models C11 only: keep the symmetric barriers. */
	rp__light_publish = false;
#else
	rp__light_publish = membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
#endif
}

bool rp__fence_peers(struct rp_end *e)
{
	int err = errno;
	bool ok = membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
	if (!ok)
		atomic_store(&e->sh->heavy_publish, 1);
	errno = err;                    /* a sleep is no place to report it */
	return ok;
}

void rp__fence_threads(struct rp_end *e)
{
	if (rp__fence_peers(e))
		return;
	int err = errno;
	struct timespec ts = { 0, 10000000 };   /* as lock.c's BIAS_DRAIN_NS */
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	errno = err;
}
