"""Signals: Ctrl-C (KeyboardInterrupt) interrupts a blocked recv / poll /
get / send promptly, and other signals' handlers run without losing or
duplicating messages (EINTR is retried; a message cut by a signal is
resumed)."""

import multiprocessing
import os
import signal
import threading
import time
import unittest

import ringpipe
from support import TestCase, join, kill_later, start

PROMPT = 5.0      # seconds within which an interrupt must land (loaded CI)


def child_sender(w, n, size):
    for i in range(n):
        w.send_bytes(bytes([i % 256]) * size)
    w.close()


def storm(pid, sig, interval):
    while True:
        os.kill(pid, sig)
        time.sleep(interval)


def child_receiver(r, out, n, size, unused):
    unused.close()
    ok = 0
    for i in range(n):
        m = r.recv_bytes()
        if m == bytes([i % 256]) * size:
            ok += 1
    out.send(ok)
    try:
        r.recv_bytes()
        out.send('extra message')
    except EOFError:
        out.send('eof')


class KeyboardInterruptTests(TestCase):

    def setUp(self):
        super().setUp()
        self.old = signal.signal(signal.SIGINT, signal.default_int_handler)

    def tearDown(self):
        signal.signal(signal.SIGINT, self.old)
        super().tearDown()

    def assertInterrupted(self, call, delay=0.3, from_thread=False):
        if from_thread:
            killer = threading.Timer(delay, os.kill,
                                     (os.getpid(), signal.SIGINT))
            killer.start()
        else:
            killer = kill_later(os.getpid(), signal.SIGINT, delay)
        t0 = time.monotonic()
        with self.assertRaises(KeyboardInterrupt):
            call()
        dt = time.monotonic() - t0
        self.assertGreaterEqual(dt, delay * 0.5)
        self.assertLess(dt, delay + PROMPT)
        killer.join(10)

    def test_recv(self):
        a, b = ringpipe.Pipe()
        self.assertInterrupted(b.recv)
        # Still usable afterwards.
        a.send('after')
        self.assertEqual(b.recv(), 'after')
        a.close(), b.close()

    def test_recv_from_thread_signal(self):
        a, b = ringpipe.Pipe()
        self.assertInterrupted(b.recv_bytes, from_thread=True)
        a.close(), b.close()

    def test_recv_bytes_into(self):
        a, b = ringpipe.Pipe()
        self.assertInterrupted(lambda: b.recv_bytes_into(bytearray(10)))
        a.close(), b.close()

    def test_poll(self):
        a, b = ringpipe.Pipe()
        self.assertInterrupted(lambda: b.poll(None))
        self.assertInterrupted(lambda: b.poll(60))
        a.close(), b.close()

    def test_send_blocked_on_full_ring(self):
        r, w = ringpipe.Pipe(False, capacity=4096)
        self.assertInterrupted(lambda: w.send_bytes(b'x' * (1 << 20)))
        # The cut message is dropped by the receiver; the next one arrives.
        got = []
        t = threading.Thread(target=lambda: got.append(r.recv_bytes()))
        t.start()
        w.send_bytes(b'whole')
        t.join(20)
        self.assertEqual(got, [b'whole'])
        r.close(), w.close()

    def test_queue_get(self):
        q = ringpipe.Queue()
        self.assertInterrupted(q.get)
        self.assertInterrupted(lambda: q.get(timeout=60))
        q.put('after')
        self.assertEqual(q.get(timeout=10), 'after')
        q.close()

    def test_queue_put_full(self):
        q = ringpipe.Queue(1)
        q.put(1)
        self.assertInterrupted(lambda: q.put(2))
        self.assertEqual(q.get(timeout=10), 1)
        q.close()


class OtherSignals(TestCase):

    def test_handler_runs_and_recv_continues(self):
        hits = []
        old = signal.signal(signal.SIGUSR1, lambda *a: hits.append(1))
        try:
            a, b = ringpipe.Pipe()
            k = kill_later(os.getpid(), signal.SIGUSR1, 0.2)
            threading.Timer(0.6, a.send, ('late',)).start()
            self.assertEqual(b.recv(), 'late')
            k.join(10)
            self.assertEqual(hits, [1])
            a.close(), b.close()
        finally:
            signal.signal(signal.SIGUSR1, old)

    def _storm(self):
        # SIGUSR2 every half millisecond, from another process.
        hits = []
        old = signal.signal(signal.SIGUSR2, lambda *a: hits.append(1))
        self.stormer = start(multiprocessing.get_context('fork'), storm,
                             os.getpid(), signal.SIGUSR2, 0.0005)
        return hits, old

    def _calm(self, old):
        self.stormer.kill()
        self.stormer.join(10)
        signal.signal(signal.SIGUSR2, old)

    def test_receive_under_signal_storm(self):
        # Messages larger than the ring, cut by signals while received.
        n, size = 300, 20000
        r, w = ringpipe.Pipe(False, capacity=4096)
        p = start(multiprocessing.get_context('fork'), child_sender, w, n, size)
        w.close()
        hits, old = self._storm()
        try:
            for i in range(n):
                self.assertEqual(r.recv_bytes(), bytes([i % 256]) * size)
            with self.assertRaises(EOFError):
                r.recv_bytes()
        finally:
            self._calm(old)
        self.assertGreater(len(hits), 0)
        join(self, p)
        r.close()

    def test_send_under_signal_storm(self):
        n, size = 300, 20000
        r, w = ringpipe.Pipe(False, capacity=4096)
        out_r, out_w = multiprocessing.Pipe(False)
        p = start(multiprocessing.get_context('fork'), child_receiver,
                  r, out_w, n, size, w)
        r.close()
        hits, old = self._storm()
        try:
            for i in range(n):
                w.send_bytes(bytes([i % 256]) * size)
        finally:
            self._calm(old)
        w.close()
        self.assertTrue(out_r.poll(30))
        self.assertEqual(out_r.recv(), n)
        self.assertEqual(out_r.recv(), 'eof')
        join(self, p)


if __name__ == '__main__':
    unittest.main()
