"""Tests of the benchmark report (tools.py report): each target's verdict, from synthetic results.
Standard library only; run by scripts/test (python3 -m unittest discover -s bench/load)."""

import contextlib
import io
import json
import os
import tempfile
import unittest

import tools

SECOND_US = 1_000_000


def run(scenario, concurrency, rate, p99_ms=1.0, **extra):
    r = {
        "scenario": scenario,
        "concurrency": concurrency,
        "requests": int(rate * 10),
        "duration_us": 10 * SECOND_US,
        "latency_p50_us": 100,
        "latency_p99_us": int(p99_ms * 1000),
        "sample": {"cpu_s": 10.0, "cpu_cores": 1.0, "wall_s": 10.0, "max_rss_kb": 60_000, "hwm_kb": 60_000},
    }
    r.update(extra)
    return r


def load_results(backend, submissions_per_s=4_000.0, raw_rate=7_000.0):
    """A run at concurrency 64: nginx at 100,000/s, the catalogue at 90,000, the form at 60,000,
    the submissions against the raw rate given."""
    return {
        "backend": backend,
        "backend_label": f"{backend} label",
        "raw_label": "synchronous",
        "binary": "/x/release/guichet",
        "build": "release",
        "duration": "10s",
        "machine": "test",
        "date": "2026-12-01T00:00:00Z",
        "startup_ms": 70.0,
        "restart_ms": 20.0,
        "idle_rss_kb": 35_000,
        "logins_rss_kb": 90_000,
        "final_hwm_kb": 130_000,
        "runs": [
            run("nginx", 64, 100_000),
            run("catalogue", 64, 90_000, p99_ms=4.0),
            run("fresh", 64, 60_000, p99_ms=2.0),
            run("send", 64, 3 * submissions_per_s, submitted=int(10 * submissions_per_s)),
        ],
        "raw_inserts": [{"tool": "python3", "clients": 64, "rate": raw_rate, "latency_p50_us": 100, "latency_p99_us": 900}],
        "ceilings": [],
        "large_startup": {"label": "35,000 tenants", "startup_ms": 20.0, "idle_rss_kb": 13_000},
    }


def inbox_results(backend, worst_p95=16.0, tenants=35_000, requests=1_000_000, annotated=True):
    d = {
        "backend": backend,
        "results": [
            {"scenario": "inbox first page", "p50_ms": 4.0, "p95_ms": 4.5, "p99_ms": 5.0, "target_p95_ms": 50, "met": True},
            {
                "scenario": "full-text search",
                "p50_ms": worst_p95 - 1,
                "p95_ms": worst_p95,
                "p99_ms": worst_p95 + 1,
                "target_p95_ms": 50,
                "met": worst_p95 < 50,
            },
        ],
    }
    if annotated:
        d.update(tenants=tenants, requests=requests, commit="abc1234", date="2026-12-01T00:00:00Z")
    return d


class ReportTargets(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, name, data):
        with open(os.path.join(self.dir.name, name), "w") as f:
            json.dump(data, f)

    def targets(self, backend="sqlite"):
        """The report's table of targets: {target text prefix: (measured, verdict)}."""
        with contextlib.redirect_stdout(io.StringIO()):
            tools.report(self.dir.name, backend)
        with open(os.path.join(self.dir.name, "load.md")) as f:
            text = f.read()
        table = text.split("## Targets", 1)[1]
        rows = {}
        for line in table.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 4 and cells[0] == backend:
                rows[cells[1]] = (cells[2], cells[3])
        return text, rows

    def row(self, rows, prefix):
        found = [v for k, v in rows.items() if k.startswith(prefix)]
        self.assertEqual(len(found), 1, f"one target row starting with {prefix!r} in {list(rows)}")
        return found[0]

    def test_every_target_has_a_row(self):
        self.write("load-sqlite.json", load_results("sqlite"))
        self.write("inbox-sqlite.json", inbox_results("sqlite"))
        _, rows = self.targets()
        for prefix in ("(a) catalogue", "(b) form page", "(c) submission", "inbox first page, filtered inbox",
                       "no error responses", "idle RSS", "RSS < 250 MB", "start-up < 1 s with"):
            self.row(rows, prefix)
        self.assertIn("start-up < 1 s", rows)
        self.assertEqual(self.row(rows, "(a) catalogue")[1], "met")
        self.assertEqual(self.row(rows, "(b) form page")[1], "met")

    def test_submissions_under_half_the_raw_rate_are_missed(self):
        self.write("load-sqlite.json", load_results("sqlite", submissions_per_s=1_000.0, raw_rate=7_000.0))
        _, rows = self.targets()
        measured, verdict = self.row(rows, "(c) submission")
        self.assertEqual(verdict, "**missed**")
        self.assertIn("14 %", measured)

    def inbox_row(self, inbox=None):
        """The report's text and target 3's (measured, verdict), beside a passing load run."""
        self.write("load-sqlite.json", load_results("sqlite"))
        if inbox is not None:
            self.write("inbox-sqlite.json", inbox)
        text, rows = self.targets()
        return text, self.row(rows, "inbox first page, filtered inbox")

    def test_inbox_target_met_at_national_scale(self):
        text, (measured, verdict) = self.inbox_row(inbox_results("sqlite", worst_p95=16.5))
        self.assertEqual(verdict, "met")
        self.assertIn("worst p95 16.5 ms (full-text search)", measured)
        self.assertIn("1,000,000 requests over 35,000 tenants", measured)
        self.assertIn("| full-text search | 15.5 | 16.5 | 17.5 | < 50 ms: met |", text)

    def test_inbox_target_missed_when_one_page_is_slow(self):
        _, (_, verdict) = self.inbox_row(inbox_results("sqlite", worst_p95=72.0))
        self.assertEqual(verdict, "**missed**")

    def test_inbox_target_not_measured_without_results(self):
        _, (measured, verdict) = self.inbox_row()
        self.assertEqual(verdict, "not measured")
        self.assertIn("bench/run-inbox.sh", measured)

    def test_a_smaller_territory_does_not_count(self):
        _, (measured, verdict) = self.inbox_row(inbox_results("sqlite", tenants=3_500, requests=100_000))
        self.assertEqual(verdict, "not measured")
        self.assertIn("smaller than the target's territory", measured)

    def test_a_bench_run_by_hand_does_not_count(self):
        _, (measured, verdict) = self.inbox_row(inbox_results("sqlite", annotated=False))
        self.assertEqual(verdict, "not measured")
        self.assertIn("territory not recorded", measured)

if __name__ == "__main__":
    unittest.main()
