/*
 * wakeup.pml - a Promela model of ringpipe's sleep/wake protocol.
 *
 * Checked with spin (Debian package `spin`) by scripts/model.sh; what is
 * modelled, what is abstracted, the properties and the results are in
 * docs/model/README.md.
 *
 * NW writer processes call rp_write() with 1 or 2 bytes (WMAX) and NR
 * reader processes call rp_read() for 1 byte at a time, on a ring of
 * CAP = 2 bytes, along the paths of src/pipe.c (write_iov, read_iov) and
 * src/wait.c (rp__wait_readable, rp__wait_writable, wait_for, sleep_on,
 * rp__wake_readers, rp__wake_writers, owed, ring_bell, reap, count_in,
 * count_out, forget_rung).  Also
 * modelled: the kernel pipes the sleepers block in (the bell and the wake
 * pipe) with their EOF rule, the writers' and readers' locks with lock.c's
 * takeover of a dead holder, and a killer that may SIGKILL a process
 * between any two of its steps.
 *
 * Granularity: one Promela statement or atomic { } is one shared memory
 * operation or one system call, so a process can be preempted or killed
 * between any two of them, as in the C code.  (One merge, argued where it
 * is made: a side's load of the other side's index and its own publish.
 * Steps on locals and on the bookkeeping variables are folded into the
 * shared step next to them.)
 * Promela variables are sequentially consistent, which is what RP_PUBLISH
 * (memory_order_seq_cst) gives the head/tail stores, the sleeper counts'
 * increments and the loads that follow; weaker orderings are argued in
 * docs/DESIGN.md, not checked here (STORE_LOAD_REORDER shows what a missing
 * StoreLoad barrier would do).
 *
 * Compile-time knobs (spin -DNAME=value ...):
 *   NW, NR      writers and readers (1 or 2 each)
 *   WMAX        largest write, in bytes (1 or 2; default 2): a write of up
 *               to RP_PIPE_BUF waits for room for all of it; each call
 *               picks 1 .. WMAX
 *   WANT0, WANT1  instead, fixed sizes for writer 0 and writer 1 (WANT1
 *               defaults to WANT0)
 *   MAXKILL     how many processes the killer may SIGKILL (0 or 1)
 *   KILL_MASK   bit p set: process p may be killed (pids below; default all)
 *   IDLE_MASK   bit p set: process p may stop calling between two calls,
 *               its end left open (default none: everyone calls for ever)
 *   CHECK_LOST  add the monitor process that asserts "no lost wakeup"
 *   LIVENESS    keep the `calls` bit that recover_after_call needs
 * Variants: each must make some check fail (scripts/model.sh):
 *   NO_RECHECK          sleep_on() does not re-check the ring after counting
 *                       itself in
 *   NO_NUDGE            rp__wait_readable() / rp__wait_writable() do not wake
 *                       the other side before sleeping
 *   STORE_LOAD_REORDER  a waker reads the sleeper count before its publish
 *                       of head/tail is visible (what a release store and a
 *                       plain load allow, even on x86: the store buffer)
 *   ASYM_FENCE          (the code as it is since layout 4, src/fence.c) a
 *                       writer's publish of head is a plain store that may
 *                       sit in its store buffer while the sleeper count is
 *                       loaded, as STORE_LOAD_REORDER; a reader, after
 *                       counting itself in, calls membarrier(2), which
 *                       makes every such buffered store visible before it
 *                       returns; a buffered store also lands by itself at
 *                       any later point (store_buffer), a killed writer's too
 *   NO_FENCE            with ASYM_FENCE: the reader does not call it
 *   ASYM_READER         (biased locks since layout 6, src/lock.c; NR == 1)
 *                       the mirror: the reader's publish of tail may sit in
 *                       its store buffer (its unlock, biased, drains
 *                       nothing) while it loads the writers' count; a
 *                       writer, after counting itself in, calls
 *                       membarrier(2); the reader sees its own store
 *   NO_FENCE_R          with ASYM_READER: the writer does not call it
 *   NO_FORGET           (layout 11's marks) a sleeper that takes a token
 *                       leaves the marks as they are
 *   NUDGE_MARKED        the nudges drop tokens only for unmarked sleepers,
 *                       as a publish does
 *   NO_OWED_FENCE       (with ASYM_FENCE) a waker loads the marks with its
 *                       own publish still in its store buffer
 *   NO_KILL_MARKING     the killer spares a process between marking
 *                       sleepers and writing their tokens: the window that
 *                       DESIGN.md documents (killed-peer-marks-1w2r)
 *   NO_RUNG             no marks: every wake drops a token for every
 *                       counted sleeper (the code before layout 11)
 * Changes to wait.c (README, "Findings"):
 *   RESET_ALL           ring_bell() resets the whole sleeper count when
 *                       the token pipe is full and FIONREAD shows at least
 *                       as many tokens as the count (what wait.c did before
 *                       the reap: finding 1)
 *   NO_RESET            ring_bell() never takes a count back
 *   REAP_LIVE           reap() takes back live sleepers' counts too
 *   NO_HAND_BACK        a writer woken with too little room does not hand
 *                       the token back to one whose write fits, nor does
 *                       one about to sleep wake it (the code before the
 *                       fix of finding 2)
 *   LATE_NUDGE          sleep_on() wakes the other side's sleepers again
 *                       after its re-check failed, just before read(2)
 *   WRITER_SLEEPS_LOCKED  writers sleep holding the writers' lock, as
 *                       rp_conn senders do (rp__wait_writable(e, need, false))
 *
 * Process ids: writers 0 .. NW-1, readers NW .. NW+NR-1, then the killer
 * and (CHECK_LOST) the monitor.
 */

#ifndef NW
#define NW 2
#endif
#ifndef NR
#define NR 2
#endif
#define NPROC (NW + NR)

#define CAP 2                 /* ring capacity in bytes (struct rp_ring.cap) */
#define MOD (CAP + 1)         /* head and tail are free-running in C; counted
                               * modulo CAP+1 here, which keeps head - tail
                               * (0 .. CAP) exact */
#ifndef WMAX
#define WMAX 2
#endif
#ifdef REAP_LIVE
#undef REAP_LIVE
#define REAP_LIVE 1
#else
#define REAP_LIVE 0
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
#ifdef NUDGE_MARKED
#define NUDGE_ALL 0
#else
#define NUDGE_ALL 1
#endif

/*
 * Tokens a kernel pipe holds.  The kernel's hold 65536; the model's hold
 * 2N-1, N being the processes that sleep on that pipe (a count, stale
 * ones included, never exceeds N): the least that keeps what 65536 gives
 * the real code, that a write of k <= N tokens is refused only when more
 * than 2N-1-k >= N-1 tokens, so at least N, are queued, enough to wake
 * every real sleeper.  (MAX_TOKENS = 64 never binds here.)
 */
#define BELL_CAP (2 * NR - 1)
#define WAKE_CAP (2 * NW - 1)

#define READY 0               /* RP_WAIT_READY */
#define GONE  1               /* RP_WAIT_GONE */

/* ---- struct rp_shared (src/layout.h) ---------------------------------- */
byte head;                    /* bytes published, mod MOD (writers' line) */
byte tail;                    /* bytes consumed, mod MOD (readers' line) */
byte wlock;                   /* writers' lock: 0 free, else holder _pid+1 */
byte rlock;                   /* readers' lock, as wlock */
byte rd_sleepers;             /* readers blocked on the bell */
byte wr_sleepers;             /* writers blocked on the wake pipe */
byte rd_rung;                 /* rd_rung, wr_rung: bit p, sleeper p's mark */
byte wr_rung;                 /* (a token was dropped for it: owed()) */

/* ---- the kernel -------------------------------------------------------- */
byte bell;                    /* tokens queued in the bell pipe */
byte wake;                    /* tokens queued in the wake pipe */
byte bell_wr_ends = NW;       /* open write ends of the bell: the writers
                               * hold it O_RDWR (internal.h); 0: EOF */
byte wake_wr_ends = NR;       /* the wake pipe's: the readers hold them */

/* ---- bookkeeping for the properties (no counterpart in C) -------------- */
bool dead[NPROC];             /* SIGKILLed */
bool at_read[NPROC];          /* inside read(2) on its token pipe */
bool counted[NPROC];          /* its bit is set in rd_sleepers/wr_sleepers
                               * (the count is the number of these) */
bool holding[NPROC];          /* a writer that read a token and has too
                               * little room, until hand_back() decides */
bool window[NPROC];           /* between its publish of head/tail and the
                               * end of the wake that follows it */
bool marking[NPROC];          /* between marking sleepers (owed()) and the
                               * write(2) of their tokens */
#ifdef ASYM_FENCE
byte pend[NW];                /* a writer's publish of head still in its
                               * store buffer: the bytes it adds */
#define DRAIN(p) if :: pend[p] > 0 -> head = (head + pend[p]) % MOD; pend[p] = 0 \
                    :: else fi
/* A dead holder's lock is taken over after a /proc check (20 ms): its
 * buffered store has long landed by then. */
#define LANDED(p) (pend[p] == 0)
#else
#define LANDED(p) 1
#endif
#ifdef ASYM_READER
byte rpend;                   /* the reader's publish of tail still in its
                               * store buffer: the bytes it consumed */
#define RDRAIN if :: rpend > 0 -> tail = (tail + rpend) % MOD; rpend = 0 \
                  :: else fi
#endif
byte need[NW];                /* the writer's call: bytes it waits room for
                               * (write_iov's need = want: an atomic write) */
byte kills;
bit calls;                    /* LIVENESS: flips when a call starts while a
                               * sleeper is owed (see READER_OWED) */
#ifdef LIVENESS
#define CALL_STARTS if :: READER_OWED || WRITER_OWED -> calls = 1 - calls \
                       :: else fi
#else
#define CALL_STARTS skip
#endif

/* The size of each write: fixed per writer, or picked at each call. */
#if defined(WANT0)
#ifndef WANT1
#define WANT1 WANT0
#endif
#define FIXED_NEED need[_pid] = (_pid == 0 -> WANT0 : WANT1)
#define PICK_NEED  skip
#define DROP_NEED  skip
#elif WMAX == 1
#define FIXED_NEED need[_pid] = 1
#define PICK_NEED  skip
#define DROP_NEED  skip
#else
#define FIXED_NEED skip
#define PICK_NEED  if :: need[_pid] = 1 :: need[_pid] = 2 fi
#define DROP_NEED  need[_pid] = 0
#endif

/* ---- derived ----------------------------------------------------------- */
#define USED      ((head + MOD - tail) % MOD)   /* rp_ring_used() */
#define HAS_DATA  (head != tail)                /* rp__has_data(): readable() */
#ifdef ASYM_READER
#define RHAS_DATA (head != (tail + rpend) % MOD)  /* the reader's own view */
#else
#define RHAS_DATA HAS_DATA
#endif
#define ROOM      (CAP - USED)                  /* free_space() */
#define WRITABLE  (ROOM >= need[_pid])         /* writable(e, need) */

#define IS_WRITER(p) ((p) < NW)

/* The slot bits of a count word: the counted sleepers of one side (WR: 1
 * for the writers), bit p for process p. */
#define CB(p, WR) ((counted[p] && IS_WRITER(p) == WR) -> (1 << (p)) : 0)
#if NPROC == 2
#define CMASK(WR) (CB(0, WR) | CB(1, WR))
#elif NPROC == 3
#define CMASK(WR) (CB(0, WR) | CB(1, WR) | CB(2, WR))
#else
#define CMASK(WR) (CB(0, WR) | CB(1, WR) | CB(2, WR) | CB(3, WR))
#endif
#define BITS(m) (((m) & 1) + (((m) >> 1) & 1) + (((m) >> 2) & 1) + (((m) >> 3) & 1))

/*
 * write(2) into a kernel pipe takes the pipe's mutex, as the read(2) that
 * takes a token does after it: the writer's stores before its write (its
 * publish, buffered in ASYM_FENCE) happen before the reader's loads after
 * its read.  So the write step lands the caller's buffered publish.  A
 * sleeper that takes a stale token relies on it to go on reading tokens
 * without fencing again (NO_TOKEN_RELEASE: a broken variant).
 */
#if !defined(ASYM_FENCE) || defined(NO_TOKEN_RELEASE)
#define TOKEN_RELEASE skip
#elif defined(ASYM_READER)
#define TOKEN_RELEASE if :: IS_WRITER(_pid) -> DRAIN(_pid) :: else -> RDRAIN fi
#else
#define TOKEN_RELEASE if :: IS_WRITER(_pid) -> DRAIN(_pid) :: else fi
#endif
/* owed()'s fence before it loads the marks: it lands the caller's own
 * buffered publish (NO_OWED_FENCE: without it). */
#if !defined(ASYM_FENCE) || defined(NO_OWED_FENCE)
#define OWN_FENCE skip
#elif defined(ASYM_READER)
#define OWN_FENCE if :: IS_WRITER(_pid) -> DRAIN(_pid) :: else -> RDRAIN fi
#else
#define OWN_FENCE if :: IS_WRITER(_pid) -> DRAIN(_pid) :: else fi
#endif
#define MAY_IDLE  ((IDLE_MASK >> _pid) & 1)

/* A live process blocked in read(2): nothing queued, a write end open
 * (W_ASLEEP: and there is room for what the writer waits for). */
#define R_ASLEEP(p) (!dead[p] && at_read[p] && bell == 0 && bell_wr_ends > 0)
#define W_ASLEEP(p) (!dead[p] && at_read[p] && wake == 0 && wake_wr_ends > 0 \
                     && ROOM >= need[p])
/* A live waker between its publish and the end of its wake. */
#define LIVE_WINDOW(p) ((window[p] || marking[p]) && !dead[p])

#if NW == 1
#define ANY_W_OWED    W_ASLEEP(0)
#define ANY_W_WINDOW  LIVE_WINDOW(0)
#define ANY_W_HOLDING (holding[0] && !dead[0])
#else
#define ANY_W_OWED    (W_ASLEEP(0) || W_ASLEEP(1))
#define ANY_W_WINDOW  (LIVE_WINDOW(0) || LIVE_WINDOW(1))
#define ANY_W_HOLDING ((holding[0] && !dead[0]) || (holding[1] && !dead[1]))
#endif
#if NR == 1
#define ANY_R_ASLEEP  R_ASLEEP(NW)
#define ANY_R_WINDOW  LIVE_WINDOW(NW)
#else
#define ANY_R_ASLEEP  (R_ASLEEP(NW) || R_ASLEEP(NW + 1))
#define ANY_R_WINDOW  (LIVE_WINDOW(NW) || LIVE_WINDOW(NW + 1))
#endif

/* A reader asleep while data is queued; a writer asleep while there is
 * room: its wait is over, and it waits for a token. */
#define READER_OWED (ANY_R_ASLEEP && HAS_DATA)
#define WRITER_OWED ANY_W_OWED
/* ... and no live peer is on its way with that token: a lost wakeup. */
#define LOST ((READER_OWED && !ANY_W_WINDOW) || \
              (WRITER_OWED && !ANY_R_WINDOW && !ANY_W_HOLDING))

/* ---- lock.c ------------------------------------------------------------- */

/* rp__lock(): one CAS; a waiter that finds the holder dead (after at most
 * LOCK_RECHECK_NS, through /proc) takes the lock over. */
inline rp_lock(word)
{
	atomic { (word == 0 || dead[word - 1]) -> word = _pid + 1 }
}

/* ---- wait.c ------------------------------------------------------------- */

/* END = 1: this wake ends the caller's window (bookkeeping only). */
#define END_WINDOW(e) if :: e -> window[_pid] = 0 :: else fi

/*
 * reap(): take back the counts of dead sleepers of one side (WR: 1 for the
 * writers).  In C a slot at a time, after /proc says its owner is gone; one
 * step here, which hides nothing: a dead process stays dead, and only its
 * owner could change its bit.
 */
inline reap(sleepers, WR)
{
	atomic {
		j = 0;
		do
		:: j < NPROC ->
			if
			:: (dead[j] || REAP_LIVE) && counted[j] && IS_WRITER(j) == WR ->
				counted[j] = 0; sleepers--
			:: else
			fi;
			j++
		:: else -> j = 0; break
		od
	}
}

/*
 * ring_bell(e, fd, k, sleepers, who): write(fd, zeros, k) into the
 * non-blocking pipe (k <= PIPE_BUF: all k tokens or EAGAIN); on EAGAIN
 * reap() the dead sleepers' counts, unless it ran less than PROBE_NS ago
 * (either may happen here).
 *
 * RESET_ALL is the code before: on EAGAIN, if ioctl(FIONREAD) shows at
 * least `sleepers` (a seq_cst load) tokens queued, store 0 into `sleepers`
 * (a relaxed store), three steps after the write.  It loses wakeups
 * (README, "Findings"): a sleeper that counts itself in between the load
 * and the store is erased.  NO_RESET never takes a count back.
 */
inline ring_bell(fd, fdcap, k, sleepers, WR, END)
{
#if defined(NO_RESET)
	atomic {                                        /* write(fd, zeros, k) */
		TOKEN_RELEASE; marking[_pid] = 0;
		if
		:: fd + k <= fdcap -> fd = fd + k       /* written */
		:: else                                  /* EAGAIN: keep the count */
		fi;
		k = 0;
		END_WINDOW(END)
	}
#elif defined(RESET_ALL)
	atomic {                                        /* write(fd, zeros, k) */
		TOKEN_RELEASE; marking[_pid] = 0;
		if
		:: fd + k <= fdcap -> fd = fd + k; k = 0; END_WINDOW(END)
		:: else                                  /* EAGAIN */
		fi
	}
	if
	:: k == 0
	:: else ->
		queued = fd;                            /* ioctl(fd, FIONREAD) */
		if
		:: atomic { queued >= sleepers -> queued = 0 };  /* load, seq_cst */
			sleepers = 0                    /* store, relaxed */
		:: else -> queued = 0
		fi;
		atomic { k = 0; END_WINDOW(END) }
	fi
#else
	atomic {                                        /* write(fd, zeros, k) */
		TOKEN_RELEASE; marking[_pid] = 0;
		if
		:: fd + k <= fdcap -> fd = fd + k; k = 0; END_WINDOW(END)
		:: else                                  /* EAGAIN */
		fi
	}
	if
	:: k == 0
	:: else ->
		if
		:: reap(sleepers, WR)
		:: skip                                 /* reaped too recently */
		fi;
		atomic { k = 0; END_WINDOW(END) }
	fi
#endif
}

/*
 * owed(rung, n, all): of the sleepers `seen` in the count word (loaded
 * before), those with no mark: a load of the marks, then a fetch_or of
 * those (two steps); n = how many the fetch_or found unmarked.  ALL (the
 * nudge): every one seen, marked or not, and no load.  NO_RUNG: no marks,
 * every one seen (the code before layout 11).
 */
inline owed(rung, ALL)
{
#ifdef NO_RUNG
	n = BITS(seen)
#else
	if
	:: ALL -> fresh = seen
	:: else -> atomic { OWN_FENCE; fresh = seen & ~rung }  /* fence, load */
	fi;
	if
	:: fresh != 0 ->
		atomic {                                /* fetch_or, seq_cst */
			old = rung; rung = rung | fresh;
			if :: !ALL -> fresh = fresh & ~old :: else fi;
			n = BITS(fresh); old = 0; fresh = 0;
			marking[_pid] = (n > 0)
		}
	:: else -> n = 0
	fi
#endif
}

/* The tokens owed, if any; n = 0 after, and the window ends (END). */
inline ring_owed(fd, fdcap, sleepers, rung, WR, END, ALL)
{
	owed(rung, ALL);
	if
	:: n > 0 -> ring_bell(fd, fdcap, n, sleepers, WR, END)
	:: else -> atomic { seen = 0; END_WINDOW(END) }
	fi;
	seen = 0
}

/* rp__wake_readers(): rd_armed is 0 (nobody polls: README, "poll").
 * ALL: the nudge (nudge_readers()). */
inline wake_readers(END, ALL)
{
	if
	:: atomic { rd_sleepers > 0 -> n = rd_sleepers; seen = CMASK(0) }  /* load */
		ring_owed(bell, BELL_CAP, rd_sleepers, rd_rung, 0, END, ALL)
	:: atomic { rd_sleepers == 0 -> END_WINDOW(END) }   /* (the same load) */
	fi
}

/* rp__wake_writers(): gate_closed is 0 (no non-blocking writer). */
inline wake_writers(END, ALL)
{
	if
	:: atomic { wr_sleepers > 0 -> n = wr_sleepers; seen = CMASK(1) }  /* load */
		ring_owed(wake, WAKE_CAP, wr_sleepers, wr_rung, 1, END, ALL)
	:: atomic { wr_sleepers == 0 -> END_WINDOW(END) }   /* (the same load) */
	fi
}

/*
 * hand_back(): a writer woke for a token with too little room for its own
 * write, or is about to sleep for lack of it.  If another live writer is
 * counted asleep whose write fits, the token may have been dropped for it
 * (or, after a reader was killed, never written): write(2) one, then wait until
 * that writer's bit is clear, or HAND_BACK_NS have passed (either here),
 * before sleeping again.  The scan (free_space(), the count word, each
 * slot's need and TID) is one step here.
 */
inline hand_back()
{
	atomic {
		j = 0;
		do
		:: j < NW && j != _pid && counted[j] && !dead[j] && ROOM >= need[j] -> break
		:: j < NW && !(j != _pid && counted[j] && !dead[j] && ROOM >= need[j]) -> j++
		:: j >= NW -> holding[_pid] = 0; break
		od
	}
	if
	:: j < NW ->
		atomic { TOKEN_RELEASE; if :: wake < WAKE_CAP -> wake++ :: else fi; holding[_pid] = 0 }
		if
		:: atomic { !counted[j] || dead[j] -> j = 0 }
		:: j = 0                                /* HAND_BACK_NS passed */
		fi
	:: else -> j = 0
	fi
}

/*
 * wait_for(e, ready, arg, fd, sleepers) and its sleep_on() loop:
 *
 *   spin:     if (ready) return READY     (the whole spin loop: a check with
 *                                          no effect can be taken at the
 *                                          latest of its repetitions)
 *   sleep_on: count_in                    (its bit: fetch_or, seq_cst)
 *             if (ready) r = READY        (the re-check: NO_RECHECK drops it)
 *             else while ((r = read(fd, &c, 1)) == READY && !ready)
 *                     hand_back()         (a stale token: the next one,
 *                                          still counted; STALE_RECOUNT
 *                                          counts out and in again instead,
 *                                          as the code did before)
 *             count_out                   (its bit: fetch_and)
 *   while (r == READY && !ready)  sleep_on again   (the data went to another)
 *
 * sleep_on()'s rp__nonblocking() check is left out: the ends stay blocking.
 */
inline wait_for(READY_COND, fd, holders, sleepers, rung)
{
	if
	:: atomic { READY_COND -> r = READY }           /* the spin saw it */
	:: else ->                                      /* it did not */
sleep_on:
		atomic { sleepers++; counted[_pid] = 1    /* count_in */
#ifdef ASYM_READER
			 ; if :: !IS_WRITER(_pid) -> RDRAIN  /* a locked instruction */
			      :: else fi
#endif
		}
#ifndef NO_RUNG
		/* our old mark, if any: a load, and a fetch_and if it is
		 * set, one step here (a mark set between the two is cleared
		 * by the fetch_and; one set before the load, by either) */
		rung = rung & ~(1 << _pid);
#endif
#if defined(ASYM_READER) && !defined(NO_FENCE_R)
		if                                        /* rp__fence_peers */
		:: IS_WRITER(_pid) -> atomic { RDRAIN }
		:: else
		fi;
#endif
#if defined(ASYM_FENCE) && !defined(NO_FENCE)
		if                                        /* rp__fence_for_writers */
		:: !IS_WRITER(_pid) ->
			atomic { DRAIN(0);
#if NW > 1
				 DRAIN(1)
#endif
			}
		:: else
		fi;
#endif
#ifndef NO_RECHECK
		if
		:: atomic { READY_COND -> r = READY }   /* ready(e, arg) */
		:: atomic { !(READY_COND) -> at_read[_pid] = 1 }
#else
		if
		:: at_read[_pid] = 1
#endif
#ifdef LATE_NUDGE
			if
			:: IS_WRITER(_pid) -> wake_readers(0, 1)
			:: else -> wake_writers(0, 1)
			fi;
#endif
			/* read(fd, &c, 1): blocks while the pipe is empty and
			 * some process holds a write end */
take:
			atomic {
				fd > 0 || holders == 0 ->
				if
				:: fd > 0 -> fd--; r = READY
				:: else -> r = GONE
				fi;
				at_read[_pid] = 0;
#ifndef NO_HAND_BACK
				if
				:: IS_WRITER(_pid) && r == READY && !(READY_COND) -> holding[_pid] = 1
				:: else
				fi
#endif
			}
#if !defined(NO_RUNG) && !defined(NO_FORGET)
			if                                /* forget_rung(): a load, */
			:: r == READY -> rung = 0         /* and a store if it is not 0 */
			:: else
			fi;
#endif
#ifndef STALE_RECOUNT
			if
			:: r == READY && !(READY_COND) ->       /* stale: the next */
#ifndef NO_HAND_BACK
				if
				:: IS_WRITER(_pid) -> hand_back()
				:: else
				fi;
#endif
				if
				:: atomic { READY_COND -> skip }
				:: atomic { !(READY_COND) -> at_read[_pid] = 1 };
					goto take
				fi
			:: else
			fi
#endif
		fi;
#ifndef RESET_ALL
		atomic { if :: counted[_pid] -> sleepers--; counted[_pid] = 0 :: else fi }
#else
		atomic { if :: sleepers > 0 -> sleepers-- :: else fi; counted[_pid] = 0 }
#endif
		if
		:: r == READY && !(READY_COND) ->               /* too little */
#ifndef NO_HAND_BACK
			if
			:: IS_WRITER(_pid) -> hand_back()
			:: else
			fi;
#endif
			goto sleep_on                           /* stale token */
		:: else
		fi
	fi
}

/* ---- the processes ------------------------------------------------------ */

/*
 * A writer: rp_write(e, buf, want) in a loop (pipe.c write_iov()), the end
 * blocking, want = 1 .. WMAX <= RP_PIPE_BUF: the write is atomic, it waits
 * for room for all of it (need = want) and publishes it with one store.
 */
active [NW] proctype writer()
{
	byte n, queued, r, j, seen, fresh, old;
	FIXED_NEED;
	{
	do
	:: atomic {                                   /* rp_write(): */
		(wlock == 0 || (dead[wlock - 1] && LANDED(wlock - 1))) -> wlock = _pid + 1;  /* rp__lock */
		CALL_STARTS; PICK_NEED                 /* (the call has started) */
	   }
again:
		/* rp__readers_gone_hint() is left out: it only makes EPIPE
		 * come sooner (the sleeping path sees EOF at once). */
		if
		/* e->peer = load(tail); room >= want; store(head + want):
		 * only the lock holder moves head, and tail only grows, so
		 * the load and the store can be one step without hiding a
		 * state. */
#if defined(ASYM_FENCE)
		/* store(head, release) goes into the store buffer, and the
		 * load of the sleeper count overtakes it
		 * (it lands when store_buffer says so, or at the unlock, an
		 * exchange, at the latest: even after the tokens are written) */
		:: atomic { WRITABLE -> pend[_pid] = need[_pid]; window[_pid] = 1; n = rd_sleepers;
			    seen = CMASK(0) }
			if
			:: n > 0 -> ring_owed(bell, BELL_CAP, rd_sleepers, rd_rung, 0, 0, 0)
			:: else
			fi;
#elif !defined(STORE_LOAD_REORDER)
		:: atomic { WRITABLE -> head = (head + need[_pid]) % MOD; window[_pid] = 1 }
			wake_readers(0, 0);            /* rp__wake_readers(e) */
#else
		:: atomic { WRITABLE -> n = rd_sleepers; seen = CMASK(0) }   /* the load overtakes */
			atomic { head = (head + need[_pid]) % MOD; window[_pid] = 1 }
			if
			:: n > 0 -> ring_owed(bell, BELL_CAP, rd_sleepers, rd_rung, 0, 0, 0)
			:: else
			fi;
#endif
			atomic { n = 0; window[_pid] = 0; DROP_NEED;
#ifdef ASYM_FENCE
				 DRAIN(_pid);
#endif
				 wlock = 0 }                   /* unlock */
		:: else ->                             /* no room */
			/* rp__wait_writable(e, need, true) */
#ifndef NO_NUDGE
			wake_readers(0, NUDGE_ALL);    /* the nudge */
#endif
#ifndef WRITER_SLEEPS_LOCKED
			atomic { n = 0; wlock = 0 };   /* rp__unlock(&sh->wlock) */
#endif
#ifndef NO_HAND_BACK
			hand_back();                   /* the same side's nudge */
#endif
			wait_for(WRITABLE, wake, wake_wr_ends, wr_sleepers, wr_rung);
#ifndef WRITER_SLEEPS_LOCKED
			if
			:: r == GONE -> break          /* no_readers: EPIPE, and
			                                * the writer stops */
			:: atomic { r != GONE && (wlock == 0 || (dead[wlock - 1] && LANDED(wlock - 1))) ->
				wlock = _pid + 1 }     /* rp__lock */
			fi;
#else
			if
			:: atomic { r == GONE -> wlock = 0 }; break
			:: else
			fi;
#endif
			goto again
		fi
	:: MAY_IDLE -> break                           /* no more calls */
	od
	} unless { dead[_pid] }
}

/*
 * A reader: rp_read(e, buf, 1) in a loop (pipe.c read_iov()), the end
 * blocking and never polled (rp__reader_emptied() returns at once).
 */
active [NR] proctype reader()
{
	byte n, queued, r, j, seen, fresh, old;
	{
	do
	:: atomic {                                   /* rp_read(): */
		(rlock == 0 || dead[rlock - 1]) -> rlock = _pid + 1;  /* rp__lock */
		CALL_STARTS; r = READY
	   }
again:
		if
		/* e->peer = load(head); used > 0; store(tail + 1): merged as
		 * the writer's are, head only grows */
#ifdef ASYM_READER
		:: atomic { RHAS_DATA -> rpend++; window[_pid] = 1 }
#else
		:: atomic { HAS_DATA -> tail = (tail + 1) % MOD; window[_pid] = 1 }
#endif
			rlock = 0;                     /* rp__unlock(&sh->rlock) */
			wake_writers(1, 0)             /* rp__wake_writers(e) */
		:: atomic { !RHAS_DATA && r == GONE -> rlock = 0 };
			break                          /* writers_gone: EOF, and
			                                * the reader stops */
		:: !RHAS_DATA && r != GONE ->          /* empty */
			/* rp__wait_readable(e, true) */
#ifndef NO_NUDGE
			wake_writers(0, NUDGE_ALL);    /* the nudge */
#endif
			atomic { n = 0; rlock = 0 };   /* rp__unlock(&sh->rlock) */
			/* r == GONE is read_iov()'s writers_gone */
			wait_for(RHAS_DATA, bell, bell_wr_ends, rd_sleepers, rd_rung);
			rp_lock(rlock);
			goto again
		fi
	:: MAY_IDLE -> break                           /* no more calls */
	od
	} unless { dead[_pid] }
}

/*
 * SIGKILL: at most MAXKILL processes, each at any point (between two
 * steps, asleep, holding a lock, idle).  The kernel closes the process's
 * descriptors: one write end fewer on the bell (a writer) or on the wake
 * pipe (a reader).  Nothing else is undone: a held lock stays held until a
 * waiter finds the holder dead, a sleeper count stays counted.
 */
#ifdef NO_KILL_MARKING
/* Not between marking sleepers and their token: the one window whose kill
 * only a nudge, a hand-back or the recheck repair, not a publish (DESIGN.md,
 * "A waker killed mid-wake"; deviation-marked-2w1r). */
#define KILLABLE(p) (!dead[p] && !marking[p] && ((KILL_MASK >> (p)) & 1))
#else
#define KILLABLE(p) (!dead[p] && ((KILL_MASK >> (p)) & 1))
#endif
#define KILL(p) dead[p] = 1; kills++; at_read[p] = 0; window[p] = 0; holding[p] = 0; \
	marking[p] = 0; \
	if :: IS_WRITER(p) -> bell_wr_ends-- :: else -> wake_wr_ends-- fi

#if defined(ASYM_FENCE) || defined(ASYM_READER)
/* A buffered store lands by itself, whatever its writer does meanwhile. */
active proctype store_buffer()
{
end_store_buffer:
	do
#ifdef ASYM_FENCE
	:: atomic { pend[0] > 0 -> DRAIN(0) }
#if NW > 1
	:: atomic { pend[1] > 0 -> DRAIN(1) }
#endif
#endif
#ifdef ASYM_READER
	:: atomic { rpend > 0 -> RDRAIN }
#endif
	od
}
#endif

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
 * Property (1), safety: no lost wakeup.  In no reachable state is a live
 * reader asleep on the bell while data is queued, or a live writer asleep
 * on the wake pipe while there is room, unless a live peer is between its
 * publish and the end of its wake.  (pan -DSAFETY also reports any state
 * where every process is blocked: with everyone calling for ever, that
 * too is a lost wakeup.)
 */
#ifdef CHECK_LOST
active proctype monitor()
{
end_monitor:
	atomic { LOST -> assert(!LOST) }
}
#endif

/*
 * Property (2), liveness, over runs that go on for ever (a run whose
 * processes all stop is stretched by repeating its last state):
 *
 * recover: no sleeper stays owed for ever.  Holds without kills; with a
 *   kill and the survivors idle it fails: DESIGN's known deviation.
 * recover_after_call: from any point after which a call starts (the
 *   `calls` bit flips when a live process takes its side's lock to start
 *   rp_read or rp_write while a sleeper is owed), the owed readers and the
 *   owed writers each stop being owed at some later point.  Must hold with
 *   kills: "any live peer that calls in afterwards recovers the sleepers".
 */
ltl recover { ([]<> !READER_OWED) && ([]<> !WRITER_OWED) }
ltl recover_after_call {
	[] (((calls == 0 && <> (calls == 1)) || (calls == 1 && <> (calls == 0))) ->
	    ((<> !READER_OWED) && (<> !WRITER_OWED)))
}
