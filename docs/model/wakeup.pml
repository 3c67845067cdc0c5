/*
 * wakeup.pml - a Promela model of ringpipe's sleep/wake protocol.
 *
 * Checked with spin (Debian package `spin`) by scripts/model.sh; what is
 * modelled, what is abstracted and the results are in docs/model/README.md.
 *
 * What it is: NW writer processes calling rp_write() with one byte at a
 * time, and NR reader processes calling rp_read() for one byte at a time,
 * on a ring of CAP = 2 bytes, exactly along the paths of src/pipe.c
 * (write_iov, read_iov) and src/wait.c (rp__wait_readable,
 * rp__wait_writable, wait_for, sleep_on, rp__wake_readers,
 * rp__wake_writers, ring_bell, count_down), plus the kernel pipes the
 * sleepers block in (the bell and the wake pipe) with their EOF rule, the
 * writers' and readers' locks with lock.c's takeover of a dead holder, and
 * a killer that may SIGKILL a process between any two of its steps.
 *
 * Granularity: one Promela statement (or one atomic { }) is one shared
 * memory operation or one system call, so a process can be preempted or
 * killed between any two of them, as in the C code.  Promela variables are
 * sequentially consistent, which is what RP_PUBLISH (memory_order_seq_cst)
 * gives the head/tail stores and the sleeper-count loads; weaker orderings
 * are argued in docs/DESIGN.md, not checked here (STORE_LOAD_REORDER shows
 * what a missing StoreLoad barrier would do).
 *
 * Compile-time knobs (spin -DNAME=value ...):
 *   NW, NR           writers and readers (1 or 2 each)
 *   PIPE_CAP         tokens a kernel pipe holds (the kernel: 65536)
 *   MAXKILL          how many processes the killer may SIGKILL (0 or 1)
 *   KILL_MASK        bit p set: process p may be killed (pids below)
 *   IDLE_MASK        bit p set: process p may stop calling at any point
 *                    between two calls, keeping its end open (an idle
 *                    process); processes not in it call for ever
 * Broken variants, each of which some check must catch:
 *   NO_RECHECK          sleep_on() does not re-check the ring after
 *                       counting itself in
 *   NO_NUDGE            rp__wait_readable()/rp__wait_writable() do not wake
 *                       the other side before sleeping
 *   STORE_LOAD_REORDER  a waker reads the sleeper count before its publish
 *                       of head/tail is visible (a release store plus a
 *                       plain load on x86: the store buffer)
 * Variants of ring_bell()'s "pipe full" rule (see there):
 *   NO_RESET            never reset the count (keep it)
 *   EPOCH_RESET         reset by starting a new epoch; count_down only
 *                       counts out of the epoch it counted into
 *
 * Process ids: writers are 0 .. NW-1, readers NW .. NW+NR-1, then the
 * killer and the monitor.
 */

#ifndef NW
#define NW 2
#endif
#ifndef NR
#define NR 2
#endif
#define NPROC (NW + NR)

#define CAP 2                 /* ring capacity in bytes (struct rp_ring.cap) */
#define MOD 4                 /* head and tail are free-running counters in C;
                               * here they count modulo 2*CAP, which keeps
                               * head - tail (0..CAP) exact */
#ifndef PIPE_CAP
#define PIPE_CAP 3            /* see the note at ring_bell() */
#endif
#ifndef MAXKILL
#define MAXKILL 0
#endif
#ifndef KILL_MASK
#define KILL_MASK 255
#endif
#ifndef IDLE_MASK
#define IDLE_MASK 0
#endif

#define READY 0               /* RP_WAIT_READY */
#define GONE  1               /* RP_WAIT_GONE */

/* ---- struct rp_shared (src/layout.h) ---------------------------------- */
byte head;                    /* writers' line: bytes published (mod MOD) */
byte tail;                    /* readers' line: bytes consumed (mod MOD) */
byte wlock;                   /* writers' lock: 0 free, else holder _pid+1 */
byte rlock;                   /* readers' lock, as wlock */
byte rd_sleepers;             /* readers blocked on the bell */
byte wr_sleepers;             /* writers blocked on the wake pipe */
byte rd_epoch, wr_epoch;      /* EPOCH_RESET only: the count's generation */

/* ---- the kernel ------------------------------------------------------- */
byte bell;                    /* tokens queued in the bell pipe */
byte wake;                    /* tokens queued in the wake pipe */
byte bell_wr_ends = NW;       /* open write ends of the bell: the writers hold
                               * it O_RDWR (internal.h); 0 = EOF for readers */
byte wake_wr_ends = NR;       /* open write ends of the wake pipe: readers */

/* ---- bookkeeping for the properties (no counterpart in C) ------------- */
bool dead[NPROC];             /* SIGKILLed */
bool at_read[NPROC];          /* inside read(2) on its token pipe */
bool window[NPROC];           /* between publishing head/tail and the end of
                               * the wake that follows it */
byte kills;

/* ---- derived ----------------------------------------------------------- */
#define USED      ((head + MOD - tail) % MOD)   /* rp_ring_used() */
#define HAS_DATA  (head != tail)                /* rp__has_data(): readable() */
#define ROOM      (CAP - USED)                  /* free_space() */
#define WANT      1                             /* need: a 1-byte atomic write */
#define WRITABLE  (ROOM >= WANT)                /* writable(e, need) */

#define IS_WRITER(p) ((p) < NW)
#define MAY_IDLE  ((IDLE_MASK >> _pid) & 1)

/* A live process blocked in read(2) with nothing to return. */
#define R_ASLEEP(p) (!dead[p] && at_read[p] && bell == 0 && bell_wr_ends > 0)
#define W_ASLEEP(p) (!dead[p] && at_read[p] && wake == 0 && wake_wr_ends > 0)
/* A live waker between its publish and the end of its wake. */
#define LIVE_WINDOW(p) (window[p] && !dead[p])

#if NW == 1
#define ANY_W_ASLEEP  W_ASLEEP(0)
#define ANY_W_WINDOW  LIVE_WINDOW(0)
#else
#define ANY_W_ASLEEP  (W_ASLEEP(0) || W_ASLEEP(1))
#define ANY_W_WINDOW  (LIVE_WINDOW(0) || LIVE_WINDOW(1))
#endif
#if NR == 1
#define ANY_R_ASLEEP  R_ASLEEP(NW)
#define ANY_R_WINDOW  LIVE_WINDOW(NW)
#else
#define ANY_R_ASLEEP  (R_ASLEEP(NW) || R_ASLEEP(NW + 1))
#define ANY_R_WINDOW  (LIVE_WINDOW(NW) || LIVE_WINDOW(NW + 1))
#endif

/* A reader asleep while data is queued; a writer asleep while there is
 * room.  Transient while a live peer is on its way to wake it. */
#define READER_OWED (ANY_R_ASLEEP && HAS_DATA)
#define WRITER_OWED (ANY_W_ASLEEP && WRITABLE)
/* ... and nobody on the way: a lost wakeup. */
#define LOST ((READER_OWED && !ANY_W_WINDOW) || (WRITER_OWED && !ANY_R_WINDOW))

#ifdef EPOCH_RESET
#define SET_EPOCH(ep) my_epoch = ep
#else
#define SET_EPOCH(ep) skip
#endif

/* ---- lock.c ------------------------------------------------------------ */

/* rp__lock(): one CAS; a waiter that finds the holder dead (/proc, after at
 * most LOCK_RECHECK_NS) takes the lock over. */
inline rp_lock(word)
{
	atomic { (word == 0 || dead[word - 1]) -> word = _pid + 1 }
}

/* rp__unlock() */
inline rp_unlock(word)
{
	word = 0
}

/* ---- wait.c ------------------------------------------------------------ */

/* count_down(): a CAS loop that never takes the count below zero. */
inline count_down(c, ep)
{
#ifdef EPOCH_RESET
	atomic { if :: c > 0 && ep == my_epoch -> c-- :: else fi }
#else
	atomic { if :: c > 0 -> c-- :: else fi }
#endif
}

/*
 * ring_bell(fd, k, sleepers): write(2) k tokens into a non-blocking pipe;
 * for k <= PIPE_BUF the kernel writes all k or fails with EAGAIN.  On
 * EAGAIN, if FIONREAD shows at least `sleepers` tokens queued, reset the
 * count to 0 (one seq_cst load, then a relaxed store: two steps).
 *
 * The kernel's pipe holds 65536 tokens; the model's PIPE_CAP is small, so
 * that the "full" branch is reached.  With at most N processes counted in,
 * PIPE_CAP >= 2N-1 keeps what the kernel guarantees at 64 KiB: a write
 * fails only when the queued tokens already cover every real sleeper
 * (k <= N, so a refused write means more than PIPE_CAP-N tokens queued).
 * MAX_TOKENS (64) never binds with N <= 2 and is left out.
 */
inline ring_bell(fd, k, sleepers, ep)
{
	atomic {
		if
		:: fd + k <= PIPE_CAP -> fd = fd + k; k = 0   /* written */
		:: else                                        /* EAGAIN */
		fi
	}
	if
	:: k == 0 -> skip
	:: else ->
		queued = fd;                           /* ioctl(fd, FIONREAD) */
		if
		:: queued >= sleepers ->               /* load(sleepers) */
#if defined(NO_RESET)
			skip
#elif defined(EPOCH_RESET)
			atomic { sleepers = 0; ep = 1 - ep }
#else
			sleepers = 0                   /* store(sleepers, 0) */
#endif
		:: else
		fi;
		queued = 0; k = 0
	fi
}

/* rp__wake_readers() (rd_armed: see README, "poll"). */
inline wake_readers()
{
	n = rd_sleepers;                               /* load, seq_cst */
	if
	:: n > 0 -> ring_bell(bell, n, rd_sleepers, rd_epoch)
	:: else
	fi;
	n = 0
}

/* rp__wake_writers() (gate_closed: see README, "poll"). */
inline wake_writers()
{
	n = wr_sleepers;                               /* load, seq_cst */
	if
	:: n > 0 -> ring_bell(wake, n, wr_sleepers, wr_epoch)
	:: else
	fi;
	n = 0
}

/*
 * wait_for(e, ready, arg, fd, sleepers) with its sleep_on() loop:
 *
 *   spin: if (ready) return READY          (the whole spin loop is one
 *                                           check: a check with no effect
 *                                           can be taken at its latest time)
 *   sleep_on: sleepers++ (seq_cst)
 *             if (ready) r = READY          <- the re-check (NO_RECHECK)
 *             else r = read(fd, &c, 1)      token: READY, EOF: GONE
 *             count_down(sleepers)
 *   while (r == READY && !ready) sleep_on again   (a stale token)
 *
 * sleep_on()'s rp__nonblocking() check is left out: the ends stay blocking.
 */
inline wait_for(READY_COND, fd, holders, sleepers, ep)
{
	if
	:: READY_COND -> r = READY                     /* the spin saw it */
	:: else ->
sleep:
		atomic { sleepers++; SET_EPOCH(ep) }   /* fetch_add, seq_cst */
#ifndef NO_RECHECK
		if
		:: READY_COND -> r = READY             /* ready(e, arg) */
		:: else -> at_read[_pid] = 1
		fi;
#else
		at_read[_pid] = 1;
#endif
		if
		:: at_read[_pid] ->
			/* read(fd, &c, 1): blocks while the pipe is empty
			 * and some process holds its write end */
			atomic {
				(fd > 0 || holders == 0) ->
				if
				:: fd > 0 -> fd--; r = READY
				:: else -> r = GONE
				fi;
				at_read[_pid] = 0
			}
		:: else
		fi;
		count_down(sleepers, ep);
		if
		:: r == READY && !(READY_COND) -> goto sleep  /* stale token */
		:: else
		fi
	fi
}

/* ---- the processes ------------------------------------------------------ */

/*
 * A writer: rp_write(e, buf, 1) in a loop (pipe.c write_iov()), the end
 * blocking, one byte (so the write is atomic and need = 1).
 */
active [NW] proctype writer()
{
	byte n, queued, r;
#ifdef EPOCH_RESET
	byte my_epoch;
#endif
	{
	do
	:: true ->
		rp_lock(wlock);                        /* rp__lock(&sh->wlock) */
again:
		/* rp__readers_gone_hint() is left out: it only makes EPIPE come
		 * sooner; the sleeping path below sees the readers go at once. */
		if
		:: WRITABLE ->                         /* load(tail): room >= want */
#ifndef STORE_LOAD_REORDER
			atomic { head = (head + 1) % MOD; window[_pid] = 1 }  /* RP_PUBLISH */
			wake_readers();                /* rp__wake_readers(e) */
#else
			n = rd_sleepers;               /* load before the store lands */
			atomic { head = (head + 1) % MOD; window[_pid] = 1 }
			if
			:: n > 0 -> ring_bell(bell, n, rd_sleepers, rd_epoch)
			:: else
			fi;
			n = 0;
#endif
			atomic { window[_pid] = 0; rp_unlock(wlock) }
		:: else ->                             /* no room */
			/* rp__wait_writable(e, need, true) */
#ifndef NO_NUDGE
			wake_readers();                /* the nudge */
#endif
			rp_unlock(wlock);
			wait_for(WRITABLE, wake, wake_wr_ends, wr_sleepers, wr_epoch);
			if
			:: r == GONE -> r = 0; break   /* no_readers: EPIPE */
			:: else
			fi;
			rp_lock(wlock);
			goto again
		fi
	:: MAY_IDLE -> break                           /* stops calling, end stays open */
	od
	} unless { dead[_pid] }
}

/*
 * A reader: rp_read(e, buf, 1) in a loop (pipe.c read_iov()), the end
 * blocking and never polled (rp__reader_emptied() returns at once).
 */
active [NR] proctype reader()
{
	byte n, queued, r;
	bool writers_gone;
#ifdef EPOCH_RESET
	byte my_epoch;
#endif
	{
	do
	:: true ->
		rp_lock(rlock);                        /* rp__lock(&sh->rlock) */
again:
		if
		:: HAS_DATA ->                         /* load(head): used > 0 */
			atomic { tail = (tail + 1) % MOD; window[_pid] = 1 }  /* RP_PUBLISH */
			rp_unlock(rlock);
			wake_writers();                /* rp__wake_writers(e) */
			window[_pid] = 0
		:: else ->
			if
			:: writers_gone -> rp_unlock(rlock); break   /* EOF */
			:: else
			fi;
			/* rp__wait_readable(e, true) */
#ifndef NO_NUDGE
			wake_writers();                /* the nudge */
#endif
			rp_unlock(rlock);
			wait_for(HAS_DATA, bell, bell_wr_ends, rd_sleepers, rd_epoch);
			writers_gone = (r == GONE);
			r = 0;
			rp_lock(rlock);
			goto again
		fi
	:: MAY_IDLE -> break
	od
	} unless { dead[_pid] }
}

/*
 * SIGKILL: at most MAXKILL processes, each at any point of its run (between
 * two steps, asleep, holding a lock, idle).  The kernel then closes the
 * process's descriptors: one write end fewer on the bell (a writer) or on
 * the wake pipe (a reader).  Nothing else is undone: a held lock stays held
 * (the next taker finds the holder dead), a sleeper count stays counted.
 */
#define KILLABLE(p) (!dead[p] && ((KILL_MASK >> (p)) & 1))
#define KILL(p) dead[p] = 1; kills++; \
	if :: IS_WRITER(p) -> bell_wr_ends-- :: else -> wake_wr_ends-- fi

active proctype killer()
{
end_killer:
	do
	:: kills < MAXKILL ->
		atomic {
			if
			:: KILLABLE(0) -> KILL(0)
			:: KILLABLE(1) -> KILL(1)
#if NPROC > 2
			:: KILLABLE(2) -> KILL(2)
#endif
#if NPROC > 3
			:: KILLABLE(3) -> KILL(3)
#endif
			fi
		}
	od
}

/*
 * Safety: no lost wakeup.  In no reachable state is a live reader asleep
 * on the bell while data is queued, or a live writer asleep on the wake
 * pipe while there is room, unless a live peer is between its publish and
 * the end of its wake (and so about to drop the token).
 */
#ifdef CHECK_LOST
active proctype monitor()
{
end_monitor:
	atomic { LOST -> assert(!LOST) }
}
#endif

/*
 * Liveness: no sleeper stays asleep for ever with its wait over.  Checked
 * with weak fairness (pan -a -f): a process that can move keeps moving,
 * so the processes outside IDLE_MASK keep calling in.
 */
ltl recover { ([]<> !READER_OWED) && ([]<> !WRITER_OWED) }
