"""ringpipe.Pipe / ringpipe.Queue against multiprocessing's, in one run.

Usage::

    python -m ringpipe.bench [--quick] [--json | --tsv] [--runs N]

Tests (each in fresh processes: a sender and a receiver, or a pinger and
an echoer, forked for that test alone):

=========  ==========  ==============================================
test       unit        what
=========  ==========  ==============================================
msgrate    msg/s       send_bytes / recv_bytes of 64-byte messages
stream     GB/s        send_bytes / recv_bytes of 1 MiB messages
objrate    msg/s       send / recv of a small tuple (pickled)
rtt-p50    us          64-byte round trip (send_bytes, recv_bytes)
queue      msg/s       Queue.put / Queue.get of small objects
=========  ==========  ==============================================

Rates are measured by the receiver over the messages after a warm-up.
Each figure is the median of ``--runs`` runs (default 5), the runs of the
two sides interleaved.  The table shows each pair side by side with
ringpipe's speed-up (for round trips: multiprocessing's time divided by
ringpipe's).  With
``--json`` the results are printed as
``{"results": [{"mechanism", "test", "size", "value", "unit", ...}]}``
with mechanism ``ringpipe-python`` / ``mp-pipe`` / ``ringpipe-queue`` /
``mp-queue``; the table then goes to standard error.
"""

import argparse
import json
import multiprocessing
import multiprocessing.connection
import os
import statistics
import sys
import time

import ringpipe

SMALL_TUPLE = (12345, 'task', 3.25, None, True)
SMALL_OBJ = ('job', 42, 0.5)

# Start children by fork when there is fork: fast, and nothing to pickle.
try:
    _CTX = multiprocessing.get_context('fork')
except ValueError:
    _CTX = multiprocessing.get_context()


def _make_pipe(mech):
    if mech == 'ringpipe-python':
        return ringpipe.Pipe(duplex=False)
    return multiprocessing.Pipe(duplex=False)


def _make_duplex(mech):
    if mech == 'ringpipe-python':
        return ringpipe.Pipe(duplex=True)
    return multiprocessing.Pipe(duplex=True)


def _make_queue(mech):
    if mech == 'ringpipe-queue':
        return ringpipe.Queue(ctx=_CTX)
    return _CTX.Queue()


# ---- children --------------------------------------------------------------

def _bytes_sender(w, size, total):
    msg = b'x' * size
    send = w.send_bytes
    for _ in range(total):
        send(msg)
    w.close()


def _receiver(r, objects, warm, n, report):
    """Receive warm then n messages (objects, or bytes); report the time of n."""
    recv = r.recv if objects else r.recv_bytes
    for _ in range(warm):
        recv()
    t0 = time.perf_counter()
    for _ in range(n):
        recv()
    report.send(time.perf_counter() - t0)


def _obj_sender(w, total):
    send = w.send
    obj = SMALL_TUPLE
    for _ in range(total):
        send(obj)
    w.close()


def _echo(c, total):
    send, recv = c.send_bytes, c.recv_bytes
    for _ in range(total):
        send(recv())


def _pinger(c, warm, n, report):
    send, recv = c.send_bytes, c.recv_bytes
    msg = b'p' * 64
    for _ in range(warm):
        send(msg)
        recv()
    clock = time.perf_counter_ns
    samples = [0] * n
    for i in range(n):
        t = clock()
        send(msg)
        recv()
        samples[i] = clock() - t
    report.send(statistics.median(samples) / 1000.0)


def _producer(q, total):
    put = q.put
    obj = SMALL_OBJ
    for _ in range(total):
        put(obj)


def _consumer(q, warm, n, report):
    get = q.get
    for _ in range(warm):
        get()
    t0 = time.perf_counter()
    for _ in range(n):
        get()
    report.send(time.perf_counter() - t0)


# ---- one measurement --------------------------------------------------------

def _run(procs, report_r, timeout=300):
    for p in procs:
        p.start()
    try:
        if not report_r.poll(timeout):
            raise RuntimeError('benchmark child did not report in %ds' % timeout)
        value = report_r.recv()
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join()
    return value


def measure(mech, test, quick, scale=None):
    """One run of `test` over `mech`: (value, unit, size)."""
    if scale is None:
        scale = 0.2 if quick else 1.0
    rep_r, rep_w = multiprocessing.Pipe(duplex=False)
    P = _CTX.Process
    if test == 'msgrate':
        n, warm, size = max(int(500_000 * scale), 10), 5000, 64
        r, w = _make_pipe(mech)
        procs = [P(target=_receiver, args=(r, False, warm, n, rep_w)),
                 P(target=_bytes_sender, args=(w, size, warm + n))]
        secs = _run(procs, rep_r)
        r.close(), w.close()
        return n / secs, 'msg/s', size
    if test == 'stream':
        n, warm, size = max(int(2000 * scale), 2), 50, 1 << 20
        r, w = _make_pipe(mech)
        procs = [P(target=_receiver, args=(r, False, warm, n, rep_w)),
                 P(target=_bytes_sender, args=(w, size, warm + n))]
        secs = _run(procs, rep_r)
        r.close(), w.close()
        return n * size / secs / 1e9, 'GB/s', size
    if test == 'objrate':
        n, warm = max(int(300_000 * scale), 10), 5000
        size = len(multiprocessing.reduction.ForkingPickler.dumps(SMALL_TUPLE))
        r, w = _make_pipe(mech)
        procs = [P(target=_receiver, args=(r, True, warm, n, rep_w)),
                 P(target=_obj_sender, args=(w, warm + n))]
        secs = _run(procs, rep_r)
        r.close(), w.close()
        return n / secs, 'msg/s', size
    if test == 'rtt-p50':
        n, warm, size = max(int(100_000 * scale), 10), 2000, 64
        a, b = _make_duplex(mech)
        procs = [P(target=_echo, args=(b, warm + n)),
                 P(target=_pinger, args=(a, warm, n, rep_w))]
        us = _run(procs, rep_r)
        a.close(), b.close()
        return us, 'us', size
    if test == 'queue':
        n, warm = max(int(300_000 * scale), 10), 5000
        size = len(multiprocessing.reduction.ForkingPickler.dumps(SMALL_OBJ))
        q = _make_queue(mech)
        procs = [P(target=_consumer, args=(q, warm, n, rep_w)),
                 P(target=_producer, args=(q, warm + n))]
        secs = _run(procs, rep_r)
        return n / secs, 'msg/s', size
    raise ValueError(test)


PAIRS = [
    # (test, label, ringpipe mechanism, multiprocessing mechanism)
    ('msgrate', 'send_bytes 64 B', 'ringpipe-python', 'mp-pipe'),
    ('stream', 'send_bytes 1 MiB', 'ringpipe-python', 'mp-pipe'),
    ('objrate', 'send/recv tuple', 'ringpipe-python', 'mp-pipe'),
    ('rtt-p50', 'round trip 64 B', 'ringpipe-python', 'mp-pipe'),
    ('queue', 'Queue put/get', 'ringpipe-queue', 'mp-queue'),
]


def _fmt(v, unit):
    if unit == 'msg/s':
        return '{:,.0f} {}'.format(v, unit)
    return '{:.2f} {}'.format(v, unit)


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m ringpipe.bench',
                                 description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='short runs (seconds)')
    fmt = ap.add_mutually_exclusive_group()
    fmt.add_argument('--json', action='store_true', help='JSON on stdout')
    fmt.add_argument('--tsv', action='store_true',
                     help='one tab-separated line per result on stdout: '
                          'mechanism test size value unit min max runs '
                          '(what `ringpipe bench` reads)')
    ap.add_argument('--runs', type=int, default=None,
                    help='runs per measurement (default 5, or 1 with --quick)')
    ap.add_argument('--only', action='append', default=None,
                    choices=[p[0] for p in PAIRS],
                    help='run only this test (repeatable)')
    ap.add_argument('--scale', type=float, default=None,
                    help='message counts relative to a full run (for tests)')
    args = ap.parse_args(argv)
    runs = args.runs or (1 if args.quick else 5)
    if runs < 1:
        ap.error('--runs must be at least 1')
    out = sys.stderr if args.json or args.tsv else sys.stdout

    results = []
    rows = []
    print('ringpipe %s Python benchmark (%s, median of %d run%s each, '
          'interleaved; python %s)'
          % (ringpipe.__version__, 'quick' if args.quick else 'full', runs,
             '' if runs == 1 else 's', sys.version.split()[0]), file=out)
    for test, label, rmech, mmech in PAIRS:
        if args.only and test not in args.only:
            continue
        # Run 1 of each side, then run 2 of each, ...: both sides of the
        # ratio see the same machine at the same time.
        vals = {rmech: [], mmech: []}
        for _ in range(runs):
            for mech in (rmech, mmech):
                v, unit, size = measure(mech, test, args.quick, args.scale)
                vals[mech].append(v)
        med = {}
        for mech in (rmech, mmech):
            med[mech] = statistics.median(vals[mech])
            results.append({'mechanism': mech, 'test': test, 'size': size,
                            'value': round(med[mech], 3), 'unit': unit,
                            'min': round(min(vals[mech]), 3),
                            'max': round(max(vals[mech]), 3), 'runs': runs})
        ratio = (med[mmech] / med[rmech] if unit == 'us'
                 else med[rmech] / med[mmech])
        rows.append((label, _fmt(med[rmech], unit), _fmt(med[mmech], unit),
                     '%.1fx' % ratio))
        out.flush()

    head = ('test', 'ringpipe', 'multiprocessing', 'speed-up')
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    line = '  '.join('%-*s' % (widths[0], head[0]) if i == 0 else
                     '%*s' % (widths[i], head[i]) for i in range(4))
    print(line, file=out)
    print('-' * len(line), file=out)
    for r in rows:
        print('  '.join('%-*s' % (widths[0], r[0]) if i == 0 else
                        '%*s' % (widths[i], r[i]) for i in range(4)), file=out)
    if args.json:
        json.dump({'results': results}, sys.stdout, indent=1)
        print()
    if args.tsv:
        for r in results:
            print('\t'.join(str(r[k]) for k in ('mechanism', 'test', 'size', 'value',
                                                'unit', 'min', 'max', 'runs')))
    return 0


if __name__ == '__main__':
    sys.exit(main())
