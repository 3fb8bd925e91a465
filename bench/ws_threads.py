"""Where the server's CPU goes, thread by thread, under raid-loadtest.

    python -m bench.ws_threads [--clients 1000] [--duration 14] [--runs 3]

Starts the server with ws_throughput's bench configuration, drives it with the project's load
tester (closed loop, MessagePack, every client subscribed) and reads each server thread's
user and system CPU from /proc over the middle of the load phase (the set-up and the audit
excluded), per strike served. Threads are named by ``py-spy dump`` (a test dependency) when it
may attach to the server, by thread id otherwise. The event loop (``MainThread``) holding the
GIL for most of each strike is what bounds one process's rate (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.ws_throughput import create_raid, free_port, loadtest, start_server

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ThreadTimes:
    name: str
    user_s: float
    system_s: float


def thread_times(pid: int) -> dict[str, ThreadTimes]:
    """tid -> CPU seconds so far of each thread of ``pid`` (threads that ended are skipped)."""
    times: dict[str, ThreadTimes] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        times[tid] = ThreadTimes(name, int(fields[11]) * TICK_S, int(fields[12]) * TICK_S)
    return times


def thread_names(pid: int) -> dict[str, str]:
    """tid -> Python thread name, from ``py-spy dump`` (empty if it cannot attach)."""
    beside = Path(sys.executable).with_name("py-spy")  # the virtualenv's, even off PATH
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        return {}
    dump = subprocess.run(
        [spy, "dump", "-p", str(pid)], check=False, capture_output=True, text=True
    )
    return dict(re.findall(r'^Thread (\d+) \([^)]*\): "([^"]+)"', dump.stdout, re.MULTILINE))


def one_run(clients: int, duration: float) -> tuple[float, dict[str, tuple[float, float]]]:
    """(strikes/s, thread name -> (user µs, system µs) per strike)."""
    with tempfile.TemporaryDirectory() as directory:
        server = start_server(Path(directory), free_port())
        try:
            raid = create_raid(server)
            pid = server.process.pid
            names: dict[str, str] = {}
            marks: list[tuple[float, dict[str, ThreadTimes]]] = []

            def sample() -> None:  # the middle of the load phase
                time.sleep(duration * 0.3)
                names.update(thread_names(pid))
                marks.append((time.monotonic(), thread_times(pid)))
                time.sleep(duration * 0.4)
                marks.append((time.monotonic(), thread_times(pid)))

            sampler = threading.Thread(target=sample)
            sampler.start()
            result = loadtest(
                server, Path(directory) / "run.json", clients, duration, "--raid", raid,
                "--subscribe",
            )  # fmt: skip
            sampler.join()
        finally:
            server.stop()
    if "failed" in result:
        raise SystemExit(f"raid-loadtest failed: {result['failed']}")
    rate = float(result["strikes_per_s"])
    (began, first), (ended, last) = marks
    strikes = max(rate * (ended - began), 1.0)
    per_thread: dict[str, tuple[float, float]] = {}
    for tid, now in last.items():
        before = first.get(tid)
        if before is None:
            continue
        name = names.get(tid, f"thread {tid}")
        user, system = per_thread.get(name, (0.0, 0.0))
        per_thread[name] = (
            user + (now.user_s - before.user_s) / strikes * 1e6,
            system + (now.system_s - before.system_s) / strikes * 1e6,
        )
    return rate, per_thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=14.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.clients, args.duration) for _ in range(args.runs)]
    for number, (rate, _) in enumerate(runs, 1):
        print(f"  run {number}: {rate:,.0f} strikes/s", flush=True)
    names = sorted({name for _, threads in runs for name in threads})
    rows = []
    for name in names:
        user = statistics.median(threads.get(name, (0.0, 0.0))[0] for _, threads in runs)
        system = statistics.median(threads.get(name, (0.0, 0.0))[1] for _, threads in runs)
        rows.append((user + system, name, user, system))
    print(f"\n{args.clients} subscribed clients, median of {args.runs} runs, CPU per strike:")
    print(f"{'thread':34s} {'user µs':>8s} {'sys µs':>8s}")
    for total, name, user, system in sorted(rows, reverse=True):
        if total >= 0.5:
            print(f"{name[:34]:34s} {user:8.1f} {system:8.1f}")
    total_user = sum(row[2] for row in rows)
    total_system = sum(row[3] for row in rows)
    print(f"{'all threads':34s} {total_user:8.1f} {total_system:8.1f}")
    print(f"strikes/s: median {statistics.median(rate for rate, _ in runs):,.0f}")


if __name__ == "__main__":
    main()
