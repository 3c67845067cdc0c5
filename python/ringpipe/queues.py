"""ringpipe.Queue: a drop-in for ``multiprocessing.Queue``.

Design (and how it differs from multiprocessing's):

* The items travel through one ringpipe message pipe (a one-way
  :func:`ringpipe.Pipe`), shared by every producer and every consumer.
  libringpipe delivers each message whole, once and in order, and keeps
  several senders' (or receivers') messages apart with a lock in shared
  memory that it takes over from a holder that died.  So no extra
  cross-process lock is needed, and a producer killed in the middle of a
  ``put`` loses only its own message: the receiver drops the torn message
  and the queue goes on (``multiprocessing.Queue`` is wedged for good when
  a process dies holding its write lock).

* ``put`` pickles the object at once (as ``ForkingPickler``) and sends it
  directly from the calling thread whenever the ring has room for it, with
  no feeder thread: that is most of the speed-up.  When the ring is full,
  or the item is large (more than 1/8 of the ring), the pickle is handed
  to a background feeder thread, as in multiprocessing, so that ``put`` on
  an unbounded queue never blocks; later puts from that process go through
  the same thread until it has caught up, so that each producer's items
  keep their order.  ``close``, ``join_thread`` and ``cancel_join_thread``
  work on that thread exactly as in multiprocessing (a process joins its
  feeder at exit unless ``cancel_join_thread`` was called).

* ``maxsize``, ``qsize()`` and ``full()`` use a
  ``ctx.BoundedSemaphore(maxsize)``, exactly as multiprocessing does:
  ``put`` takes a slot (blocking / timing out / raising ``queue.Full``),
  ``get`` gives it back.  Known limit, shared with multiprocessing: the
  slot of a producer killed in mid-``put`` is not given back, so
  ``qsize()`` then counts one item too many and a bounded queue loses one
  place of its ``maxsize``.  (A slot cannot be reclaimed from a dead
  holder without the holder being tracked by the kernel.)

* ``ctx`` (default: ``multiprocessing.get_context()``) is the
  multiprocessing context whose start method the queue's semaphore must
  match, as for ``ctx.Queue()``: pass ``ctx=multiprocessing.get_context(
  'spawn')`` for a queue handed to spawn (or forkserver) children when the
  default start method is fork.

* Both ends of the queue's pipe are in non-blocking mode (``get`` with a
  timeout, and several consumers, need it): use the queue only through
  its methods.
"""

import collections
import os
import threading
import weakref
from queue import Empty, Full

import multiprocessing
from multiprocessing import context as _context
from multiprocessing import util as _util
from multiprocessing.reduction import ForkingPickler as _ForkingPickler

from .connection import Pipe

__all__ = ['Queue', 'Empty', 'Full']

#: Ring capacity of a Queue when none is given (bytes).
QUEUE_CAPACITY = 1 << 20

_sentinel = object()
_loads = _ForkingPickler.loads


class _Feed:
    """State shared by a queue and its feeder thread (not the queue itself,
    so that the queue can be collected while the thread runs)."""
    __slots__ = ('buffer', 'cond', 'pending')

    def __init__(self, cond):
        self.buffer = collections.deque()
        self.cond = cond
        self.pending = 0      # items buffered or being sent by the thread


class Queue(object):
    """A process-shared FIFO queue, with the methods of
    :class:`multiprocessing.Queue`: ``put``, ``get`` (with *block* and
    *timeout*), ``put_nowait``, ``get_nowait``, ``qsize``, ``empty``,
    ``full``, ``close``, ``join_thread`` and ``cancel_join_thread``;
    raises :class:`queue.Empty` and :class:`queue.Full`.

    *maxsize* <= 0 means unbounded.  *capacity* is the ring size in bytes
    (default :data:`QUEUE_CAPACITY`).  See the module documentation for
    the design.
    """

    def __init__(self, maxsize=0, *, ctx=None, capacity=None):
        if ctx is None:
            ctx = multiprocessing.get_context()
        if maxsize <= 0:
            from multiprocessing.synchronize import SEM_VALUE_MAX as maxsize
        self._maxsize = maxsize
        self._reader, self._writer = Pipe(
            duplex=False, capacity=capacity or QUEUE_CAPACITY)
        self._reader._set_nonblocking(True)
        self._writer._set_nonblocking(True)
        self._direct = self._writer._capacity // 8
        self._sem = ctx.BoundedSemaphore(maxsize)
        self._opid = os.getpid()
        self._ignore_epipe = False
        self._reset()
        _util.register_after_fork(self, Queue._after_fork)

    def __getstate__(self):
        _context.assert_spawning(self)
        return (self._ignore_epipe, self._maxsize, self._reader, self._writer,
                self._sem, self._opid, self._direct)

    def __setstate__(self, state):
        (self._ignore_epipe, self._maxsize, self._reader, self._writer,
         self._sem, self._opid, self._direct) = state
        self._reset()
        _util.register_after_fork(self, Queue._after_fork)

    def _after_fork(self):
        self._reset(after_fork=True)

    def _reset(self, after_fork=False):
        if after_fork:
            cond = self._feed.cond
            cond._at_fork_reinit()
        else:
            cond = threading.Condition(threading.Lock())
        # Items buffered by the parent's feeder are the parent's to send.
        self._feed = _Feed(cond)
        self._thread = None
        self._jointhread = None
        self._joincancelled = False
        self._closed = False
        self._close = None
        self._recv = self._reader._recv_timeout
        self._poll = self._reader.poll

    def put(self, obj, block=True, timeout=None):
        """Put *obj* into the queue.  With *block* (the default) wait, up
        to *timeout* seconds if given, for a free slot of a bounded queue;
        raise :class:`queue.Full` if there is none."""
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        if not self._sem.acquire(block, timeout):
            raise Full
        try:
            if self._feed.pending:
                data = self._writer._dumps(obj)
            else:
                data = self._writer._put_obj(obj, self._direct)
                if data is None:
                    return
        except BaseException:
            self._sem.release()
            raise
        self._enqueue(data)

    def _enqueue(self, data):
        feed = self._feed
        with feed.cond:
            if self._thread is None:
                self._start_thread()
            feed.buffer.append(data)
            feed.pending += 1
            feed.cond.notify()

    def get(self, block=True, timeout=None):
        """Remove and return an item.  With *block* (the default) wait, up
        to *timeout* seconds if given; raise :class:`queue.Empty` if none
        came."""
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        if block and timeout is None:
            res = self._recv(None)
        else:
            res = self._recv(timeout if block else 0.0)
            if res is None:
                raise Empty
        self._sem.release()
        # unpickle after having given the slot back, as multiprocessing
        return _loads(res)

    def qsize(self):
        """Approximate number of items in the queue."""
        return self._maxsize - self._sem._semlock._get_value()

    def empty(self):
        """True if no item is ready to be received (approximate)."""
        return not self._poll()

    def full(self):
        """True if a bounded queue has no free slot (approximate)."""
        return self._sem._semlock._is_zero()

    def get_nowait(self):
        """Equivalent to ``get(False)``."""
        return self.get(False)

    def put_nowait(self, obj):
        """Equivalent to ``put(obj, False)``."""
        return self.put(obj, False)

    def close(self):
        """Indicate that this process will put no more items.  The feeder
        thread, if any, flushes what it holds and then closes the pipe;
        without one, as in multiprocessing, nothing else happens (the
        queue can still be read, and a child forked later can still put:
        the pipe closes when the queue is collected)."""
        self._closed = True
        close = self._close
        if close:
            self._close = None
            close()

    def join_thread(self):
        """Join the feeder thread (after :meth:`close`): wait until every
        item this process put has been sent into the pipe."""
        assert self._closed, "Queue {0!r} not closed".format(self)
        if self._jointhread:
            self._jointhread()

    def cancel_join_thread(self):
        """Do not join the feeder thread when the process exits (items it
        still holds may then be lost)."""
        self._joincancelled = True
        try:
            self._jointhread.cancel()
        except AttributeError:
            pass

    def _start_thread(self):
        feed = self._feed
        self._thread = threading.Thread(
            target=Queue._feeder,
            args=(feed, self._writer.send_bytes, self._reader.close,
                  self._writer.close, self._ignore_epipe,
                  self._on_queue_feeder_error, self._sem),
            name='RingpipeQueueFeeder')
        self._thread.daemon = True
        self._thread.start()
        if not self._joincancelled:
            self._jointhread = _util.Finalize(
                self._thread, Queue._finalize_join,
                [weakref.ref(self._thread)], exitpriority=-5)
        self._close = _util.Finalize(
            self, Queue._finalize_close, [feed], exitpriority=10)

    @staticmethod
    def _finalize_join(twr):
        thread = twr()
        if thread is not None:
            thread.join()

    @staticmethod
    def _finalize_close(feed):
        with feed.cond:
            feed.buffer.append(_sentinel)
            feed.cond.notify()

    @staticmethod
    def _feeder(feed, send_bytes, reader_close, writer_close, ignore_epipe,
                onerror, queue_sem):
        cond = feed.cond
        buffer = feed.buffer
        while True:
            with cond:
                while not buffer:
                    cond.wait()
                data = buffer.popleft()
            if data is _sentinel:
                reader_close()
                writer_close()
                return
            try:
                send_bytes(data)
            except Exception as e:
                if ignore_epipe and getattr(e, 'errno', 0) == 32:
                    return
                if _util.is_exiting():
                    _util.info('error in queue thread: %s', e)
                    return
                # Not sent: as if silently removed from the queue.
                queue_sem.release()
                onerror(e, data)
            finally:
                with cond:
                    feed.pending -= 1

    @staticmethod
    def _on_queue_feeder_error(e, obj):
        """Hook called when the feeder thread fails to send an item.  Unlike
        multiprocessing's, *obj* is the item already pickled (bytes):
        ``put`` pickles at once, so an object that cannot be pickled
        raises there, and the hook sees only errors of the send."""
        import traceback
        traceback.print_exc()
