"""ringpipe.Queue across processes under the fork, spawn and forkserver
start methods: many producers and consumers, flushing at exit, Pool
initializers, and producers killed with SIGKILL in the middle of a put."""

import itertools
import multiprocessing
import os
import queue
import signal
import time
import unittest

import ringpipe
from support import START_METHODS, TestCase, join, start


# ---- children ----

def producer(q, k, n):
    for i in range(n):
        q.put((k, i))


def consumer(q, results):
    got = []
    while True:
        item = q.get(timeout=60)
        if item is None:
            break
        got.append(item)
    results.put(got)


def put_many_and_exit(q, n):
    for i in range(n):
        q.put(i)
    # no close(): the feeder thread is joined at exit, as multiprocessing's


def put_large_forever(q, started, size):
    started.set()
    q.put(b'L' * size)       # the feeder thread streams it ...
    time.sleep(120)          # ... until we are killed


def put_counting_forever(q, started):
    started.set()
    for i in itertools.count():
        q.put(i)


def put_one(q, item):
    q.put(item)
    q.close()
    q.join_thread()


def get_one(q, results, ready=None):
    if ready is not None:
        ready.set()
    results.put(q.get(timeout=60))


_pool_q = None


def pool_init(q):
    global _pool_q
    _pool_q = q


def pool_task(x):
    _pool_q.put(x * 10)
    return x


class _StartMethod:
    method = None

    def setUp(self):
        super().setUp()
        self.ctx = multiprocessing.get_context(self.method)
        self.q = ringpipe.Queue(ctx=self.ctx)
        self.results = ringpipe.Queue(ctx=self.ctx)

    def tearDown(self):
        for q in (self.q, self.results):
            q.close()
            q.join_thread()
        super().tearDown()

    def test_producers_consumers(self):
        P, C, N = 3, 3, 2000
        ps = [start(self.ctx, producer, self.q, k, N) for k in range(P)]
        cs = [start(self.ctx, consumer, self.q, self.results) for _ in range(C)]
        for p in ps:
            join(self, p)
        for _ in cs:
            self.q.put(None)
        got = []
        for _ in cs:
            got.extend(self.results.get(timeout=60))
        for c in cs:
            join(self, c)
        self.assertEqual(sorted(got), [(k, i) for k in range(P) for i in range(N)])
        # Each consumer saw each producer's items in order.
        self.assertEqual(len(set(got)), P * N)

    def test_parent_consumes(self):
        P, N = 2, 3000
        ps = [start(self.ctx, producer, self.q, k, N) for k in range(P)]
        got = {k: [] for k in range(P)}
        for _ in range(P * N):
            k, i = self.q.get(timeout=60)
            got[k].append(i)
        for p in ps:
            join(self, p)
        for k in range(P):
            self.assertEqual(got[k], list(range(N)))
        self.assertTrue(self.q.empty())

    def test_flush_at_exit(self):
        # More than the ring holds: the child's feeder thread sends the
        # rest before the child exits.
        n = 60000
        p = start(self.ctx, put_many_and_exit, self.q, n)
        got = [self.q.get(timeout=60) for _ in range(n)]
        self.assertEqual(got, list(range(n)))
        join(self, p)

    def test_child_consumer_parent_producer(self):
        c = start(self.ctx, get_one, self.q, self.results)
        time.sleep(0.1)
        self.q.put({'payload': 1})
        self.assertEqual(self.results.get(timeout=60), {'payload': 1})
        join(self, c)

    def test_pool_initializer(self):
        with self.ctx.Pool(2, initializer=pool_init, initargs=(self.q,)) as pool:
            self.assertEqual(pool.map(pool_task, range(8)), list(range(8)))
        got = sorted(self.q.get(timeout=30) for _ in range(8))
        self.assertEqual(got, [x * 10 for x in range(8)])

    def test_producer_killed_mid_put_of_large_object(self):
        started = self.ctx.Event()
        p = start(self.ctx, put_large_forever, self.q, started, 64 << 20)
        self.assertTrue(started.wait(60))
        time.sleep(0.5)     # streaming, now blocked on the full ring
        os.kill(p.pid, signal.SIGKILL)
        join(self, p, exitcode=-signal.SIGKILL)
        # The queue is not wedged: another producer's item goes through,
        # and the torn large object is never delivered.
        w = start(self.ctx, put_one, self.q, 'after (child)')
        self.assertEqual(self.q.get(timeout=30), 'after (child)')
        join(self, w)
        self.q.put('after (parent)')
        self.assertEqual(self.q.get(timeout=30), 'after (parent)')
        with self.assertRaises(queue.Empty):
            self.q.get(timeout=0.2)

    def test_producer_killed_while_consumer_waits_mid_message(self):
        # A consumer (in a child) is inside the large object when its
        # producer dies; the next item from another producer reaches it.
        ready, started = self.ctx.Event(), self.ctx.Event()
        c = start(self.ctx, get_one, self.q, self.results, ready)
        self.assertTrue(ready.wait(60))
        time.sleep(0.2)                       # blocked in get()
        os.kill(c.pid, signal.SIGSTOP)        # hold it while the ring fills
        try:
            p = start(self.ctx, put_large_forever, self.q, started, 64 << 20)
            self.assertTrue(started.wait(60))
            time.sleep(0.5)
            os.kill(p.pid, signal.SIGKILL)
            join(self, p, exitcode=-signal.SIGKILL)
        finally:
            os.kill(c.pid, signal.SIGCONT)
        time.sleep(0.3)     # the consumer takes the torn chunks and waits
        self.q.put('survivor')
        self.assertEqual(self.results.get(timeout=30), 'survivor')
        join(self, c)


class Fork(_StartMethod, TestCase):
    method = 'fork'

    def test_producer_killed_at_random_points(self):
        # Killed anywhere inside put(): only its own item may be lost; what
        # arrives is whole and in order, and the queue keeps working.
        for round_ in range(5):
            q = ringpipe.Queue(ctx=self.ctx)
            started = self.ctx.Event()
            p = start(self.ctx, put_counting_forever, q, started)
            self.assertTrue(started.wait(30))
            time.sleep(0.05 + 0.03 * round_)
            os.kill(p.pid, signal.SIGKILL)
            join(self, p, exitcode=-signal.SIGKILL)
            got = []
            while True:
                try:
                    got.append(q.get(timeout=0.3))
                except queue.Empty:
                    break
            self.assertEqual(got, list(range(len(got))))
            q.put('alive')
            self.assertEqual(q.get(timeout=10), 'alive')
            q.close()


class Spawn(_StartMethod, TestCase):
    method = 'spawn'


class Forkserver(_StartMethod, TestCase):
    method = 'forkserver'


for _cls in (Fork, Spawn, Forkserver):
    if _cls.method not in START_METHODS:
        unittest.skip('start method %s unavailable' % _cls.method)(_cls)


if __name__ == '__main__':
    unittest.main()
