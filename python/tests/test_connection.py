"""ringpipe.Pipe / Connection in one process (plus threads): the API of
multiprocessing.connection.Connection, argument checks and exceptions."""

import array
import multiprocessing
import pickle
import threading
import time
import unittest

import ringpipe
from support import TestCase


class PipeBasics(TestCase):

    def test_duplex_flags(self):
        a, b = ringpipe.Pipe()
        with a, b:
            self.assertIsInstance(a, ringpipe.Connection)
            for c in (a, b):
                self.assertTrue(c.readable)
                self.assertTrue(c.writable)
                self.assertFalse(c.closed)
            a.send('to b')
            b.send('to a')
            self.assertEqual(b.recv(), 'to b')
            self.assertEqual(a.recv(), 'to a')

    def test_simplex_flags(self):
        r, w = ringpipe.Pipe(duplex=False)
        with r, w:
            self.assertEqual((r.readable, r.writable), (True, False))
            self.assertEqual((w.readable, w.writable), (False, True))
            w.send_bytes(b'abc')
            self.assertEqual(r.recv_bytes(), b'abc')

    def test_positional_duplex(self):
        r, w = ringpipe.Pipe(False)
        self.assertFalse(r.writable)
        r.close(), w.close()

    def test_not_constructible(self):
        with self.assertRaises(TypeError):
            ringpipe.Connection()

    def test_objects_roundtrip(self):
        a, b = ringpipe.Pipe()
        objs = [None, 0, -1, 2**100, 1.5, 'text', 'ünïcode', b'', b'bytes',
                bytearray(b'ba'), (1, 2), [1, [2, [3]]], {'k': {'v': 1}},
                {1, 2, 3}, frozenset('ab'), ValueError('x'), range(5),
                complex(1, 2), Ellipsis]
        for o in objs:
            a.send(o)
            got = b.recv()
            if isinstance(o, Exception):
                self.assertEqual((type(got), got.args), (type(o), o.args))
            else:
                self.assertEqual(got, o)
        a.close(), b.close()

    def test_zero_length_message(self):
        a, b = ringpipe.Pipe()
        a.send_bytes(b'')
        a.send_bytes(b'x')
        self.assertTrue(b.poll())
        self.assertEqual(b.recv_bytes(), b'')
        self.assertEqual(b.recv_bytes(), b'x')
        a.close(), b.close()

    def test_sizes(self):
        # Around the internal buffer sizes, and messages larger than the ring.
        a, b = ringpipe.Pipe(capacity=8192)
        sizes = [1, 255, 256, 4095, 4096, 4097, 16383, 16384, 16385, 65536,
                 100_000, 1 << 20, 3 * (1 << 20) + 7, 5]
        got = []
        t = threading.Thread(target=lambda: got.extend(
            b.recv_bytes() for _ in sizes))
        t.start()
        for n in sizes:
            a.send_bytes(bytes([n % 251]) * n)
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertEqual([len(m) for m in got], sizes)
        for n, m in zip(sizes, got):
            self.assertEqual(m, bytes([n % 251]) * n)
        a.close(), b.close()

    def test_large_object_send(self):
        a, b = ringpipe.Pipe()
        big = {'data': b'z' * (5 << 20), 'list': list(range(100000))}
        out = []
        t = threading.Thread(target=lambda: out.append(b.recv()))
        t.start()
        a.send(big)
        t.join(30)
        self.assertEqual(out, [big])
        a.close(), b.close()

    def test_capacity(self):
        a, b = ringpipe.Pipe(capacity=10000)
        self.assertGreaterEqual(a._capacity, 10000)
        a.close(), b.close()
        with self.assertRaises(ValueError):
            ringpipe.Pipe(capacity=-1)

    def test_capacity_over_the_limit_or_not_an_int_says_so(self):
        with self.assertRaisesRegex(ValueError, 'over the limit'):
            ringpipe.Pipe(capacity=1 << 40)
        with self.assertRaisesRegex(TypeError, 'must be an int'):
            ringpipe.Pipe(capacity=2.5)
        with self.assertRaisesRegex(TypeError, 'must be an int'):
            ringpipe.Pipe(capacity='4096')

    def test_repr(self):
        a, b = ringpipe.Pipe(False)
        self.assertIn('fd=', repr(a))
        a.close()
        self.assertIn('closed', repr(a))
        b.close()


class SendBytesArgs(TestCase):

    def setUp(self):
        super().setUp()
        self.a, self.b = ringpipe.Pipe()

    def tearDown(self):
        self.a.close()
        self.b.close()
        super().tearDown()

    def test_offset_size(self):
        self.a.send_bytes(b'0123456789', 2)
        self.assertEqual(self.b.recv_bytes(), b'23456789')
        self.a.send_bytes(b'0123456789', 2, 3)
        self.assertEqual(self.b.recv_bytes(), b'234')
        self.a.send_bytes(b'0123456789', offset=10)
        self.assertEqual(self.b.recv_bytes(), b'')
        self.a.send_bytes(b'0123456789', size=0)
        self.assertEqual(self.b.recv_bytes(), b'')
        self.a.send_bytes(memoryview(b'0123456789')[1:4])
        self.assertEqual(self.b.recv_bytes(), b'123')
        self.a.send_bytes(bytearray(b'ba'))
        self.assertEqual(self.b.recv_bytes(), b'ba')

    def test_itemsize(self):
        # As multiprocessing: offset and size count bytes.
        arr = array.array('i', range(10))
        self.a.send_bytes(arr)
        self.assertEqual(self.b.recv_bytes(), arr.tobytes())
        self.a.send_bytes(arr, 4 * arr.itemsize, 2 * arr.itemsize)
        self.assertEqual(self.b.recv_bytes(), arr[4:6].tobytes())

    def test_bad_offset_size(self):
        cases = [((b'abc', -1), 'offset is negative'),
                 ((b'abc', 4), 'buffer length < offset'),
                 ((b'abc', 0, -1), 'size is negative'),
                 ((b'abc', 1, 3), 'buffer length < offset + size'),
                 ((b'abc', 3, 1), 'buffer length < offset + size')]
        for args, msg in cases:
            with self.subTest(args=args):
                with self.assertRaises(ValueError) as cm:
                    self.a.send_bytes(*args)
                self.assertEqual(str(cm.exception), msg)
        # The same errors as multiprocessing's own connections.
        r, w = multiprocessing.Pipe()
        for args, msg in cases:
            with self.assertRaises(ValueError) as cm:
                w.send_bytes(*args)
            self.assertEqual(str(cm.exception), msg)
        r.close(), w.close()
        self.assertFalse(self.b.poll())

    def test_not_a_buffer(self):
        with self.assertRaises(TypeError):
            self.a.send_bytes('str is not bytes')
        with self.assertRaises(TypeError):
            self.a.send_bytes(12)


class RecvBytes(TestCase):

    def test_maxlength_ok(self):
        a, b = ringpipe.Pipe()
        a.send_bytes(b'12345')
        self.assertEqual(b.recv_bytes(5), b'12345')
        a.send_bytes(b'1' * 50000)
        self.assertEqual(b.recv_bytes(maxlength=50000), b'1' * 50000)
        a.close(), b.close()

    def test_negative_maxlength(self):
        a, b = ringpipe.Pipe()
        with self.assertRaises(ValueError) as cm:
            b.recv_bytes(-1)
        self.assertEqual(str(cm.exception), 'negative maxlength')
        a.close(), b.close()

    def test_bad_message_length_duplex(self):
        # multiprocessing: a duplex connection stops being readable.
        a, b = ringpipe.Pipe()
        a.send_bytes(b'123456')
        with self.assertRaises(OSError) as cm:
            b.recv_bytes(5)
        self.assertEqual(str(cm.exception), 'bad message length')
        self.assertFalse(b.readable)
        self.assertFalse(b.closed)
        with self.assertRaises(OSError) as cm:
            b.recv_bytes()
        self.assertEqual(str(cm.exception), 'connection is write-only')
        b.send('still writable')
        self.assertEqual(a.recv(), 'still writable')
        a.close(), b.close()

    def test_bad_message_length_simplex(self):
        # multiprocessing: a read-only connection is closed.
        r, w = ringpipe.Pipe(False)
        w.send_bytes(b'x' * 100000)
        with self.assertRaises(OSError) as cm:
            r.recv_bytes(99999)
        self.assertEqual(str(cm.exception), 'bad message length')
        self.assertTrue(r.closed)
        w.close()

    def test_recv_bytes_into(self):
        a, b = ringpipe.Pipe()
        buf = bytearray(10)
        a.send_bytes(b'abc')
        self.assertEqual(b.recv_bytes_into(buf), 3)
        self.assertEqual(buf[:3], b'abc')
        a.send_bytes(b'xyz')
        self.assertEqual(b.recv_bytes_into(buf, 7), 3)
        self.assertEqual(bytes(buf), b'abc\0\0\0\0xyz')
        a.send_bytes(b'')
        self.assertEqual(b.recv_bytes_into(buf, 10), 0)
        mv = memoryview(bytearray(4))
        a.send_bytes(b'1234')
        self.assertEqual(b.recv_bytes_into(mv), 4)
        self.assertEqual(mv.tobytes(), b'1234')
        arr = array.array('i', [0, 0])
        a.send_bytes(array.array('i', [7, 8]))
        self.assertEqual(b.recv_bytes_into(arr), 2 * arr.itemsize)
        self.assertEqual(arr.tolist(), [7, 8])
        a.close(), b.close()

    def test_recv_bytes_into_too_short(self):
        # BufferTooShort carries the whole message, which is consumed.
        a, b = ringpipe.Pipe()
        buf = bytearray(4)
        for msg in (b'123456789', b'y' * 200000):
            a.send_bytes(msg)
            a.send_bytes(b'next')
            with self.assertRaises(multiprocessing.BufferTooShort) as cm:
                b.recv_bytes_into(buf)
            self.assertIs(cm.exception.__class__, ringpipe.BufferTooShort)
            self.assertEqual(cm.exception.args[0], msg)
            self.assertEqual(b.recv_bytes_into(buf), 4)
            self.assertEqual(buf, b'next')
        a.send_bytes(b'abc')
        with self.assertRaises(multiprocessing.BufferTooShort) as cm:
            b.recv_bytes_into(buf, 2)
        self.assertEqual(cm.exception.args[0], b'abc')
        a.close(), b.close()

    def test_recv_bytes_into_bad_args(self):
        a, b = ringpipe.Pipe()
        with self.assertRaises(ValueError) as cm:
            b.recv_bytes_into(bytearray(4), -1)
        self.assertEqual(str(cm.exception), 'negative offset')
        with self.assertRaises(ValueError) as cm:
            b.recv_bytes_into(bytearray(4), 5)
        self.assertEqual(str(cm.exception), 'offset too large')
        a.close(), b.close()

    def test_recv_bytes_into_read_only_buffer(self):
        # TypeError as multiprocessing, which loses the message; here it
        # stays queued.  A bad offset is a ValueError first, as there.
        a, b = ringpipe.Pipe()
        a.send_bytes(b'abc')
        for ro in (b'readonly', memoryview(bytearray(8)).toreadonly()):
            with self.assertRaises(TypeError) as cm:
                b.recv_bytes_into(ro)
            self.assertIn('read-write', str(cm.exception))
            with self.assertRaises(ValueError):
                b.recv_bytes_into(ro, 9)
        with self.assertRaises(TypeError):
            b.recv_bytes_into(12)
        self.assertEqual(b.recv_bytes(), b'abc')
        a.close(), b.close()


class PollAndEOF(TestCase):

    def test_poll(self):
        a, b = ringpipe.Pipe()
        self.assertFalse(b.poll())
        self.assertFalse(b.poll(0))
        self.assertFalse(b.poll(-1))
        a.send(1)
        self.assertTrue(b.poll())
        self.assertTrue(b.poll(None))
        self.assertTrue(b.poll(5))
        self.assertEqual(b.recv(), 1)
        self.assertFalse(b.poll())
        a.close(), b.close()

    def test_poll_timeout(self):
        a, b = ringpipe.Pipe()
        for t in (0.05, 0.3):
            t0 = time.monotonic()
            self.assertFalse(b.poll(t))
            dt = time.monotonic() - t0
            self.assertGreaterEqual(dt, t - 0.002)
            self.assertLess(dt, t + 5)
        a.close(), b.close()

    def test_poll_none_waits(self):
        a, b = ringpipe.Pipe()
        threading.Timer(0.2, a.send, ('late',)).start()
        t0 = time.monotonic()
        self.assertTrue(b.poll(None))
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)
        self.assertEqual(b.recv(), 'late')
        a.close(), b.close()

    def test_eof(self):
        a, b = ringpipe.Pipe()
        a.send('last')
        a.close()
        self.assertTrue(b.poll())
        self.assertEqual(b.recv(), 'last')
        self.assertTrue(b.poll())
        self.assertTrue(b.poll(None))
        for f in (b.recv, b.recv_bytes, lambda: b.recv_bytes_into(bytearray(9))):
            with self.assertRaises(EOFError):
                f()
        b.close()

    def test_eof_wakes_blocked_recv(self):
        a, b = ringpipe.Pipe()
        threading.Timer(0.2, a.close).start()
        with self.assertRaises(EOFError):
            b.recv()
        b.close()

    def test_broken_pipe(self):
        r, w = ringpipe.Pipe(False)
        r.close()
        with self.assertRaises(BrokenPipeError):
            w.send_bytes(b'nobody listens')
        with self.assertRaises(BrokenPipeError):
            w.send('nobody')
        w.close()


class ClosedAndDirection(TestCase):

    def test_closed(self):
        a, b = ringpipe.Pipe()
        a.close()
        self.assertTrue(a.closed)
        a.close()           # twice is fine
        calls = [a.send_bytes, a.send]
        for f in calls:
            with self.assertRaises(OSError) as cm:
                f(b'x')
            self.assertEqual(str(cm.exception), 'handle is closed')
        for f in (a.recv, a.recv_bytes, a.poll, a.fileno):
            with self.assertRaises(OSError) as cm:
                f()
            self.assertEqual(str(cm.exception), 'handle is closed')
        with self.assertRaises(OSError):
            a.recv_bytes_into(bytearray(3))
        b.close()

    def test_context_manager(self):
        a, b = ringpipe.Pipe()
        with a as x:
            self.assertIs(x, a)
        self.assertTrue(a.closed)
        with b:
            with self.assertRaises(EOFError):
                b.recv()
        self.assertTrue(b.closed)

    def test_wrong_direction(self):
        r, w = ringpipe.Pipe(False)
        for f in (r.send_bytes, r.send):
            with self.assertRaises(OSError) as cm:
                f(b'x')
            self.assertEqual(str(cm.exception), 'connection is read-only')
        for f in (w.recv, w.recv_bytes, w.poll):
            with self.assertRaises(OSError) as cm:
                f()
            self.assertEqual(str(cm.exception), 'connection is write-only')
        with self.assertRaises(OSError) as cm:
            w.recv_bytes_into(bytearray(3))
        self.assertEqual(str(cm.exception), 'connection is write-only')
        self.assertIsInstance(w.fileno(), int)
        r.close(), w.close()

    def test_fileno(self):
        a, b = ringpipe.Pipe()
        fa, fb = a.fileno(), b.fileno()
        self.assertNotEqual(fa, fb)
        self.assertGreaterEqual(min(fa, fb), 0)
        a.close(), b.close()

    def test_gc_closes(self):
        r, w = ringpipe.Pipe(False)
        del w
        with self.assertRaises(EOFError):
            r.recv()
        r.close()


class Pickling(TestCase):

    def test_unpicklable(self):
        a, b = ringpipe.Pipe()
        with self.assertRaises((pickle.PicklingError, AttributeError, TypeError)):
            a.send(lambda: 0)
        with self.assertRaises(TypeError):
            a.send(threading.Lock())
        a.send('fine afterwards')
        self.assertEqual(b.recv(), 'fine afterwards')
        self.assertFalse(b.poll())
        a.close(), b.close()

    def test_forking_pickler_reducers(self):
        # Registered reducers apply, as with ForkingPickler.dumps.
        class Thing:
            pass

        def reduce_thing(t):
            return (str, ('reduced',))
        multiprocessing.reduction.ForkingPickler.register(Thing, reduce_thing)
        a, b = ringpipe.Pipe()
        a.send(Thing())
        self.assertEqual(b.recv(), 'reduced')
        a.send([Thing(), Thing()])
        self.assertEqual(b.recv(), ['reduced', 'reduced'])
        a.close(), b.close()

    def test_reentrant_send(self):
        # A __reduce__ that itself sends on the connection.
        a, b = ringpipe.Pipe()

        class Sneaky:
            def __reduce__(self):
                a.send('inner')
                return (str, ('outer',))
        a.send(Sneaky())
        self.assertEqual(b.recv(), 'inner')
        self.assertEqual(b.recv(), 'outer')
        a.close(), b.close()

    def test_memo_cleared(self):
        a, b = ringpipe.Pipe()
        s = [1, 2]
        a.send((s, s))
        x, y = b.recv()
        self.assertIs(x, y)
        a.send(s)
        self.assertEqual(b.recv(), [1, 2])
        a.close(), b.close()

    def test_plain_pickle_refused(self):
        a, b = ringpipe.Pipe()
        with self.assertRaises(TypeError):
            pickle.dumps(a)
        a.close(), b.close()


class Threads(TestCase):

    def test_gil_released_while_blocked(self):
        a, b = ringpipe.Pipe()
        got = []
        t = threading.Thread(target=lambda: got.append(b.recv()))
        t.start()
        # The main thread still runs Python code while t is blocked.
        n = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.2:
            n += 1
        self.assertGreater(n, 1000)
        a.send('go')
        t.join(10)
        self.assertEqual(got, ['go'])
        a.close(), b.close()

    def test_concurrent_senders(self):
        r, w = ringpipe.Pipe(False, capacity=16384)
        N, T = 300, 4

        def sender(k):
            for i in range(N):
                w.send_bytes(bytes([k]) * (1000 + 37 * i))
        ts = [threading.Thread(target=sender, args=(k,)) for k in range(T)]
        for t in ts:
            t.start()
        seen = {k: 0 for k in range(T)}
        for _ in range(N * T):
            m = r.recv_bytes()
            k = m[0]
            self.assertEqual(m, bytes([k]) * (1000 + 37 * seen[k]))
            seen[k] += 1
        for t in ts:
            t.join(10)
        self.assertEqual(seen, {k: N for k in range(T)})
        r.close(), w.close()

    def test_concurrent_receivers(self):
        r, w = ringpipe.Pipe(False)
        N, T = 2000, 4
        out = []
        lock = threading.Lock()

        def receiver():
            while True:
                try:
                    m = r.recv()
                except EOFError:
                    return
                with lock:
                    out.append(m)
        ts = [threading.Thread(target=receiver) for _ in range(T)]
        for t in ts:
            t.start()
        for i in range(N):
            w.send(i)
        w.close()
        for t in ts:
            t.join(20)
            self.assertFalse(t.is_alive())
        self.assertEqual(sorted(out), list(range(N)))
        r.close()

    def test_close_while_blocked(self):
        # close() from another thread while recv is blocked: the
        # connection reads as closed at once; the blocked call finishes
        # when its message comes, and the ends are then released.
        a, b = ringpipe.Pipe()
        res = []

        def rx():
            try:
                res.append(b.recv())
            except Exception as e:      # pragma: no cover - reported below
                res.append(e)
        t = threading.Thread(target=rx)
        t.start()
        time.sleep(0.1)
        b.close()
        self.assertTrue(b.closed)
        with self.assertRaises(OSError):
            b.recv()
        a.send('m')
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertEqual(res, ['m'])
        # b is now really closed: a sees the end of the stream.
        with self.assertRaises(EOFError):
            a.recv()
        a.close()


if __name__ == '__main__':
    unittest.main()
