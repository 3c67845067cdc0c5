"""ringpipe connections handed to child processes under the fork, spawn and
forkserver start methods, sent over connections, and used by Pool
initializers; EOF when a peer process exits or is killed."""

import multiprocessing
import os
import signal
import time
import unittest

import ringpipe
from support import START_METHODS, TestCase, join, start


# ---- children (module level: spawn and forkserver import them) ----

def child_echo(conn, unused=None):
    # Under fork the child inherits every end, the parent's too, exactly as
    # with descriptors: close the ones it does not use, or EOF never comes.
    if unused is not None:
        unused.close()
    while True:
        try:
            obj = conn.recv()
        except EOFError:
            break
        conn.send(('echo', obj))
    conn.close()


def child_send_pid(w):
    w.send(os.getpid())
    w.send_bytes(b'x' * 300000)
    w.close()


def child_recv_until_eof(r, out, unused=None):
    if unused is not None:
        unused.close()
    n = 0
    try:
        while True:
            r.recv_bytes()
            n += 1
    except EOFError:
        out.send(('eof', n))


def child_sum(r, out, unused=None):
    if unused is not None:
        unused.close()
    total = 0
    while True:
        x = r.recv()
        if x is None:
            break
        total += x
    out.send(total)


def child_recv_conn(carrier):
    # A connection arrives as a message (rebuilt via resource_sharer).
    conn = carrier.recv()
    conn.send(('via-message', os.getpid()))
    conn.close()


def child_block_forever(w, ready):
    ready.send('ready')
    w.send_bytes(b'before')
    time.sleep(60)


_pool_conn = None


def pool_init(conn):
    global _pool_conn
    _pool_conn = conn


def pool_task(x):
    _pool_conn.send((os.getpid(), x))
    return x * 2


def child_fileno_wait(conn, out):
    from multiprocessing.connection import wait
    ready = wait([conn], 20)
    out.send(ready == [conn] and conn.recv())


def child_take_one(r, go):
    # Take the next message from a read end the parent polls too.
    go.recv()
    r.recv()
    go.send('taken')


class _StartMethod:
    method = None

    def setUp(self):
        super().setUp()
        self.ctx = multiprocessing.get_context(self.method)

    def test_fileno_not_readable_after_a_child_takes_the_message(self):
        # The child shares the read end; the parent asks for its fileno
        # only after starting it.  Once the child has taken the message,
        # the parent's descriptor must not poll readable (it did, and a
        # select-then-recv loop blocked: 2026-11-29 review).
        import select
        r, w = ringpipe.Pipe(False)
        go_parent, go_child = ringpipe.Pipe()
        p = start(self.ctx, child_take_one, r, go_child)
        fd = r.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        w.send('x')
        self.assertEqual(len(poller.poll(5000)), 1)
        go_parent.send('go')
        self.assertEqual(go_parent.recv(), 'taken')
        self.assertEqual(poller.poll(100), [])
        self.assertFalse(r.poll())
        join(self, p)

    def test_duplex_echo(self):
        a, b = ringpipe.Pipe()
        p = start(self.ctx, child_echo, b, a)
        b.close()
        for obj in [1, 'two', (3, [4]), b'5' * 100000, {'six': 6}]:
            a.send(obj)
            self.assertEqual(a.recv(), ('echo', obj))
        a.close()           # child sees EOF and exits
        join(self, p)

    def test_simplex_reader_in_child(self):
        r, w = ringpipe.Pipe(False)
        out_r, out_w = multiprocessing.Pipe(False)
        p = start(self.ctx, child_recv_until_eof, r, out_w, w)
        r.close()
        for i in range(100):
            w.send_bytes(b'm' * i)
        w.close()
        self.assertTrue(out_r.poll(30))
        self.assertEqual(out_r.recv(), ('eof', 100))
        join(self, p)

    def test_simplex_writer_in_child(self):
        r, w = ringpipe.Pipe(False)
        p = start(self.ctx, child_send_pid, w)
        w.close()
        self.assertEqual(r.recv(), p.pid)
        self.assertEqual(r.recv_bytes(), b'x' * 300000)
        with self.assertRaises(EOFError):
            r.recv()
        join(self, p)
        r.close()

    def test_both_ends_to_children(self):
        r, w = ringpipe.Pipe(False)
        out_r, out_w = multiprocessing.Pipe(False)
        p1 = start(self.ctx, child_sum, r, out_w, w)
        p2 = start(self.ctx, child_echo_sender, w)
        r.close(), w.close()
        self.assertTrue(out_r.poll(30))
        self.assertEqual(out_r.recv(), sum(range(1000)))
        join(self, p1)
        join(self, p2)

    def test_killed_writer_gives_eof(self):
        r, w = ringpipe.Pipe(False)
        ready_r, ready_w = multiprocessing.Pipe(False)
        p = start(self.ctx, child_block_forever, w, ready_w)
        w.close()
        self.assertTrue(ready_r.poll(30))
        ready_r.recv()
        self.assertEqual(r.recv_bytes(), b'before')
        os.kill(p.pid, signal.SIGKILL)
        with self.assertRaises(EOFError):
            r.recv()
        join(self, p, exitcode=-signal.SIGKILL)
        r.close()

    def test_connection_sent_over_connection(self):
        carrier_a, carrier_b = ringpipe.Pipe()
        p = start(self.ctx, child_recv_conn, carrier_b)
        a, b = ringpipe.Pipe()
        carrier_a.send(b)
        b.close()
        self.assertEqual(a.recv(), ('via-message', p.pid))
        with self.assertRaises(EOFError):
            a.recv()
        join(self, p)
        a.close(), carrier_a.close(), carrier_b.close()

    def test_pool_initializer(self):
        r, w = ringpipe.Pipe(False)
        with self.ctx.Pool(2, initializer=pool_init, initargs=(w,)) as pool:
            res = pool.map_async(pool_task, range(10)).get(30)
        self.assertEqual(res, [x * 2 for x in range(10)])
        got = sorted(r.recv()[1] for _ in range(10))
        self.assertEqual(got, list(range(10)))
        w.close(), r.close()

    def test_wait_in_child(self):
        a, b = ringpipe.Pipe()
        out_r, out_w = multiprocessing.Pipe(False)
        p = start(self.ctx, child_fileno_wait, b, out_w)
        time.sleep(0.2)
        a.send('hello')
        self.assertTrue(out_r.poll(30))
        self.assertEqual(out_r.recv(), 'hello')
        join(self, p)
        a.close(), b.close()


def child_echo_sender(w):
    for i in range(1000):
        w.send(i)
    w.send(None)
    w.close()


class Fork(_StartMethod, TestCase):
    method = 'fork'


class Spawn(_StartMethod, TestCase):
    method = 'spawn'


class Forkserver(_StartMethod, TestCase):
    method = 'forkserver'


for _cls in (Fork, Spawn, Forkserver):
    if _cls.method not in START_METHODS:
        unittest.skip('start method %s unavailable' % _cls.method)(_cls)


class Inheritance(TestCase):

    def test_descriptors_not_inheritable(self):
        # PEP 446: a connection rebuilt in a child is close-on-exec too.
        a, b = ringpipe.Pipe()
        rtok, wtok = a._export()
        for tok in (rtok, wtok):
            for fd in tok.split(':')[2:]:
                if fd != '-1':
                    self.assertFalse(os.get_inheritable(int(fd)))
        a.close(), b.close()

    def test_export_closed(self):
        a, b = ringpipe.Pipe()
        a.close()
        with self.assertRaises(OSError):
            a._export()
        b.close()


if __name__ == '__main__':
    unittest.main()
