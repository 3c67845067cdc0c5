#!/usr/bin/env python3
"""Turn `ringpipe bench --json` output into docs/bench.md and docs/bench.svg.

    python3 scripts/bench_report.py [--json build/bench.json] [--log build/bench.log]
        [--command "ringpipe bench --json"] [--md docs/bench.md] [--svg docs/bench.svg]

The markdown holds the command, date, machine, one table with ratios against
kernel-pipe (and kernel-pipe-enlarged for 1 MiB rows), the memcpy limit, and
the targets of issue 3.  The chart is drawn by gnuplot (scripts/bench_chart.gp)
when it is installed; otherwise the script says how to install it.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys

TEST_ORDER = ["stream", "msgrate", "rtt-p50", "rtt-p99", "rtt-sleeping", "idle-cpu",
              "writers-1", "writers-2", "writers-4", "writers-8", "capacity", "memory"]
MECH_ORDER = ["kernel-pipe", "kernel-pipe-enlarged", "unix-socket", "posix-mq",
              "ringpipe", "ringpipe-zerocopy", "bare-ring", "memcpy", "kernel-pipe-framed",
              "ringpipe-conn"]
# Message mechanisms: their "vs kernel-pipe" column compares with kernel-pipe-framed.
MSG_MECHS = ("ringpipe-conn", "kernel-pipe-framed")
# Measured by `python -m ringpipe.bench`: each compares with multiprocessing's.
PY_BASE = {"ringpipe-python": "mp-pipe", "mp-pipe": "mp-pipe",
           "ringpipe-queue": "mp-queue", "mp-queue": "mp-queue"}
PY_TESTS = ["msgrate", "stream", "objrate", "rtt-p50", "queue"]
MIB = 1 << 20
KIB = 1 << 10
BIG = MIB

# (what, mech, test, size, cap, base mech or None, base test, base cap, goal, at_most)
TARGETS = [
    ("stream 64 KiB, 64 KiB capacity, vs kernel-pipe", "ringpipe", "stream", 64 * KIB, 64 * KIB,
     "kernel-pipe", "stream", 64 * KIB, 5, False),
    ("stream 64 KiB, 1 MiB capacity, vs kernel-pipe-enlarged", "ringpipe", "stream", 64 * KIB, BIG,
     "kernel-pipe-enlarged", "stream", BIG, 4, False),
    ("zero-copy stream 64 KiB writes at 1 MiB, fraction of memcpy in cache", "ringpipe-zerocopy",
     "stream", 64 * KIB, BIG, "memcpy", "stream", MIB, 0.5, False),
    ("stream 64 B vs kernel-pipe", "ringpipe", "stream", 64, 64 * KIB,
     "kernel-pipe", "stream", 64 * KIB, 20, False),
    ("msgrate 64 B vs kernel-pipe", "ringpipe", "msgrate", 64, 64 * KIB,
     "kernel-pipe", "msgrate", 64 * KIB, 20, False),
    ("rtt-p50 (µs)", "ringpipe", "rtt-p50", 64, 64 * KIB, None, None, None, 1, True),
    ("rtt-p99 (µs)", "ringpipe", "rtt-p99", 64, 64 * KIB, None, None, None, 5, True),
    ("rtt-sleeping, time vs kernel-pipe", "ringpipe", "rtt-sleeping", 64, 64 * KIB,
     "kernel-pipe", "rtt-sleeping", 64 * KIB, 1.1, True),
    ("idle-cpu (%)", "ringpipe", "idle-cpu", 0, 64 * KIB, None, None, None, 1, True),
    ("writers-8 vs writers-1 (ringpipe)", "ringpipe", "writers-8", 4 * KIB, 64 * KIB,
     "ringpipe", "writers-1", 64 * KIB, 1, False),
    # issue 4: messages, both sides at their default capacity (64 KiB)
    ("ringpipe-conn msgrate 64 B vs kernel-pipe-framed", "ringpipe-conn", "msgrate", 64, 64 * KIB,
     "kernel-pipe-framed", "msgrate", 64 * KIB, 10, False),
    ("ringpipe-conn stream 1 MiB vs kernel-pipe-framed", "ringpipe-conn", "stream", MIB, 64 * KIB,
     "kernel-pipe-framed", "stream", 64 * KIB, 3, False),
    # issue 6: Python, against multiprocessing in the same run (size None: any)
    ("python send_bytes 64 B vs multiprocessing.Pipe", "ringpipe-python", "msgrate", 64, None,
     "mp-pipe", "msgrate", None, 5, False),
    ("python send_bytes 1 MiB vs multiprocessing.Pipe", "ringpipe-python", "stream", MIB, None,
     "mp-pipe", "stream", None, 3, False),
    ("python send/recv small tuple vs multiprocessing.Pipe", "ringpipe-python", "objrate", None,
     None, "mp-pipe", "objrate", None, 2, False),
    ("python round trip, time vs multiprocessing.Pipe", "ringpipe-python", "rtt-p50", 64, None,
     "mp-pipe", "rtt-p50", None, 0.05, True),
    ("python Queue put/get vs multiprocessing.Queue", "ringpipe-queue", "queue", None, None,
     "mp-queue", "queue", None, 3, False),
]


def fmt_size(n):
    if n >= MIB and n % MIB == 0:
        return "%d MiB" % (n // MIB)
    if n >= KIB and n % KIB == 0:
        return "%d KiB" % (n // KIB)
    return "%d B" % n


def fmt_val(v, unit):
    if unit == "msg/s":
        return "%.2fM" % (v / 1e6) if v >= 1e6 else "%.0fk" % (v / 1e3)
    if unit == "%":
        return "%.4f" % v
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    if v >= 1:
        return "%.2f" % v
    return "%.3f" % v


def lower_is_better(unit):
    return unit in ("us", "%", "KiB")


def ratio(r, base):
    """Times better than base (higher is better whatever the unit)."""
    if base is None:
        return "–"
    if r is base:
        return "1"
    if base["value"] <= 0 or r["value"] <= 0:
        return "–"
    x = base["value"] / r["value"] if lower_is_better(r["unit"]) else r["value"] / base["value"]
    return ("%.0f×" if x >= 10 else "%.2f×") % x


def find(results, mech, test, size, cap=None):
    for r in results:
        if (r["mechanism"] == mech and r["test"] == test
                and (size is None or r["size"] == size)
                and (cap is None or r.get("capacity", 0) == cap)):
            return r
    return None


def sort_key(r):
    t = TEST_ORDER.index(r["test"]) if r["test"] in TEST_ORDER else len(TEST_ORDER)
    m = MECH_ORDER.index(r["mechanism"]) if r["mechanism"] in MECH_ORDER else len(MECH_ORDER)
    return (t, r["size"], m, r.get("capacity", 0))


def machine():
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    # The model name alone does not tell hosts apart ("AMD EPYC" has named
    # two of very different speed here): add family and model, and the
    # hypervisor, as lscpu reports it.
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if not k:
                    break           # the first CPU's block is enough
                info.setdefault(k, v.strip())
    except OSError:
        pass
    model = info.get("model name", "unknown CPU")
    if "cpu family" in info and "model" in info:
        model += " (family %s, model %s)" % (info["cpu family"], info["model"])
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Hypervisor vendor:"):
                model += ", %s guest" % line.split(":", 1)[1].strip()
    except OSError:
        pass
    return nproc, model, platform.system() + " " + platform.release()


def write_capacity_dat(results, path):
    """Data file for gnuplot: GB/s by capacity, ringpipe and the kernel pipe."""
    caps = sorted({r["capacity"] for r in results if r["test"] == "capacity"})
    with open(path, "w") as f:
        f.write("capacity ringpipe kernel-pipe-same-capacity\n")
        for cap in caps:
            row = ['"%s"' % fmt_size(cap)]
            for mech in ("ringpipe", "kernel-pipe-enlarged"):
                r = find(results, mech, "capacity", 64 * KIB, cap)
                row.append("%g" % r["value"] if r else "NaN")
            f.write(" ".join(row) + "\n")
    return bool(caps)


def write_dat(results, path_stream, path_rtt):
    """Data files for gnuplot: one row per stream write size, one per latency test."""
    cols = [("kernel-pipe", 64 * KIB), ("kernel-pipe-enlarged", BIG), ("unix-socket", 0),
            ("ringpipe", 64 * KIB), ("ringpipe", BIG),
            ("ringpipe-zerocopy", 64 * KIB), ("ringpipe-zerocopy", BIG)]
    titles = ["kernel-pipe", "kernel-pipe-1MiB", "unix-socket", "ringpipe",
              "ringpipe-1MiB", "ringpipe-zerocopy", "ringpipe-zerocopy-1MiB"]
    with open(path_stream, "w") as f:
        f.write("size " + " ".join(titles) + "\n")
        for size in (64, 4 * KIB, 64 * KIB, MIB):
            row = ['"%s"' % fmt_size(size)]
            for mech, cap in cols:
                r = find(results, mech, "stream", size, cap if mech != "unix-socket" else None)
                row.append("%g" % r["value"] if r else "NaN")
            f.write(" ".join(row) + "\n")
    mechs = ["kernel-pipe", "unix-socket", "posix-mq", "ringpipe", "ringpipe-zerocopy"]
    with open(path_rtt, "w") as f:
        f.write("test " + " ".join(mechs) + "\n")
        for test in ("rtt-p50", "rtt-p99", "rtt-sleeping"):
            row = [test]
            for mech in mechs:
                r = find(results, mech, test, 64)
                row.append("%g" % r["value"] if r else "NaN")
            f.write(" ".join(row) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="build/bench.json")
    ap.add_argument("--log", default="build/bench.log",
                    help="stderr of the bench run (pinning, skipped rows)")
    ap.add_argument("--command", default="ringpipe bench --json")
    ap.add_argument("--md", default="docs/bench.md")
    ap.add_argument("--svg", default="docs/bench.svg")
    ap.add_argument("--chart-script", default=os.path.join(os.path.dirname(__file__),
                                                           "bench_chart.gp"))
    a = ap.parse_args()
    a.command = " ".join(a.command.split())

    with open(a.json) as f:
        results = json.load(f)["results"]
    results.sort(key=sort_key)
    log = []
    if a.log and os.path.exists(a.log):
        with open(a.log) as f:
            # The bench's notes; not the per-run lines RINGPIPE_BENCH_VERBOSE adds.
            log = [l.strip() for l in f if l.startswith("ringpipe bench: ")]
    nproc, model, kernel = machine()
    # When the run ended (its JSON was written), not when this report is.
    date = datetime.datetime.fromtimestamp(os.path.getmtime(a.json), datetime.timezone.utc) \
        .strftime("%Y-%m-%d %H:%M UTC")

    out = []
    w = out.append
    w("# ringpipe benchmark")
    w("")
    w("Generated by `make bench` (scripts/bench_report.py) from `%s`; do not edit by hand." % a.command)
    w("")
    w("- date: %s" % date)
    w("- machine: %s CPUs (`nproc`), %s, %s" % (nproc, model, kernel))
    for l in log:
        w("- %s" % l.replace("ringpipe bench: ", ""))
    w("")
    w("Every figure is the median of `runs` repetitions, with the min and max.  The "
      "repetitions of all mechanisms are interleaved, so both sides of every ratio "
      "were measured in the same run, side by side.  Ratios read \"times better than\": "
      "higher is better for every unit (for µs and % they are kernel ÷ ringpipe).  "
      "GB/s = 10⁹ bytes/s.  Message rows (ringpipe-conn, kernel-pipe-framed: one message "
      "per write) compare in the \"vs kernel-pipe\" column with kernel-pipe-framed, the same "
      "messages over a kernel pipe with a 4-byte length header each, as multiprocessing does.")
    w("")
    if os.path.exists(a.svg) or shutil.which("gnuplot"):
        w("![stream throughput and round-trip latency](%s)" % os.path.basename(a.svg))
        w("")
    w("| test | size | mechanism | capacity | median | min – max | unit | runs "
      "| vs kernel-pipe | vs kernel-pipe-enlarged |")
    w("| --- | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for r in results:
        if r["mechanism"] == "memcpy" or r["mechanism"] in PY_BASE:
            continue
        msg = r["mechanism"] in MSG_MECHS
        k = find(results, "kernel-pipe-framed" if msg else "kernel-pipe", r["test"], r["size"])
        kb = (find(results, "kernel-pipe-enlarged", r["test"], r["size"])
              if r.get("capacity") == BIG and not msg else None)
        if r["test"] == "capacity":   # the kernel pipe at the same capacity
            kb = find(results, "kernel-pipe-enlarged", r["test"], r["size"], r.get("capacity"))
        w("| %s | %s | %s | %s | %s | %s – %s | %s | %d | %s | %s |" % (
            r["test"], "–" if r["test"] == "idle-cpu" else fmt_size(r["size"]),
            r["mechanism"], fmt_size(r["capacity"]) if r.get("capacity") else "–",
            fmt_val(r["value"], r["unit"]), fmt_val(r.get("min", r["value"]), r["unit"]),
            fmt_val(r.get("max", r["value"]), r["unit"]), r["unit"], r.get("runs", 1),
            ratio(r, k), ratio(r, kb) if kb else ""))
    w("")

    mc = find(results, "memcpy", "stream", MIB, MIB)
    mm = next((r for r in results if r["mechanism"] == "memcpy" and r.get("capacity") != MIB), None)
    if mc or mm:
        w("## The memcpy limit")
        w("")
        w("Single-core `memcpy` of 1 MiB blocks in the same run, the physical limit of any "
          "copying pipe (the `capacity` field of a memcpy row is the size of its source and "
          "destination buffers):")
        w("")
        if mc:
            w("- in cache (1 MiB buffers): **%.1f GB/s** (%.1f – %.1f)" % (mc["value"], mc["min"], mc["max"]))
        if mm:
            w("- to memory (%s buffers): **%.1f GB/s** (%.1f – %.1f)" % (
                fmt_size(mm["capacity"]), mm["value"], mm["min"], mm["max"]))
        for zsize in (64 * KIB, MIB):
            zc = find(results, "ringpipe-zerocopy", "stream", zsize, BIG)
            if not zc:
                continue
            parts = []
            if mc:
                parts.append("%.0f%% of memcpy in cache" % (100 * zc["value"] / mc["value"]))
            if mm:
                parts.append("%.0f%% of memcpy to memory" % (100 * zc["value"] / mm["value"]))
            w("- ringpipe-zerocopy, %s writes through a 1 MiB ring: %.2f GB/s = %s" % (
                fmt_size(zsize), zc["value"], ", ".join(parts)))
        zcs = [r for r in results if r["mechanism"] == "ringpipe-zerocopy" and r["test"] == "stream"]
        if zcs and mc:
            b = max(zcs, key=lambda r: r["value"])
            w("- best ringpipe-zerocopy row (%s writes, %s ring): %.2f GB/s = %.0f%% of memcpy in cache" % (
                fmt_size(b["size"]), fmt_size(b.get("capacity", 0)), b["value"],
                100 * b["value"] / mc["value"]))
        w("")

    py = [r for r in results if r["mechanism"] in PY_BASE]
    if py:
        py.sort(key=lambda r: (PY_TESTS.index(r["test"]) if r["test"] in PY_TESTS else 99,
                               r["mechanism"] != "ringpipe-python" and r["mechanism"] != "ringpipe-queue"))
        w("## Python")
        w("")
        w("`python -m ringpipe.bench`, run by `ringpipe bench` in the same run: "
          "`ringpipe.Pipe`/`Queue` against `multiprocessing.Pipe`/`Queue`, the runs of both "
          "interleaved, processes not pinned.")
        w("")
        w("| test | size | mechanism | median | min – max | unit | runs | vs multiprocessing |")
        w("| --- | ---: | --- | ---: | ---: | --- | ---: | ---: |")
        for r in py:
            base = find(results, PY_BASE[r["mechanism"]], r["test"], r["size"])
            w("| %s | %s | %s | %s | %s – %s | %s | %d | %s |" % (
                r["test"], fmt_size(r["size"]), r["mechanism"], fmt_val(r["value"], r["unit"]),
                fmt_val(r.get("min", r["value"]), r["unit"]),
                fmt_val(r.get("max", r["value"]), r["unit"]), r["unit"], r.get("runs", 1),
                ratio(r, base)))
        w("")

    rows = []
    for what, mech, test, size, cap, bm, bt, bc, goal, at_most in TARGETS:
        r = find(results, mech, test, size, cap)
        base = find(results, bm, bt, MIB if bm == "memcpy" else size, bc) if bm else None
        if not r or (bm and not base):
            continue
        x = r["value"] / base["value"] if base else r["value"]
        ok = x <= goal if at_most else x >= goal
        # The same figure for the bare ring, the plain idea of a ring.
        bare = find(results, "bare-ring", test, size, cap) \
            if mech in ("ringpipe", "ringpipe-zerocopy") else None
        bx = "%.3g" % (bare["value"] / base["value"] if base else bare["value"]) if bare else ""
        rows.append("| %s | %.3g | %s %g | %s | %s |" % (what, x, "≤" if at_most else "≥", goal,
                                                        "met" if ok else "**not met**", bx))
    if rows:
        w("## Targets of issues 3, 4 and 6")
        w("")
        w("The last column is the same figure for `bare-ring` (see Method), where it was "
          "measured: what the plain idea of a ring, with none of a pipe's rules, makes of "
          "it on this machine.")
        w("")
        w("| figure (medians) | measured | goal | | bare ring |")
        w("| --- | ---: | ---: | --- | ---: |")
        out.extend(rows)
        w("")

    w("## Method")
    w("")
    w("- **stream**: one writer process and one reader process, forked and pinned to two "
      "CPUs, move a deterministic pattern in writes of the given size; the reader sums every "
      "byte into a position-weighted checksum that must match what the writer sent.  "
      "ringpipe rows use `rp_write`/`rp_read`, zero-copy rows `rp_write_reserve`+`memcpy`+"
      "`rp_write_commit` and `rp_read_peek`+checksum in place+`rp_read_consume`.  The "
      "time runs from the writer's first write to the reader's EOF.  A run moves 1 GiB "
      "(64 MiB, or 3 s, of 64-byte writes); with `--quick` the writer stops after 70 ms.")
    w("- **msgrate**: 64-byte messages, one write call and one read call per message, "
      "every sequence number checked; 2,000,000 messages, or 3 s (70 ms with `--quick`).")
    w("- **rtt-p50 / rtt-p99**: 64-byte ping-pong over two channels, per-round-trip "
      "percentiles; the figure is the median over runs of each run's percentile.")
    w("- **rtt-sleeping**: the same, but the pinger sleeps 1 ms before each ping, so "
      "the ponger has stopped spinning and sleeps in the kernel: the cost of a wakeup.")
    w("- **idle-cpu**: CPU time (`CLOCK_PROCESS_CPUTIME_ID`) of a reader blocked on an "
      "empty channel, divided by the time it was blocked.")
    w("- **writers-N**: N writer processes (pinned to one CPU) into one pipe with 4 KiB "
      "atomic writes, each for 1 s (70 ms with `--quick`), one reader on the other CPU; "
      "aggregate GB/s from the moment every writer has written a ring's worth (its first pass "
      "through a ringpipe maps the ring's pages into it, a page fault per 4 KiB) until the first stops "
      "(sharing a CPU, writers given a share of a fixed total would run one after "
      "another, and the run would time process start-up).")
    w("- **memcpy**: `memcpy` of 1 MiB blocks on one core, through 1 MiB buffers (in "
      "cache) or buffers far larger than the last-level cache (to memory).")
    w("- **bare-ring**: a reference ring (`tools/bench_bare.c`): the same stream, "
      "msgrate and round-trip runs through the least a byte ring in shared memory does, "
      "one writer and one reader with a head and a tail on lines of their own, each "
      "side's last view of the other's index, copies split at the wrap, waits that only "
      "spin; no locks, no sleeping, no pipe rules.  Next to it, ringpipe's rows show what "
      "its rules cost, or what its tricks gain (it publishes a big write a quarter ring at "
      "a time, and beats the bare ring there).  It has no rtt-sleeping, idle-cpu or "
      "writers rows.")
    w("- **capacity**: the stream test with 64 KiB writes through ringpipe and through a "
      "kernel pipe set to the same capacity with `F_SETPIPE_SZ` (beyond "
      "`/proc/sys/fs/pipe-max-size` only with `CAP_SYS_RESOURCE`; such rows are skipped "
      "with a note); each run stops after 1 GiB or 2 s.")
    w("- **memory**: one process creates 1,000 named pipes, opens a read end and a write "
      "end of each and queues 64 bytes in each; the figure is the memory this added, over "
      "1,000.  Where a memory cgroup can be made under ours, the process runs in a cgroup "
      "of its own and the reading is the cgroup's charge (its pages and the kernel objects "
      "charged to it: pipe buffers, inodes, dentries, files); otherwise it is the "
      "machine's MemFree (the notes above say which).  ringpipe's named pipes reserve "
      "their whole ring when created (`posix_fallocate`, so that a full /dev/shm is an "
      "`ENOSPC` from `rp_mkfifo` rather than a `SIGBUS` later); a kernel pipe allocates "
      "its buffer pages as data arrives.")
    w("- **python**: see the Python section.")
    w("")
    os.makedirs(os.path.dirname(a.md) or ".", exist_ok=True)
    with open(a.md, "w") as f:
        f.write("\n".join(out))
    print("wrote %s" % a.md)

    gp = shutil.which("gnuplot")
    if not gp:
        print("gnuplot not found: %s not drawn.  Install it with\n"
              "    apt-get update && apt-get install -y gnuplot-nox\n"
              "and run `make bench` (or this script) again." % a.svg)
        return 0
    tmpdir = os.path.dirname(a.json) or "."
    ds, dr = os.path.join(tmpdir, "bench-stream.dat"), os.path.join(tmpdir, "bench-rtt.dat")
    dc = os.path.join(tmpdir, "bench-capacity.dat")
    write_dat(results, ds, dr)
    has_cap = write_capacity_dat(results, dc)
    title = "ringpipe bench, %s, %s CPUs, %s" % (date, nproc, model)
    cmd = [gp, "-e", "stream='%s'; rtt='%s'; cap='%s'; out='%s'; ttl='%s'" % (
        ds, dr, dc if has_cap else "", a.svg, title), a.chart_script]
    r = subprocess.run(cmd)
    if r.returncode:
        print("gnuplot failed (%d)" % r.returncode, file=sys.stderr)
        return 1
    print("wrote %s" % a.svg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
