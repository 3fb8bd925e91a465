"""``raid-loadtest``: drive a raid server with many clients, then audit what it promised.

Exit status: 0 when the load ran and every audit check passed, 1 when a check failed,
2 for usage and connection errors. Every failure is one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

import raidclient
from raidclient.loadtest.run import Options, WorkerFailed, run
from raidclient.loadtest.setup import SetupError
from server.tokens import issue_token

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
ACTIONS = ("fight", "analyze")
MAX_MIX_WEIGHT = 100


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"raid-loadtest: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def parse_mix(text: str) -> tuple[str, ...]:
    """``fight=3,analyze=1`` -> the repeating pattern (fight, fight, fight, analyze)."""
    pattern: list[str] = []
    seen: set[str] = set()
    for part in text.split(","):
        name, eq, weight_text = part.strip().partition("=")
        if name not in ACTIONS:
            raise argparse.ArgumentTypeError(f"unknown action {name!r} (use fight and analyze)")
        if name in seen:
            raise argparse.ArgumentTypeError(f"{name} given twice")
        seen.add(name)
        try:
            weight = int(weight_text) if eq else 1
        except ValueError:
            raise argparse.ArgumentTypeError(f"weight of {name} is not an integer") from None
        if not 0 <= weight <= MAX_MIX_WEIGHT:
            raise argparse.ArgumentTypeError(f"weight of {name} must be 0-{MAX_MIX_WEIGHT}")
        pattern += [name] * weight
    if not pattern:
        raise argparse.ArgumentTypeError("the mix has no action with a weight above 0")
    # Interleave so that short runs see the mix too: fight, analyze, fight, fight, ...
    counts = {name: pattern.count(name) for name in seen if name in pattern}
    return tuple(_spread(counts, len(pattern)))


def _spread(counts: dict[str, int], total: int) -> list[str]:
    placed: dict[str, int] = dict.fromkeys(counts, 0)
    out = []
    for step in range(total):
        name = max(counts, key=lambda a: counts[a] * (step + 1) / total - placed[a])
        placed[name] += 1
        out.append(name)
    return out


def default_workers(cores: int | None = None) -> int:
    """Half the cores, at least one. One lean worker drives tens of thousands of strikes/s
    from one core, and a load test on the server's own machine must leave the server the
    rest: on a 2-vCPU box one worker and the server each get a core."""
    count = os.cpu_count() if cores is None else cores
    return max(1, (count or 1) // 2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="raid-loadtest",
        description=(
            "Drive a World-Threat Raid server with N clients striking for S seconds, then "
            "audit it: hp conserved, strike counts, idempotent resends, contiguous events, "
            "strike rewards. See docs/client.md."
        ),
    )
    add = parser.add_argument
    add("--url", required=True, help="the server's WebSocket URL, ws://HOST:PORT/ws")
    add(
        "--admin-token",
        default=os.environ.get("RAID_ADMIN_TOKEN"),
        help="an admin token for the set-up (default: $RAID_ADMIN_TOKEN, or one signed "
        "with --secret)",
    )
    add(
        "--secret",
        default=os.environ.get("RAID_SECRET"),
        help="the server's token secret, to sign the synthetic players' tokens "
        "(default: $RAID_SECRET)",
    )
    add("--tokens", type=Path, help="a file of player tokens, one per line, instead of --secret")
    add("--clients", type=_positive_int, default=10, help="connections (players), default 10")
    add("--duration", type=_positive_float, default=10.0, help="seconds of load, default 10")
    add(
        "--rate",
        type=_positive_float,
        help="open loop: total strikes/s offered, spread evenly over the clients "
        "(default: closed loop, each client strikes again as soon as it may)",
    )
    add(
        "--mix",
        type=parse_mix,
        default=("fight",),
        help="actions and weights, e.g. fight=3,analyze=1 (default: fight)",
    )
    add("--subscribe", action="store_true", help="every client also subscribes to the raid")
    add(
        "--workers",
        type=_positive_int,
        default=default_workers(),
        help="worker processes (default: half the cores, at least 1: the other half is left "
        "to a server on the same machine; see docs/client.md)",
    )
    add("--json", type=Path, dest="json_path", help="write the results as JSON to this file")
    add("--plot", type=Path, dest="plot_path", help="write a PNG plot to this file")
    add("--raid", dest="raid_id", help="use this existing raid instead of creating one")
    add(
        "--boss",
        help="boss template of the raid to create (default: the server's first template)",
    )
    add(
        "--roster",
        type=_positive_int,
        default=64,
        help="characters granted to each player (default 64); with character_rest = "
        '"event" each strike uses up one',
    )
    add("--format", dest="fmt", choices=("msgpack", "json"), default="msgpack")
    add("--no-audit", dest="audit", action="store_false", help="skip the audit")
    add("--quiet", action="store_true", help="no live progress")
    add(
        "--echo-ceiling",
        action="store_true",
        help="also drive a bare websockets+msgpack echo server the same way and print the ratio",
    )
    add(
        "--drain-timeout",
        type=_positive_float,
        default=10.0,
        help="after the load stops, wait for answers until none came for this many seconds "
        "(default 10; at most 10 times that in all)",
    )
    add(
        "--sample",
        type=_positive_int,
        dest="sample_size",
        default=20,
        help="acknowledged strikes per worker resent by the audit (default 20)",
    )
    return parser


def options_from(args: argparse.Namespace) -> Options:
    admin_token = args.admin_token
    if admin_token is None and args.secret:
        admin_token = _admin_token(args.secret)
    return Options(
        url=args.url,
        admin_token=admin_token,
        secret=args.secret,
        tokens=args.tokens,
        clients=args.clients,
        duration=args.duration,
        rate=args.rate,
        actions=args.mix,
        subscribe=args.subscribe,
        workers=args.workers,
        json_path=args.json_path,
        plot_path=args.plot_path,
        raid_id=args.raid_id,
        boss=args.boss,
        roster=args.roster,
        fmt=args.fmt,
        audit=args.audit,
        quiet=args.quiet,
        echo_ceiling=args.echo_ceiling,
        drain_timeout=args.drain_timeout,
        sample_size=args.sample_size,
    )


def _admin_token(secret: str) -> str:
    return issue_token(secret, "raid-loadtest", "admin", 24 * 3600, time.time())


def print_result(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"{result['clients']} clients, {result['mode']} loop")
    table.add_column("", style="bold")
    table.add_column("server", justify="right")
    echo = result.get("echo")
    if echo:
        table.add_column("echo server", justify="right")
    latency = result["latency_ms"]

    def row(label: str, ours: str, theirs: str = "") -> None:
        table.add_row(label, ours, *([theirs] if echo else []))

    row(
        "strikes/s",
        f"{result['strikes_per_s']:,.0f}",
        f"{echo['strikes_per_s']:,.0f}" if echo else "",
    )
    row("strikes", f"{result['strikes']:,}", f"{echo['strikes']:,}" if echo else "")
    for key in ("p50", "p95", "p99", "max"):
        row(
            f"{key} ms",
            f"{latency[key]:.2f}",
            f"{echo['latency_ms'][key]:.2f}" if echo else "",
        )
    errors = ", ".join(f"{code} {n}" for code, n in result["errors"].items()) or "none"
    row(
        "errors",
        errors,
        ", ".join(f"{c} {n}" for c, n in echo["errors"].items()) or "none" if echo else "",
    )
    row(
        "tool CPU µs/strike",
        f"{result['tool_cpu_us_per_strike']:.0f}",
        f"{echo['tool_cpu_us_per_strike']:.0f}" if echo else "",
    )
    if echo:
        row("ratio", f"{echo['ratio']:.2f}x of the echo server")
    console.print(table)
    audit = result["audit"]
    if audit.get("skipped"):
        console.print("audit: skipped (--no-audit)")
        return
    checks = Table(title="audit")
    checks.add_column("check")
    checks.add_column("result")
    checks.add_column("detail")
    for name, check in audit["checks"].items():
        mark = "skip" if check.get("skipped") else ("pass" if check["passed"] else "FAIL")
        style = "yellow" if check.get("skipped") else ("green" if check["passed"] else "red")
        checks.add_row(name, f"[{style}]{mark}[/{style}]", check["detail"])
    console.print(checks)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = options_from(args)
    out = Console()
    err = Console(stderr=True)
    try:
        result, driven = asyncio.run(run(options, err))
    except KeyboardInterrupt:
        print("raid-loadtest: interrupted", file=sys.stderr)
        return EXIT_USAGE
    except (SetupError, WorkerFailed, raidclient.RaidClientError, OSError, ValueError) as exc:
        print(f"raid-loadtest: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    print_result(result, out)
    if options.json_path is not None:
        try:
            options.json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            print(
                f"raid-loadtest: cannot write {options.json_path}: {exc.strerror}", file=sys.stderr
            )
            return EXIT_USAGE
    if options.plot_path is not None:
        from raidclient.loadtest.plot import write_plot

        title = f"raid-loadtest: {result['clients']} clients, {result['mode']} loop, {options.url}"
        try:
            write_plot(options.plot_path, title, result["timeline"], driven.merged.total)
        except OSError as exc:
            print(
                f"raid-loadtest: cannot write {options.plot_path}: {exc.strerror}", file=sys.stderr
            )
            return EXIT_USAGE
    if result["strikes"] == 0 and not result["audit"]["checks"]:
        print("raid-loadtest: no strike was acknowledged", file=sys.stderr)
        return EXIT_FAILED
    if not result["audit"]["passed"]:
        failed = [n for n, c in result["audit"]["checks"].items() if not c["passed"]]
        print(f"raid-loadtest: audit failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
