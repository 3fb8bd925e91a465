"""The benchmark scripts still run (tiny sizes; no timing is asserted: figures live in
docs/benchmarks.md, measured with the full sizes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.timeouts import TIMEOUT

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("module", "args", "expected"),
    [
        ("bench.rules_throughput", ["--players", "50", "--strikes", "500", "--repeat", "1"],
         "decide+apply+leaderboards"),
        ("bench.journal_throughput", ["--strikes", "300", "--submitters", "20",
                                      "--baseline-strikes", "20"], "committed strikes/s"),
        ("bench.actor_throughput", ["--players", "20", "--strikes", "200", "--repeat", "1",
                                    "--actors", "5"], "actor path, 20 concurrent players"),
        ("bench.actor_throughput", ["--players", "20", "--soak", "400"], "soak: 400 strikes"),
        ("bench.snapshot_restore", ["--players", "200"], "restore: snapshot with 200 players"),
        ("bench.ws_throughput", ["--clients", "4", "--rounds", "1", "--duration", "1",
                                 "--open-rate", "20", "--fanout", "4", "--no-echo"],
         "closed loop, 4 clients"),
        ("bench.ws_cluster", ["--workers", "2", "--clients", "3", "--rounds", "1", "--duration",
                              "1", "--fanout", "0", "--no-echo"], "workers 2, 3 clients"),
        ("bench.loadtest_cost", ["--clients", "4", "--rounds", "1", "--duration", "1"],
         "this checkout"),
        ("bench.ws_threads", ["--clients", "4", "--duration", "2", "--runs", "1"],
         "strikes/s: median"),
        ("bench.simulate_throughput", ["--players", "100", "--long-players", "20", "--hours", "6",
                                       "--repeat", "1"], "baseline exact"),
        ("bench.restore_timeline", ["--strikes", "300", "--repeat", "1"],
         "restore of a raid with 300 strikes"),
    ],
)  # fmt: skip
def test_benchmark_runs(module: str, args: list[str], expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True, text=True, cwd=ROOT, timeout=TIMEOUT * 18, check=False,  # a hang guard
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout
    assert "FAILED" not in done.stdout  # bench-ws: every raid-loadtest audit held
