"""The instrument's own cost: raid-loadtest's CPU per strike, against the echo server and
against this server, optionally side by side with an older raid-loadtest in the same run.

    python -m bench.loadtest_cost [--clients 1000] [--rounds 3] [--duration 10]
                                  [--old-root OTHER_CHECKOUT] [--subscribe] [--workers N]

Starts this server with the ``make bench-ws`` configuration and one raid, then per round
runs ``raid-loadtest --echo-ceiling`` once per tool (this checkout's, and the older
checkout's when ``--old-root`` is given; the order alternates between rounds, so machine
noise hits both alike). Each run drives the server, then the bare echo server, with the
same clients. Prints, per tool, the medians of: strikes/s against the server and the
tool's CPU µs per strike there; requests/s against the echo server and the tool's CPU µs
per request there (``tool_cpu_us_per_strike`` of raid-loadtest's JSON: its workers' CPU
during the load phase, plus, from this version on, the parent process's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.ws_throughput import ROOT, SECRET, create_raid, free_port, start_server

METRICS = (
    ("server strikes/s", ("strikes_per_s",)),
    ("tool µs/strike (server)", ("tool_cpu_us_per_strike",)),
    ("echo requests/s", ("echo", "strikes_per_s")),
    ("tool µs/request (echo)", ("echo", "tool_cpu_us_per_strike")),
)


def run_tool(root: Path, url: str, raid_id: str, out: Path, args: argparse.Namespace) -> Any:
    """One ``raid-loadtest --echo-ceiling`` run of the checkout at ``root``; its JSON."""
    command = [sys.executable, "-m", "raidclient.loadtest", "--url", url, "--secret", SECRET]
    command += ["--clients", str(args.clients), "--duration", str(args.duration)]
    command += ["--raid", raid_id, "--boss", "titan", "--quiet", "--echo-ceiling"]
    command += ["--json", str(out), "--no-audit"]
    if args.subscribe:
        command.append("--subscribe")
    if args.workers:
        command += ["--workers", str(args.workers)]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if not out.exists():
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"
        print(f"  {root}: raid-loadtest FAILED ({done.returncode}): {reason}", flush=True)
        return None
    result = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return result


def pick(result: Any, path: tuple[str, ...]) -> float | None:
    value = result
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--old-root", type=Path, help="an older checkout to compare against")
    parser.add_argument("--subscribe", action="store_true", help="clients also subscribe")
    parser.add_argument("--workers", type=int, help="raid-loadtest --workers (default: its own)")
    args = parser.parse_args()
    tools = {"this checkout": ROOT}
    if args.old_root is not None:
        tools[f"old ({args.old_root})"] = args.old_root.resolve()
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores, {args.rounds} rounds of "
        f"{args.duration:g} s, {args.clients} clients, subscribe={args.subscribe}",
        flush=True,
    )
    results: dict[str, list[Any]] = {name: [] for name in tools}
    with tempfile.TemporaryDirectory(prefix="bench-loadtest-") as tmp:
        directory = Path(tmp)
        server = start_server(directory, free_port())
        try:
            raid_id = create_raid(server)
            for round_number in range(args.rounds):
                order = list(tools.items())
                if round_number % 2:
                    order.reverse()
                for name, root in order:
                    result = run_tool(root, server.url, raid_id, directory / "run.json", args)
                    results[name].append(result)
                    shown = ", ".join(
                        f"{label} {value:,.0f}"
                        for label, path in METRICS
                        if result is not None and (value := pick(result, path)) is not None
                    )
                    print(f"  round {round_number + 1}, {name}: {shown}", flush=True)
        finally:
            server.stop()
    print()
    print(f"{'tool':<40} " + " ".join(f"{label:>24}" for label, _ in METRICS))
    for name, runs in results.items():
        medians = []
        for _, path in METRICS:
            values = [v for r in runs if r is not None and (v := pick(r, path)) is not None]
            medians.append(f"{statistics.median(values):>24,.1f}" if values else f"{'-':>24}")
        print(f"{name:<40} " + " ".join(medians))


if __name__ == "__main__":
    main()
