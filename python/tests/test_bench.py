"""python -m ringpipe.bench runs and prints the documented JSON."""

import json
import os
import subprocess
import sys
import unittest

from support import TestCase


class Bench(TestCase):
    TEST_DEADLINE = 120

    def test_json_tiny(self):
        out = subprocess.run(
            [sys.executable, '-m', 'ringpipe.bench', '--quick', '--json',
             '--scale', '0.002'],
            capture_output=True, text=True, timeout=110, env=os.environ)
        self.assertEqual(out.returncode, 0, out.stderr)
        doc = json.loads(out.stdout)
        res = doc['results']
        mechs = {r['mechanism'] for r in res}
        self.assertEqual(mechs, {'ringpipe-python', 'mp-pipe',
                                 'ringpipe-queue', 'mp-queue'})
        tests = {(r['mechanism'], r['test']) for r in res}
        for m in ('ringpipe-python', 'mp-pipe'):
            for t in ('msgrate', 'stream', 'objrate', 'rtt-p50'):
                self.assertIn((m, t), tests)
        for r in res:
            self.assertEqual(set(r) >= {'mechanism', 'test', 'size', 'value',
                                        'unit'}, True)
            self.assertGreater(r['value'], 0)
            self.assertIn(r['unit'], ('msg/s', 'GB/s', 'us'))
        self.assertIn('speed-up', out.stderr)     # the table, on stderr

    def test_tsv_lines_carry_median_min_max_runs(self):
        out = subprocess.run(
            [sys.executable, '-m', 'ringpipe.bench', '--tsv', '--scale', '0.002',
             '--runs', '3', '--only', 'msgrate'],
            capture_output=True, text=True, timeout=110, env=os.environ)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(len(lines), 2, out.stdout)
        mechs = set()
        for line in lines:
            mech, test, size, value, unit, lo, hi, runs = line.split('\t')
            mechs.add(mech)
            self.assertEqual((test, size, unit, runs), ('msgrate', '64', 'msg/s', '3'))
            self.assertLessEqual(float(lo), float(value))
            self.assertLessEqual(float(value), float(hi))
        self.assertEqual(mechs, {'ringpipe-python', 'mp-pipe'})
        self.assertIn('speed-up', out.stderr)     # the table, on stderr

    def test_table(self):
        out = subprocess.run(
            [sys.executable, '-m', 'ringpipe.bench', '--scale', '0.002',
             '--runs', '1', '--only', 'rtt-p50'],
            capture_output=True, text=True, timeout=110, env=os.environ)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn('round trip 64 B', out.stdout)


if __name__ == '__main__':
    unittest.main()
