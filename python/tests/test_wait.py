"""multiprocessing.connection.wait() and selectors over ringpipe connections,
mixed with sockets and multiprocessing's own connections: readiness must be
exact (readable exactly when a message or the end of the stream is ready)."""

import multiprocessing
import selectors
import socket
import threading
import time
import unittest
from multiprocessing.connection import wait

import ringpipe
from support import TestCase, join, start


def child_send_later(w, delay, payload):
    time.sleep(delay)
    w.send(payload)


def child_consume_one(r):
    r.recv()


class Wait(TestCase):

    def setUp(self):
        super().setUp()
        self.ra, self.rb = ringpipe.Pipe()
        self.mr, self.mw = multiprocessing.Pipe()
        self.s1, self.s2 = socket.socketpair()

    def tearDown(self):
        for c in (self.ra, self.rb, self.mr, self.mw, self.s1, self.s2):
            c.close()
        super().tearDown()

    def objs(self):
        return [self.rb, self.mw, self.s2]

    def test_nothing_ready(self):
        t0 = time.monotonic()
        self.assertEqual(wait(self.objs(), 0.2), [])
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertEqual(wait(self.objs(), 0), [])

    def test_each_alone(self):
        self.ra.send('r')
        self.assertEqual(wait(self.objs(), 5), [self.rb])
        self.assertEqual(self.rb.recv(), 'r')
        self.assertEqual(wait(self.objs(), 0.05), [])
        self.mr.send('m')
        self.assertEqual(wait(self.objs(), 5), [self.mw])
        self.mw.recv()
        self.s1.send(b's')
        self.assertEqual(wait(self.objs(), 5), [self.s2])
        self.s2.recv(1)
        self.assertEqual(wait(self.objs(), 0.05), [])

    def test_all_ready(self):
        self.ra.send_bytes(b'1')
        self.mr.send_bytes(b'2')
        self.s1.send(b'3')
        got = wait(self.objs(), 5)
        self.assertEqual(set(got), set(self.objs()))

    def test_ready_until_drained(self):
        for i in range(3):
            self.ra.send(i)
        for i in range(3):
            self.assertEqual(wait([self.rb], 5), [self.rb])
            self.assertEqual(self.rb.recv(), i)
        self.assertEqual(wait([self.rb], 0.1), [])

    def test_wakes_on_message_from_thread(self):
        threading.Timer(0.2, self.ra.send, ('late',)).start()
        t0 = time.monotonic()
        self.assertEqual(wait(self.objs(), 10), [self.rb])
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)
        self.assertEqual(self.rb.recv(), 'late')

    def test_wakes_on_message_from_process(self):
        ctx = multiprocessing.get_context('fork')
        p = start(ctx, child_send_later, self.ra, 0.2, 'from child')
        self.assertEqual(wait(self.objs(), 20), [self.rb])
        self.assertEqual(self.rb.recv(), 'from child')
        join(self, p)

    def test_eof_is_ready(self):
        r, w = ringpipe.Pipe(False)
        self.assertEqual(wait([r], 0.05), [])
        threading.Timer(0.1, w.close).start()
        self.assertEqual(wait([r, self.s2], 10), [r])
        with self.assertRaises(EOFError):
            r.recv()
        r.close()

    def test_no_stale_readiness(self):
        # A message taken by another process leaves no false readiness.
        r, w = ringpipe.Pipe(False)
        r.fileno()
        w.send('taken elsewhere')
        ctx = multiprocessing.get_context('fork')
        p = start(ctx, child_consume_one, r)
        join(self, p)
        self.assertEqual(wait([r], 0.1), [])
        w.send('mine')
        self.assertEqual(wait([r], 5), [r])
        self.assertEqual(r.recv(), 'mine')
        r.close(), w.close()

    def test_selectors(self):
        sel = selectors.DefaultSelector()
        sel.register(self.rb, selectors.EVENT_READ, 'rb')
        sel.register(self.s2, selectors.EVENT_READ, 's2')
        self.assertEqual(sel.select(0.05), [])
        self.ra.send_bytes(b'x')
        ev = sel.select(5)
        self.assertEqual([k.data for k, _ in ev], ['rb'])
        self.rb.recv_bytes()
        self.assertEqual(sel.select(0.05), [])
        sel.close()

    def test_many_messages_interleaved(self):
        # Readiness stays exact over many rounds of send / wait / recv.
        for i in range(500):
            if i % 3 == 0:
                self.ra.send(i)
                src = self.rb
            elif i % 3 == 1:
                self.mr.send(i)
                src = self.mw
            else:
                self.s1.send(b'x')
                src = self.s2
            self.assertEqual(wait(self.objs(), 5), [src])
            if src is self.s2:
                src.recv(1)
            else:
                self.assertEqual(src.recv(), i)
            self.assertEqual(wait(self.objs(), 0), [])

    def test_queue_reader_in_wait(self):
        q = ringpipe.Queue()
        self.assertEqual(wait([q._reader, self.s2], 0.05), [])
        q.put('item')
        self.assertEqual(wait([q._reader, self.s2], 5), [q._reader])
        self.assertEqual(q.get(), 'item')
        q.close()


if __name__ == '__main__':
    unittest.main()
