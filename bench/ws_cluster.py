"""The server with N gateway processes (``serve --workers N``) against the single process,
over real WebSockets, in one run.

    python -m bench.ws_cluster [--workers 2,4] [--clients 100,500,1000] [--rounds 3]
                               [--duration 10] [--fanout 5000]        (make bench-ws)

Starts the single-process server (``serve``, the ``--workers 1`` default) and one
``serve --workers N`` per N, all with bench/ws_throughput.py's configuration, each with its
own database, all running for the whole run. Then, for each round, each client count and
each server (interleaved, so machine noise hits every column alike), drives it with
``raid-loadtest`` (closed loop, MessagePack, clients subscribed). The echo ceiling is measured
with the single-process runs. CPU per strike and RSS are summed over the whole process tree
(supervisor, nats-server, raid host, gateways), read from /proc.

``--fanout N``: N idle subscribers and one player striking every 10 ms, on the single process
and on the largest ``--workers``: the striker's p99 is the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.ws_throughput import (
    CONFIG,
    ROOT,
    SECRET,
    Row,
    Server,
    audit_ok,
    create_raid,
    fanout_round,
    free_port,
    loadtest,
    print_table,
    start_server,
)

_ADDRESS = re.compile(r"World-Threat Raid server on 127\.0\.0\.1:(\d+)")


def _tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _role(pid: int, root: int, cmdline: list[bytes]) -> str:
    if pid == root:
        return "supervisor"
    if any(part.endswith(b"nats-server") for part in cmdline):
        return "nats"
    for role in (b"gateway", b"host"):
        if role in cmdline:
            return role.decode()
    return "other"


ROLES = ("gateway", "host", "nats", "supervisor")


def measured(server: Server, *args: Any) -> dict[str, Any]:
    """``loadtest`` and, for a cluster, each role's share of the tree's CPU over the run."""
    if not isinstance(server, ClusterServer):
        return loadtest(server, *args)
    before = server.cpu_by_role()
    run = loadtest(server, *args)
    after = server.cpu_by_role()
    spent = {role: after.get(role, 0.0) - before.get(role, 0.0) for role in ROLES}
    total = sum(spent.values()) or 1.0
    run["server"]["roles"] = {role: spent[role] / total for role in ROLES}
    return run


def print_roles(rows: list[Row]) -> None:
    """Server CPU per strike split by process role (the role's share of the whole run)."""
    print()
    print(f"{'CPU us per strike by role':<28} " + " ".join(f"{r:>10}" for r in ROLES))
    for row in rows:
        if not any("roles" in run.get("server", {}) for run in row.runs):
            continue
        total = row.median("server", "cpu_us_per_strike")
        cells = " ".join(f"{total * row.median('server', 'roles', r):>10.0f}" for r in ROLES)
        print(f"{row.name:<28} {cells}")


@dataclass
class ClusterServer(Server):
    """``serve --workers N``: CPU and RSS are the sums over its process tree."""

    def cpu_seconds(self) -> float:
        total = 0
        for pid in _tree(self.process.pid):
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds so far of each kind of process: gateway, host, nats, supervisor."""
        roles: dict[str, float] = {}
        for pid in _tree(self.process.pid):
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            role = _role(pid, self.process.pid, cmdline)
            ticks = int(fields[11]) + int(fields[12])
            roles[role] = roles.get(role, 0.0) + ticks / os.sysconf("SC_CLK_TCK")
        return roles

    def rss_bytes(self) -> int:
        total = 0
        for pid in _tree(self.process.pid):
            try:
                with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
                    total += int(statm.read().split()[1])
            except OSError:
                continue
        return total * os.sysconf("SC_PAGE_SIZE")


def start_cluster(directory: Path, port: int, workers: int) -> ClusterServer:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "bench.toml"
    config.write_text(CONFIG, encoding="utf-8")
    log = directory / "server.log"
    out = directory / "server.out"
    env = {**os.environ, "RAID_SECRET": SECRET}
    process = subprocess.Popen(
        [
            *(sys.executable, str(ROOT / "run_server.py"), "serve", "--config", str(config)),
            *("--db", str(directory / "bench.db"), "--port", str(port), "--host", "127.0.0.1"),
            *("--workers", str(workers), "--log-format", "json"),
        ],
        env=env,
        stdout=out.open("w"),
        stderr=log.open("w"),
    )
    deadline = time.monotonic() + 120
    while not _ADDRESS.search(out.read_text(encoding="utf-8", errors="replace")):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"serve --workers {workers} did not start; see {log}")
        time.sleep(0.2)
    return ClusterServer(process, f"ws://127.0.0.1:{port}/ws", log)


def _line(name: str, round_number: int, n: int, run: dict[str, Any]) -> str:
    return (
        f"  round {round_number + 1}, {name}, {n} clients: "
        f"{run.get('strikes_per_s', 0):,.0f}/s, p99 "
        f"{run.get('latency_ms', {}).get('p99', 0):.1f} ms, server "
        f"{run['server'].get('cpu_us_per_strike', float('nan')):.0f} us/strike, "
        f"{run['server']['rss_mb']:.0f} MB, audit {'ok' if audit_ok(run) else 'FAILED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", default="2,4", help="gateway process counts (N > 1)")
    parser.add_argument("--clients", default="100,500,1000", help="client counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--fanout", type=int, default=5000, help="subscribers; 0 = skip")
    parser.add_argument("--no-echo", action="store_true", help="skip the echo ceiling")
    parser.add_argument("--json", help="write every run's figures to this file")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    sizes = [int(n) for n in args.clients.split(",") if n]
    workers = [int(n) for n in args.workers.split(",") if n]
    if any(n < 2 for n in workers):
        raise SystemExit("--workers: counts of 2 or more (1 is the single process, always run)")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores, "
        f"{args.rounds} rounds of {args.duration:g} s, clients {sizes}, workers 1 (single "
        f"process) and {workers}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        directory = Path(tmp)
        (directory / "single").mkdir()
        servers: dict[str, Server] = {"1 process": start_server(directory / "single", free_port())}
        try:
            for n in workers:
                servers[f"workers {n}"] = start_cluster(directory / f"w{n}", free_port(), n)
            raids = {name: create_raid(server) for name, server in servers.items()}
            rows = {(name, n): Row(f"{name}, {n} clients") for n in sizes for name in servers}
            echo = () if args.no_echo else ("--echo-ceiling",)
            for round_number in range(args.rounds):
                for n in sizes:
                    for name, server in servers.items():
                        extra = echo if name == "1 process" else ()
                        run = measured(
                            server,
                            directory / "run.json",
                            n,
                            args.duration,
                            "--subscribe",
                            "--raid",
                            raids[name],
                            *extra,
                        )
                        rows[(name, n)].runs.append(run)
                        print(_line(name, round_number, n, run), flush=True)
            table = list(rows.values())
            if args.fanout > 0:
                for name in ("1 process", f"workers {max(workers)}"):
                    row = fanout_round(
                        servers[name], directory, args.fanout, args.duration, raids[name]
                    )
                    row.name = f"{name}: {row.name}"
                    table.append(row)
        finally:
            for server in servers.values():
                server.stop()
    print()
    print_table(table)
    print_roles(table)
    if args.json:
        Path(args.json).write_text(
            json.dumps({row.name: row.runs for row in table}, indent=1), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
