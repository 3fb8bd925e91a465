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
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgpack
from websockets.frames import Frame, Opcode
from websockets.utils import accept_key

from bench.ws_throughput import ROOT, SECRET, create_raid, free_port, start_server
from raidclient.loadtest.connection import LeanConnection
from raidclient.loadtest.plan import Player, WorkerSpec
from raidclient.loadtest.worker import LoadClient, Worker

METRICS = (
    ("server strikes/s", ("strikes_per_s",)),
    ("tool µs/strike (server)", ("tool_cpu_us_per_strike",)),
    ("echo requests/s", ("echo", "strikes_per_s")),
    ("tool µs/request (echo)", ("echo", "tool_cpu_us_per_strike")),
)


class ByteSink:
    """A transport that keeps the last write (the handshake request) and drops the rest."""

    def __init__(self) -> None:
        self.last = b""

    def write(self, data: bytes) -> None:
        self.last = data

    def is_closing(self) -> bool:
        return False


def reply_frames(echo: bool, strikes: int, prefix: str) -> list[bytes]:
    """What the echo server, or this server, answers to ``strikes`` strikes (a report as
    this server writes it, with a strike reward)."""
    now = time.time()
    frames = []
    for n in range(strikes):
        reply: dict[str, Any] = {
            "op": "strike.ok", "rid": n, "action": "fight", "team": ["c-1"],
            "strike_id": f"{prefix}{n}",
        }  # fmt: skip
        if echo:
            reply["raid_id"] = "titan-1"
        else:
            reply |= {
                "base": 10.0, "multiplier": 1.0, "score": 70, "damage": 7,
                "analysis_points": 0, "boss_hp": 999_999_999_984_772, "analysis_total": 0,
                "strike_count": 10_000 + n, "breakthroughs": [], "retaliations": [],
                "victory": False, "cooldown_until": now, "exhausted": ["c-1"],
                "exhausted_until": now,
                "rewards": [{"kind": "strike", "key": f"strike:{prefix}{n}",
                             "bundle": {"gems": 1}}],
            }  # fmt: skip
        frames.append(Frame(Opcode.BINARY, msgpack.packb(reply)).serialize(mask=False))
    return frames


async def hot_path_us(echo: bool, strikes: int) -> float:
    """CPU µs per strike of the closed-loop hot path alone, in this process: each reply
    frame goes through ``data_received`` (framing, decoding, bookkeeping, HDR record) and
    the next strike is assembled, framed and masked; the socket is a byte sink, so no
    system call is counted."""
    player = Player(0, "u0", "token", tuple(f"c-{k}" for k in range(64)))
    spec = WorkerSpec(
        worker_id=0, url="ws://127.0.0.1:1/ws", fmt="msgpack", raid_id="titan-1",
        run_id="r1", players=(player,), mode="closed", rate_per_client=None,
        actions=("fight",), subscribe=False, echo=echo, sample_size=20, drain_timeout_s=10,
        clients_total=1,
    )  # fmt: skip
    worker = Worker(spec, None, None)  # type: ignore[arg-type]  # no parent: nothing is shipped
    worker.t_end = time.monotonic() + 3600
    conn = LeanConnection(spec.url, worker.masks)
    sink = ByteSink()
    conn.connection_made(sink)  # type: ignore[arg-type]
    key = next(
        line.split(b": ", 1)[1].decode()
        for line in sink.last.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    conn.data_received(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
    )
    client = LoadClient(worker, player, conn)
    frames = reply_frames(echo, strikes, client.prefix)
    client.next_strike()  # strike 0 in flight; each reply sends the next
    gc.disable()  # as in the load phase
    started = time.process_time()
    for frame in frames:
        conn.data_received(frame)
    elapsed = time.process_time() - started
    gc.enable()
    assert worker.ok == strikes, worker.errors
    return elapsed / strikes * 1e6


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
    # cwd too: ``python -m`` puts the working directory first on sys.path.
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, check=False)
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
    parser.add_argument("--hot-strikes", type=int, default=50_000, help="strikes of the hot path")
    args = parser.parse_args()
    for echo, label in ((True, "echo replies"), (False, "this server's reports")):
        runs = [asyncio.run(hot_path_us(echo, args.hot_strikes)) for _ in range(3)]
        print(
            f"hot path alone (this checkout, no system calls), {label}: "
            f"{statistics.median(runs):.1f} µs CPU per strike (median of 3)",
            flush=True,
        )
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
