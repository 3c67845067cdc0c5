/*
 * bias.pml - the biased lock of src/lock.c: its owner enters and leaves
 * with plain stores of its own busy flag (its slot's), which may sit in
 * the owner's store buffer while its next load (of the lock word)
 * overtakes them; another thread revokes the bias with a CAS of the word,
 * then waits for the owner's flag to clear, with membarrier(2) (which
 * drains every registered thread's store buffer) before it trusts a
 * clear flag.  An owner that finds the word changed as it leaves says so
 * in its flag (ACK), unless the word says the revoker may give the bias
 * back (NOACK: a revoker with a time limit); a revoker that reads ACK
 * needs no membarrier.  Checked by scripts/model.sh; see
 * docs/model/README.md.
 *
 * Each of NT threads calls for ever: take the lock, be inside, leave, and
 * at a plain unlock maybe keep the lock biased to itself.  The word
 * changes only by locked instructions (CAS, exchange), which drain the
 * caller's own buffer first.  Variants:
 *   NO_FENCE      the revoker skips membarrier (must be caught)
 *   NO_RECHECK    the owner does not look at the word again after setting
 *                 busy (must be caught)
 *   DRAIN_WAIT    membarrier refused: the revoker waits until busy is
 *                 clear with the owner's buffer drained (the time it
 *                 waits in lock.c); the same as a revoker that finds
 *                 the owner switched out on its own CPU (off_cpu_here():
 *                 a thread not running has an empty buffer)
 *   ONE_FLAG      one busy flag for every owner (the first version of
 *                 lock.c): a thread on its way into a bias it has just
 *                 lost clears the flag of the next owner (must be caught)
 *   ACK_ALWAYS    the owner acknowledges at every exit, revoked or not
 *                 (must be caught)
 *   ACK_NOACK     the owner acknowledges a revoker that may give the bias
 *                 back: the ACK outlives the give-back and a later
 *                 revoker trusts it (must be caught)
 * Kills are left to the C tests (test_bias): a dead owner's lock is taken
 * over as a dead holder's is, and nothing it did is published.
 */
#ifndef NT
#define NT 3
#endif

#define FREE 0
#define ACK 2               /* RP_BUSY_ACK */
bit biased;                 /* word: RP_LOCK_BIASED */
bit noack;                  /* word: RP_LOCK_NOACK */
byte holder;                /* word: TID + 1 (0: FREE) */
byte busy[NT];              /* in memory: thread i's slot's flag, 0, 1, ACK */
bit sb_full[NT];            /* a store of busy waiting in thread i's buffer */
byte sb_val[NT];            /* (later stores to one place overwrite: */
byte inside;                /*  an observer may miss the earlier ones) */

#ifdef ONE_FLAG
#define SLOT(i) 0
#else
#define SLOT(i) (i)
#endif

/* Locked instructions and membarrier land buffered stores. */
inline drain(i) {
	if
	:: sb_full[i] -> busy[SLOT(i)] = sb_val[i]; sb_full[i] = 0
	:: else -> skip
	fi
}
inline drain_all() {
	drain(0); drain(1);
#if NT > 2
	drain(2);
#endif
}
/* The thread's own view of busy: its buffer first. */
#define MY_BUSY(i) (sb_full[i] -> sb_val[i] : busy[SLOT(i)])
#define OURS (biased && holder == me + 1)

inline store_busy(i, v) {
	sb_full[i] = 1; sb_val[i] = v
}

/* rp__bias_leave(): clear busy, then look at the word: changed, say so
 * (then wake the revoker, which the model leaves out: a waiting revoker
 * is one blocked until the flag changes). */
inline leave_biased() {
	atomic { store_busy(me, 0) };
#ifdef ACK_ALWAYS
	atomic { store_busy(me, ACK) }
#else
	if
	:: atomic { OURS -> skip }
#ifdef ACK_NOACK
	:: atomic { !OURS -> store_busy(me, ACK) }
#else
	:: atomic { !OURS && noack -> skip }
	:: atomic { !OURS && !noack -> store_busy(me, ACK) }
#endif
	fi
#endif
}

inline enter_biased() {
	/* rp__bias_enter(): set busy, then look at the word again */
	atomic { store_busy(me, 1) };
#ifdef NO_RECHECK
	mine = 1
#else
	if
	:: atomic { OURS -> mine = 1 }
	:: atomic { !OURS -> skip };
		leave_biased()
	fi
#endif
}

proctype thread(byte me)
{
	byte mine;
	byte h;
	bit fenced;
	do
	:: mine = 0;
		/* rp__lock: the fast paths (the loads, then the stores) */
		if
		:: atomic { OURS && MY_BUSY(me) == 0 -> skip };
			enter_biased()
		:: atomic { !biased && holder == FREE -> drain(me); holder = me + 1; mine = 2 }
		:: else -> skip
		fi;
again:
		/* rp__lock_within: revoke a bias, or wait for the holder */
		do
		:: mine -> break
		:: atomic { !mine && !biased && holder == FREE ->
			drain(me); holder = me + 1; mine = 2; break }
		:: atomic { !mine && OURS -> skip };    /* take_biased(), owner == me */
			enter_biased()
		:: atomic { !mine && biased && holder != me + 1 ->
			h = holder - 1; drain(me); biased = 0; holder = me + 1;
			/* a revoker with a time limit (rp__lock_within's budget) */
			if
			:: noack = 1
			:: noack = 0
			fi;
			fenced = 0 }
			/* await_owner() */
			do
			:: atomic { busy[SLOT(h)] == ACK -> mine = 2; break }
			:: atomic { busy[SLOT(h)] == 0 && fenced -> mine = 2; break }
			:: atomic { busy[SLOT(h)] == 0 && !fenced ->
#ifdef DRAIN_WAIT
				!sb_full[h];
#elif !defined(NO_FENCE)
				drain_all();
#endif
				fenced = 1 }
			:: atomic { noack && busy[SLOT(h)] == 1 ->
				/* out of time: give the bias back */
				biased = 1; holder = h + 1; noack = 0 };
				goto again
			od;
			break
		od;
		/* inside */
		atomic { inside++; assert(inside == 1) };
		atomic { inside-- };
		/* rp__unlock: mine == 1 by bias, 2 by the word */
		if
		:: mine == 1 -> leave_biased()
		:: mine == 2 ->
			if
			:: atomic { !noack -> store_busy(me, 0); drain(me); biased = 1 }  /* grant */
			:: atomic { drain(me); holder = FREE; noack = 0 }
			fi
		fi
	od
}

/* Memory drains any buffer at any time. */
active proctype memory()
{
	do
	:: atomic { sb_full[0] -> drain(0) }
	:: atomic { sb_full[1] -> drain(1) }
#if NT > 2
	:: atomic { sb_full[2] -> drain(2) }
#endif
	od
}

init
{
	atomic {
		biased = 1; holder = 1;         /* biased to thread 0 */
		run thread(0); run thread(1);
#if NT > 2
		run thread(2);
#endif
	}
}
