"""``make soak``: every reliability scenario at full size, then the table in
docs/reliability.md rewritten (only between its ``soak:begin`` / ``soak:end`` markers).

Exits 1 if any scenario lost an acknowledged operation or failed a check; the honest
players' p99 against an unloaded run is measured and reported, and flagged when above 2x.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from tests.e2e.harness import ROOT
from tests.soak.abuse import abuse
from tests.soak.chaos import chaos
from tests.soak.probes import ScenarioResult
from tests.soak.storage import FAULTS, storage_fault

DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- soak:begin -->", "<!-- soak:end -->"
ABUSE_SIZES = {
    "flood of messages on one connection": 10_000,
    "connections for one user": 1_000,
    "slow readers": 10,
    "connections dropped mid-handshake": 1_000,
}


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def table(results: list[ScenarioResult], seconds: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Last `make soak`: {when}, {seconds / 60:.1f} min, on {platform.machine()} with "
        f"{os.cpu_count()} vCPUs (load average at the end {load}; the box is shared, so "
        "latency figures are noisy).",
        "",
        "| scenario | runs | operations acknowledged | faults injected | data lost "
        "| RSS before → after | checked / measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        notes = "; ".join(r.notes).replace("|", "/")
        lines.append(
            f"| {r.name} | {r.runs} | {r.operations:,} | {r.faults:,} | **{r.lost}** "
            f"| {_mib(r.rss_before_kib)} → {_mib(r.rss_after_kib)} | {notes} |"
        )
    return "\n".join(lines)


def rewrite(doc: Path, generated: str) -> None:
    text = doc.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{generated}\n{END}{tail}", encoding="utf-8")


async def run(console: Console, quick: bool) -> list[ScenarioResult]:
    results: list[ScenarioResult] = []
    scale = 10 if quick else 1
    steps: list[tuple[str, Callable[[Path], Awaitable[list[ScenarioResult]]]]] = [
        ("chaos", lambda d: _one(chaos(d, kills=20 // scale, clients=200 // scale))),
        *(
            (
                f"storage: {name}",
                lambda d, name=name: _one(
                    storage_fault(d, FAULTS[name](), runs=3, players=20 // scale, rounds=5)
                ),
            )
            for name in sorted(FAULTS)
        ),
        (
            "abuse",
            lambda d: abuse(
                d,
                {k: max(1, v // scale) for k, v in ABUSE_SIZES.items()},
                honest=10,
                strikes=30,
            ),
        ),
    ]
    for label, step in steps:
        started = time.monotonic()
        with console.status(f"[bold]{label}[/bold]…"), tempfile.TemporaryDirectory() as tmp:
            done = await step(Path(tmp))
        for result in done:
            flag = "[green]0 lost[/green]" if result.lost == 0 else f"[red]{result.lost} LOST[/red]"
            console.print(f"{result.name}: {flag}; " + "; ".join(result.notes))
        console.print(f"  ({time.monotonic() - started:.0f} s)")
        results.extend(done)
    return results


async def _one(work: Awaitable[ScenarioResult]) -> list[ScenarioResult]:
    return [await work]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes; no doc")
    args = parser.parse_args()
    console = Console()
    started = time.monotonic()
    results = asyncio.run(run(console, args.quick))
    seconds = time.monotonic() - started
    generated = table(results, seconds)
    if not args.quick:
        rewrite(DOC, generated)
        console.print(f"wrote {DOC.relative_to(ROOT)}")
    slow = [r.name for r in results if any(_ratio(n) > 2 for n in r.notes)]
    if slow:
        console.print(f"[yellow]others' p99 above 2x unloaded during: {', '.join(slow)}[/yellow]")
    lost = sum(r.lost for r in results)
    console.print(f"done in {seconds / 60:.1f} min; {lost} acknowledged operations lost")
    return 1 if lost else 0


def _ratio(note: str) -> float:
    """The median ratio of a note of ``abuse.p99_note`` (0 for any other note)."""
    found = re.search(r"median ([0-9.]+)x", note)
    return float(found.group(1)) if found else 0.0


if __name__ == "__main__":
    sys.exit(main())
