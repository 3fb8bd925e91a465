"""The whole server over real WebSockets, side by side with a bare echo server, in one run.

    python -m bench.ws_throughput [--clients 100,500,1000] [--rounds 3] [--duration 10]
                                  [--fanout 5000] [--open-rate 5000]   (make bench-ws)

Starts this server (``run_server.py serve``) with a bench configuration: ``synchronous =
"FULL"``, cooldown 0, a 0.01 s character rest, the rate limits raised (per connection, and
per address: every client comes from the load generator's one address), one raid of a boss
that never dies. Then, for each round and each client count (rounds interleaved, so machine noise
hits every size alike), drives it with ``raid-loadtest`` (closed loop, MessagePack, clients
subscribed to the raid) and, in the same run, a bare ``websockets`` + msgpack echo server
(``--echo-ceiling``). Prints one table of medians: strikes/s, the ratio to the echo server of
the same run, p50/p99, the server's CPU µs per strike and its RSS (from /proc of its pid), and
whether every audit (hp conserved, strike counts, idempotent resends, contiguous events) held.

Two more scenarios: open loop (``--open-rate`` strikes/s offered by the largest client count)
and fan-out (``--fanout`` subscribers who never strike, each receiving the raid's ~10 hp events
per second, while one player strikes every 10 ms; its latency is what counts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from bench.titan import TITAN_BOSS
from server.tokens import issue_token

ROOT = Path(__file__).resolve().parents[1]
FANOUT_IDLE_EXTRA_S = 120.0  # the idle subscribers' run outlasts the striker's by this much
FANOUT_CONNECT_S = 600.0  # the subscribers must all be connected within this
SECRET = "bench-secret-0123456789"
CONFIG = (
    """
[server]
messages_per_s = 100000
message_burst = 100000
connections_per_address_per_s = 0  # every load-generator client comes from one address
ping_interval_s = 60
ping_timeout_s = 60
max_pending_bytes = 4194304
hello_timeout_s = 120

[persistence]
synchronous = "FULL"
snapshot_interval_s = 30

[player]
strike_cooldown_s = 0
character_rest = 0.01

[actors]
max_player_actors = 100000
"""
    + TITAN_BOSS
)


@dataclass
class Server:
    """The server process under test and how to read its CPU and memory."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.process.pid}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Row:
    """The rounds of one scenario."""

    name: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    def median(self, *path: str) -> float:
        values = []
        for run in self.runs:
            value: Any = run
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, int | float):
                values.append(float(value))
        return statistics.median(values) if values else float("nan")


def start_server(directory: Path, port: int, root: Path = ROOT) -> Server:
    config = directory / "bench.toml"
    config.write_text(CONFIG, encoding="utf-8")
    log = directory / "server.log"
    env = {**os.environ, "RAID_SECRET": SECRET}
    process = subprocess.Popen(
        [
            *(sys.executable, str(root / "run_server.py"), "serve", "--config", str(config)),
            *("--db", str(directory / "bench.db"), "--port", str(port), "--host", "127.0.0.1"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"ws://127.0.0.1:{port}/ws"
    deadline = time.monotonic() + 60
    while True:
        try:
            asyncio.run(_probe(url))
            return Server(process, url, log)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {log}") from None
            time.sleep(0.2)


async def _probe(url: str) -> None:
    async with websockets.connect(url, open_timeout=2):
        pass


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Sampler(threading.Thread):
    """The server's CPU seconds and RSS every 100 ms while a load test runs."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.samples: list[tuple[float, float, int]] = []  # (monotonic, cpu s, rss bytes)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append(
                (time.monotonic(), self.server.cpu_seconds(), self.server.rss_bytes())
            )
            self.done.wait(0.1)

    def busiest(self, seconds: float) -> float:
        """CPU seconds of the busiest ``seconds``-long window: the load phase, without the
        set-up (roster grants) and the audit that the same raid-loadtest run also does."""
        best = 0.0
        samples = self.samples
        start = 0
        for end in range(len(samples)):
            while samples[end][0] - samples[start][0] > seconds:
                start += 1
            best = max(best, samples[end][1] - samples[start][1])
        return best


def loadtest(
    server: Server, out: Path, clients: int, duration: float, *extra: str
) -> dict[str, Any]:
    """One raid-loadtest run against the server; its JSON, plus the server's CPU and RSS."""
    command = [sys.executable, "-m", "raidclient.loadtest", "--url", server.url]
    command += ["--secret", SECRET, "--clients", str(clients), "--duration", str(duration)]
    command += ["--json", str(out), "--quiet", "--boss", "titan", *extra]
    sampler = Sampler(server)
    sampler.start()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    sampler.done.set()
    sampler.join()
    if not out.exists():  # reported in the table, the other scenarios still run
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"
        print(f"  raid-loadtest failed ({done.returncode}): {reason}", flush=True)
        return {"failed": reason, "server": {"rss_mb": server.rss_bytes() / 2**20}}
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    strikes = max(int(result.get("strikes", 0)), 1)
    elapsed = float(result.get("duration_s") or duration)
    cpu = sampler.busiest(elapsed)
    result["server"] = {
        "cpu_us_per_strike": cpu / strikes * 1e6,
        "cpu_share": cpu / elapsed,
        "rss_mb": max(s[2] for s in sampler.samples) / 2**20,
    }
    return result


def create_raid(server: Server) -> str:
    async def create() -> str:
        token = issue_token(SECRET, "bench-admin", "admin", 3600, time.time())
        async with websockets.connect(server.url) as ws:
            import msgpack

            await ws.send(msgpack.packb({"op": "hello", "rid": 1, "token": token}))
            await ws.recv()
            await ws.send(msgpack.packb({"op": "admin.raid.create", "rid": 2, "boss": "titan"}))
            reply = msgpack.unpackb(await ws.recv())
            return str(reply["raid_id"])

    return asyncio.run(create())


def audit_ok(run: dict[str, Any]) -> bool:
    """The run completed and every audit check held (hp conserved, counts, events...)."""
    audit = run.get("audit") or {}
    return "failed" not in run and bool(audit.get("passed", False))


def print_table(rows: list[Row]) -> None:
    head = (
        f"{'scenario':<28} {'strikes/s':>10} {'echo/s':>9} {'ratio':>6} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'CPU us':>7} {'RSS MB':>7} audit"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        audits = "ok" if all(audit_ok(r) for r in row.runs) else "FAILED"
        print(
            f"{row.name:<28} {row.median('strikes_per_s'):>10,.0f} "
            f"{row.median('echo', 'strikes_per_s'):>9,.0f} "
            f"{row.median('echo', 'ratio'):>6.2f} {row.median('latency_ms', 'p50'):>8.1f} "
            f"{row.median('latency_ms', 'p99'):>8.1f} "
            f"{row.median('server', 'cpu_us_per_strike'):>7.0f} "
            f"{row.median('server', 'rss_mb'):>7.0f} {audits}"
        )
    for row in rows:
        for run in row.runs:
            checks = (run.get("audit") or {}).get("checks") or {}
            failed = [f"{name}: {c.get('detail')}" for name, c in checks.items() if not c["passed"]]
            if "failed" in run:
                failed.append(f"raid-loadtest: {run['failed']}")
            for line in failed:
                print(f"  {row.name}: {line}")


def server_gauges(server: Server) -> dict[str, float]:
    """``connections`` and acknowledged strikes from the server's ``/metrics``; empty while
    the server is too busy to answer within 10 s."""
    url = server.url.replace("ws://", "http://", 1).removesuffix("/ws") + "/metrics"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    except (OSError, TimeoutError):
        return {}
    gauges = {}
    for line in text.splitlines():
        if line.startswith("connections "):
            gauges["connections"] = float(line.split()[1])
        elif line.startswith('strikes_total{code="ok"}'):
            gauges["strikes"] = float(line.split()[1])
    return gauges


def wait_until_quiet(server: Server, limit_s: float = FANOUT_CONNECT_S) -> None:
    """Until the server answers /metrics and has acknowledged no strike for a second: an
    overloaded open-loop round can leave it a backlog to work through for minutes."""
    deadline = time.monotonic() + limit_s
    last: dict[str, float] = {}
    while time.monotonic() < deadline:
        gauges = server_gauges(server)
        if gauges and gauges.get("strikes") == last.get("strikes"):
            return
        last = gauges
        time.sleep(1.0)


def fanout_round(
    server: Server, directory: Path, subscribers: int, duration: float, raid_id: str
) -> Row:
    """``subscribers`` clients subscribed to the raid and idle, one client striking it every
    10 ms; the striker's latency is what counts."""
    row = Row(f"fan-out {subscribers} + 1 striker")
    wait_until_quiet(server)
    idle = subprocess.Popen(
        [
            *(sys.executable, "-m", "raidclient.loadtest", "--url", server.url),
            *("--secret", SECRET, "--clients", str(subscribers), "--subscribe"),
            # Long enough for the striker's set-up and run; stopped (SIGINT) once it is done.
            *("--duration", str(duration + FANOUT_IDLE_EXTRA_S), "--rate", "1"),
            *("--quiet", "--no-audit", "--boss", "titan", "--raid", raid_id),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: its workers are stopped with it
    )
    try:
        # The striker starts once every subscriber is connected (however long that takes
        # on a busy box, within FANOUT_CONNECT_S).
        deadline = time.monotonic() + FANOUT_CONNECT_S
        while server_gauges(server).get("connections", 0.0) < subscribers:
            reason = ""
            if idle.poll() is not None:
                reason = (idle.stderr.read() if idle.stderr else "").strip() or "no output"
            elif time.monotonic() > deadline:
                reason = f"{subscribers} subscribers not connected after {FANOUT_CONNECT_S:g} s"
            if reason:
                print(f"  fan-out subscribers FAILED: {reason}", flush=True)
                row.runs.append({"failed": reason, "server": {"rss_mb": 0.0}})
                return row
            time.sleep(0.5)
        time.sleep(2.0)  # their raid.subscribe too
        striker = loadtest(
            server,
            directory / "striker.json",
            1,
            duration,
            *("--rate", "100", "--no-audit", "--workers", "1", "--raid", raid_id),
            # Characters come back with each report: 100/s in flight for seconds needs more
            # than the default 64, or the striker runs out (roster_exhausted) instead.
            *("--roster", "1000"),
        )
    finally:
        if idle.poll() is None:
            os.killpg(idle.pid, signal.SIGINT)  # the tool and its workers stop at once
        try:
            idle.wait(timeout=60)
        except subprocess.TimeoutExpired:
            idle.kill()
            idle.wait()
    row.runs.append(striker)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", default="100,500,1000", help="client counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--open-rate", type=float, default=5000.0, help="0 = skip")
    parser.add_argument("--fanout", type=int, default=5000, help="subscribers; 0 = skip")
    parser.add_argument("--no-echo", action="store_true", help="skip the echo ceiling")
    parser.add_argument("--json", help="write every run's figures to this file")
    parser.add_argument(
        "--server-root",
        type=Path,
        default=ROOT,
        help="serve from another checkout (e.g. an older commit, for before/after figures)",
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.clients.split(",") if n]
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores, "
        f"{args.rounds} rounds of {args.duration:g} s, clients {sizes}, event loop "
        f"{os.environ.get('RAID_EVENT_LOOP', 'uvloop')}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        directory = Path(tmp)
        server = start_server(directory, free_port(), args.server_root)
        try:
            raid_id = create_raid(server)
            rows = {n: Row(f"closed loop, {n} clients") for n in sizes}
            echo = () if args.no_echo else ("--echo-ceiling",)
            for round_number in range(args.rounds):
                for n in sizes:
                    run = loadtest(
                        server,
                        directory / "run.json",
                        n,
                        args.duration,
                        "--subscribe",
                        "--raid",
                        raid_id,
                        *echo,
                    )
                    rows[n].runs.append(run)
                    print(
                        f"  round {round_number + 1}, {n} clients: "
                        f"{run.get('strikes_per_s', 0):,.0f}/s, p99 "
                        f"{run.get('latency_ms', {}).get('p99', 0):.1f} ms, server "
                        f"{run['server'].get('cpu_us_per_strike', float('nan')):.0f} us/strike, "
                        f"{run['server']['rss_mb']:.0f} MB, audit "
                        f"{'ok' if audit_ok(run) else 'FAILED'}",
                        flush=True,
                    )
            table = list(rows.values())
            if args.open_rate > 0:
                open_row = Row(f"open loop {args.open_rate:g}/s, {max(sizes)} cl.")
                open_row.runs.append(
                    loadtest(
                        server,
                        directory / "open.json",
                        max(sizes),
                        args.duration,
                        "--rate",
                        str(args.open_rate),
                        "--raid",
                        raid_id,
                    )
                )
                table.append(open_row)
            if args.fanout > 0:
                table.append(fanout_round(server, directory, args.fanout, args.duration, raid_id))
        finally:
            server.stop()
    print()
    print_table(table)
    if args.json:
        Path(args.json).write_text(
            json.dumps({row.name: row.runs for row in table}, indent=1), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
