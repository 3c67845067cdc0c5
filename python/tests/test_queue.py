"""ringpipe.Queue in one process (plus threads): the methods and exceptions
of multiprocessing.Queue, timeouts, and the feeder-thread fallback."""

import pickle
import queue
import threading
import time
import unittest

import ringpipe
from support import TestCase


class QueueAPI(TestCase):

    def setUp(self):
        super().setUp()
        self.q = ringpipe.Queue()

    def tearDown(self):
        if not self.q._closed:
            self.q.close()
        self.q.join_thread()
        super().tearDown()

    def test_fifo(self):
        for i in range(100):
            self.q.put(i)
        self.assertEqual([self.q.get() for _ in range(100)], list(range(100)))

    def test_objects(self):
        objs = [None, 1, 'x', b'y', (1, 2), {'a': [1]}, {1, 2}, 2.5]
        for o in objs:
            self.q.put(o)
        self.assertEqual([self.q.get(timeout=5) for _ in objs], objs)

    def test_nowait(self):
        with self.assertRaises(queue.Empty):
            self.q.get_nowait()
        with self.assertRaises(queue.Empty):
            self.q.get(False)
        with self.assertRaises(ringpipe.Empty):
            self.q.get(block=False)
        self.q.put_nowait('a')
        self.assertEqual(self.q.get_nowait(), 'a')

    def test_get_timeout(self):
        for t in (0.05, 0.3):
            t0 = time.monotonic()
            with self.assertRaises(queue.Empty):
                self.q.get(timeout=t)
            dt = time.monotonic() - t0
            self.assertGreaterEqual(dt, t - 0.002)
            self.assertLess(dt, t + 5)
        with self.assertRaises(queue.Empty):
            self.q.get(True, -1)
        with self.assertRaises(queue.Empty):
            self.q.get(True, 0)

    def test_get_timeout_then_item(self):
        threading.Timer(0.2, self.q.put, ('late',)).start()
        self.assertEqual(self.q.get(timeout=10), 'late')

    def test_qsize_empty_full(self):
        self.assertEqual(self.q.qsize(), 0)
        self.assertTrue(self.q.empty())
        self.assertFalse(self.q.full())
        for i in range(5):
            self.q.put(i)
        self.assertEqual(self.q.qsize(), 5)
        self.assertFalse(self.q.empty())
        self.q.get()
        self.assertEqual(self.q.qsize(), 4)

    def test_many_without_consumer(self):
        # More than the ring holds: put never blocks on an unbounded
        # queue (the rest waits in the feeder thread), order is kept.
        n = 50000
        for i in range(n):
            self.q.put(i)
        self.assertIsNotNone(self.q._thread)
        self.assertEqual(self.q.qsize(), n)
        got = [self.q.get(timeout=10) for _ in range(n)]
        self.assertEqual(got, list(range(n)))
        self.assertTrue(self.q.empty())
        # Once caught up, puts go direct again.
        deadline = time.monotonic() + 10
        while self.q._feed.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        self.q.put('direct')
        self.assertEqual(self.q.get(timeout=5), 'direct')

    def test_large_objects(self):
        big = [b'B' * (3 << 20), list(range(200000)), 'x' * 500000]
        for o in big:
            self.q.put(o)
        for o in big:
            self.assertEqual(self.q.get(timeout=20), o)

    def test_mixed_sizes_keep_order(self):
        items = []
        for i in range(300):
            items.append(b'L' * 300000 if i % 50 == 7 else i)
        for o in items:
            self.q.put(o)
        self.assertEqual([self.q.get(timeout=20) for _ in items], items)

    def test_unpicklable(self):
        with self.assertRaises((pickle.PicklingError, AttributeError, TypeError)):
            self.q.put(lambda: 0)
        self.assertEqual(self.q.qsize(), 0)
        self.q.put('ok')
        self.assertEqual(self.q.get(timeout=5), 'ok')

    def test_close(self):
        self.q.put(1)
        self.q.close()
        with self.assertRaises(ValueError):
            self.q.put(2)
        with self.assertRaises(ValueError):
            self.q.get()
        self.q.close()            # twice is fine
        self.q.join_thread()

    def test_close_without_feeder_leaves_the_pipe_open(self):
        # As multiprocessing: with no feeder thread, close() only says that
        # this process puts no more; the queue can still be asked about.
        self.q.close()
        self.assertTrue(self.q.empty())
        self.assertFalse(self.q._reader.closed)
        self.assertFalse(self.q._writer.closed)

    def test_join_thread_needs_close(self):
        with self.assertRaises(AssertionError):
            self.q.join_thread()

    def test_cancel_join_thread(self):
        q = ringpipe.Queue()
        for i in range(50000):
            q.put(i)
        q.cancel_join_thread()
        q.close()
        q.join_thread()        # returns at once: joining was cancelled

    def test_threads(self):
        N, T = 2000, 4
        out = []
        lock = threading.Lock()

        def producer(k):
            for i in range(N):
                self.q.put((k, i))

        def consumer():
            while True:
                item = self.q.get(timeout=20)
                if item is None:
                    return
                with lock:
                    out.append(item)
        ps = [threading.Thread(target=producer, args=(k,)) for k in range(T)]
        cs = [threading.Thread(target=consumer) for _ in range(T)]
        for t in ps + cs:
            t.start()
        for t in ps:
            t.join(30)
        for _ in cs:
            self.q.put(None)
        for t in cs:
            t.join(30)
            self.assertFalse(t.is_alive())
        self.assertEqual(sorted(out), sorted((k, i) for k in range(T)
                                             for i in range(N)))
        # Per producer, order is kept.
        for k in range(T):
            mine = [i for kk, i in out if kk == k]
            self.assertEqual(len(mine), N)


class BoundedQueue(TestCase):

    def test_full(self):
        q = ringpipe.Queue(2)
        q.put(1)
        q.put(2)
        self.assertTrue(q.full())
        self.assertEqual(q.qsize(), 2)
        with self.assertRaises(queue.Full):
            q.put_nowait(3)
        with self.assertRaises(queue.Full):
            q.put(3, False)
        t0 = time.monotonic()
        with self.assertRaises(ringpipe.Full):
            q.put(3, timeout=0.2)
        dt = time.monotonic() - t0
        self.assertGreaterEqual(dt, 0.19)
        self.assertLess(dt, 5)
        self.assertEqual(q.get(), 1)
        self.assertFalse(q.full())
        q.put(3, timeout=1)
        self.assertEqual([q.get(), q.get()], [2, 3])
        q.close()

    def test_put_blocks_until_get(self):
        q = ringpipe.Queue(1)
        q.put('a')
        threading.Timer(0.2, q.get).start()
        t0 = time.monotonic()
        q.put('b', timeout=10)
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)
        self.assertEqual(q.get(timeout=5), 'b')
        q.close()


class Construction(TestCase):

    def test_capacity(self):
        q = ringpipe.Queue(capacity=8192)
        self.assertGreaterEqual(q._writer._capacity, 8192)
        for i in range(1000):
            q.put(b'x' * 3000)
        for i in range(1000):
            self.assertEqual(q.get(timeout=10), b'x' * 3000)
        q.close()
        q.join_thread()

    def test_pickle_outside_spawning_refused(self):
        q = ringpipe.Queue()
        with self.assertRaises(RuntimeError):
            pickle.dumps(q)
        q.close()


if __name__ == '__main__':
    unittest.main()
