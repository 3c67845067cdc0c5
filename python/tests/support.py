"""Shared helpers for ringpipe's Python tests (not a test module)."""

import multiprocessing
import os
import signal
import time
import unittest

#: Start methods available here.
START_METHODS = [m for m in ('fork', 'spawn', 'forkserver')
                 if m in multiprocessing.get_all_start_methods()]

#: Generous bound for anything that should be quick (the machine may be
#: loaded: tests run in parallel with the C suite).
JOIN_TIMEOUT = 30


def start(ctx, target, *args, **kw):
    p = ctx.Process(target=target, args=args, kwargs=kw, daemon=True)
    p.start()
    return p


def join(testcase, p, timeout=JOIN_TIMEOUT, exitcode=0):
    """Join p within timeout (else kill it and fail); check its exit code."""
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join(5)
        testcase.fail('child %s did not finish within %ss' % (p.name, timeout))
    if exitcode is not None:
        testcase.assertEqual(p.exitcode, exitcode,
                             'child %s exit code' % p.name)


def kill_later(pid, sig, delay):
    """Send sig to pid after delay seconds, from a forked helper process
    (so the target's own threads play no part)."""
    ctx = multiprocessing.get_context('fork')
    p = ctx.Process(target=_kill_after, args=(pid, sig, delay), daemon=True)
    p.start()
    return p


def _kill_after(pid, sig, delay):
    time.sleep(delay)
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class Deadline:
    """with Deadline(testcase, seconds): fail if the block overruns (checked
    by SIGALRM, so that a hung call is interrupted rather than waiting for
    ctest's timeout)."""

    def __init__(self, testcase, seconds):
        self.tc, self.seconds = testcase, seconds

    def _alarm(self, signum, frame):
        raise TimeoutError('test step exceeded %ss' % self.seconds)

    def __enter__(self):
        self.old = signal.signal(signal.SIGALRM, self._alarm)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old)
        return False


class TestCase(unittest.TestCase):
    """Every test gets an overall SIGALRM deadline."""
    TEST_DEADLINE = 60

    def setUp(self):
        self._deadline = Deadline(self, self.TEST_DEADLINE)
        self._deadline.__enter__()

    def tearDown(self):
        self._deadline.__exit__(None, None, None)
