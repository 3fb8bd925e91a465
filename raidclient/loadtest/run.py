"""One load-test run: set-up, worker processes, the audit, the echo ceiling, the results."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import queue
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

import raidclient
from raidclient.loadtest.audit import AuditInput, audit
from raidclient.loadtest.echo import EchoServer
from raidclient.loadtest.plan import CheckSummary, LoadSummary, Mode, Player, WorkerSpec
from raidclient.loadtest.progress import Display
from raidclient.loadtest.setup import (
    Baseline,
    SetupError,
    make_run_id,
    player_logins,
    prepare,
    read_baseline,
    read_tokens,
)
from raidclient.loadtest.stats import Merged, latency_ms
from raidclient.loadtest.worker import worker_main

START_DELAY_S = 0.3  # between "everyone connected" and the first strike
AFTER_LOAD_PATIENCE_S = 300.0  # the audit's reads retry this long for a backlogged server
WATCHDOG_POLL_S = 0.5  # how often the watchdog looks at silent or dead workers
WORKER_SILENCE_S = 60.0  # a worker silent this long (no heartbeat) is hung
WORKER_STARTUP_S = 120.0  # ... or this long before its first message (spawn and imports)


@dataclass(frozen=True, slots=True)
class Options:
    """Everything the command line decides (see cli.py for the flags)."""

    url: str
    admin_token: str | None
    secret: str | None
    tokens: Path | None
    clients: int
    duration: float
    rate: float | None
    actions: tuple[str, ...]
    subscribe: bool
    workers: int
    json_path: Path | None
    plot_path: Path | None
    raid_id: str | None
    boss: str | None
    roster: int
    fmt: str
    audit: bool
    quiet: bool
    echo_ceiling: bool
    drain_timeout: float
    sample_size: int

    @property
    def mode(self) -> Mode:
        return "closed" if self.rate is None else "open"


@dataclass
class Driven:
    """What one drive of the workers measured."""

    merged: Merged
    elapsed_s: float  # from the start to the last acknowledgement (at least the duration)
    parent_cpu_s: float = 0.0  # CPU seconds of this (parent) process during the load phase
    loads: list[LoadSummary] = field(default_factory=list)
    checks: list[CheckSummary] = field(default_factory=list)


class WorkerFailed(Exception):
    """A worker could not set up or died; the message is one line."""


class Watchdog:
    """Reads the workers' messages and says when a worker is dead or hung.

    Every worker sends a heartbeat each ``HEARTBEAT_S`` from its event loop, whatever it is
    doing (connecting thousands of clients, draining, resending unanswered strikes), and
    bounds each of its phases itself. So a phase may take as long as a busy box needs; a
    worker is hung only when nothing at all came from it for ``silence_s`` seconds (its
    loop blocked or starved that long; ``startup_s`` before its first message, which
    comes after a fresh interpreter has imported everything), and dead when its process
    exits with an error.
    """

    def __init__(
        self,
        inbox: multiprocessing.queues.Queue[Any],
        processes: Sequence[multiprocessing.process.BaseProcess],
        silence_s: float = WORKER_SILENCE_S,
        startup_s: float = WORKER_STARTUP_S,
    ) -> None:
        self.inbox = inbox
        self.processes = processes
        self.silence_s = silence_s
        now = time.monotonic()
        # By worker id: when it was last heard from, and how long it may stay silent.
        self.last_heard = [now] * len(processes)
        self.allowed = [max(silence_s, startup_s)] * len(processes)

    async def next_message(self) -> tuple[Any, ...]:
        """The next message other than a heartbeat; raises WorkerFailed."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                message: tuple[Any, ...] = self.inbox.get_nowait()
            except queue.Empty:
                # Judged only with the queue empty: every heartbeat sent so far has been
                # read, even after this process was busy elsewhere (the audit's reads).
                self._check()
                # A thread blocks on the queue: no polling, so the parent costs next to
                # no CPU while the workers measure (it shares the box with them).
                try:
                    message = await loop.run_in_executor(None, self._get)
                except queue.Empty:
                    continue
            self.last_heard[message[1]] = time.monotonic()
            self.allowed[message[1]] = self.silence_s
            if message[0] != "alive":
                return message

    def _get(self) -> tuple[Any, ...]:
        message: tuple[Any, ...] = self.inbox.get(timeout=WATCHDOG_POLL_S)
        return message

    def _check(self) -> None:
        dead = [p for p in self.processes if p.exitcode not in (None, 0)]
        if dead:
            raise WorkerFailed(f"worker process {dead[0].name} died (exit code {dead[0].exitcode})")
        now = time.monotonic()
        for worker_id, heard in enumerate(self.last_heard):
            if now - heard > self.allowed[worker_id]:
                raise WorkerFailed(
                    f"worker {worker_id} sent nothing for {self.allowed[worker_id]:g} s "
                    "(hung or starved)"
                )


async def drive(
    specs: list[WorkerSpec],
    duration: float,
    display: Display,
    between: Callable[[], Awaitable[tuple[int, int]]] | None,
) -> Driven:
    """Run the workers through connect -> load -> (checks); ``between`` runs after the
    load and returns (base strike count, final strike count) for the checks."""
    context = multiprocessing.get_context("spawn")
    inbox: multiprocessing.queues.Queue[Any] = context.Queue()
    outboxes: list[multiprocessing.queues.Queue[Any]] = [context.Queue() for _ in specs]
    processes = [
        context.Process(
            target=worker_main,
            args=(spec, inbox, outbox),
            name=f"raid-loadtest-worker-{spec.worker_id}",
            daemon=True,
        )
        for spec, outbox in zip(specs, outboxes, strict=True)
    ]
    for process in processes:
        process.start()
    merged = Merged()
    driven = Driven(merged, duration)
    watchdog = Watchdog(inbox, processes)
    try:
        display.status(f"connecting {sum(len(s.players) for s in specs)} clients")
        ready = 0
        while ready < len(specs):
            message = await watchdog.next_message()
            if message[0] == "fatal":
                raise WorkerFailed(message[2])
            ready += message[0] == "ready"
        t0 = time.monotonic() + START_DELAY_S
        for outbox in outboxes:
            outbox.put(("start", t0, t0 + duration))
        cpu_before = time.process_time()
        while len(driven.loads) < len(specs):
            message = await watchdog.next_message()
            if message[0] == "window":
                merged.add(message[2])
                display.update(merged, time.monotonic() - t0)
            elif message[0] == "loaded":
                driven.loads.append(message[2])
        driven.parent_cpu_s = time.process_time() - cpu_before
        last = max((load.last_reply_at for load in driven.loads), default=0.0)
        driven.elapsed_s = max(duration, last - t0)
        if between is None:
            for outbox in outboxes:
                outbox.put(("stop",))
            return driven
        display.status("auditing")
        base, final = await between()
        for outbox in outboxes:
            outbox.put(("check", base, final))
        while len(driven.checks) < len(specs):
            message = await watchdog.next_message()
            if message[0] == "checked":
                driven.checks.append(message[2])
        return driven
    except BaseException:
        for outbox in outboxes:
            outbox.put(("stop",))  # workers still waiting for a command end now
        raise
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for channel in (inbox, *outboxes):
            channel.close()
            channel.cancel_join_thread()  # never block the exit on a dead worker's pipe


def _specs(
    options: Options,
    players: tuple[Player, ...],
    raid_id: str,
    run_id: str,
    *,
    echo: bool,
    url: str,
) -> list[WorkerSpec]:
    workers = max(1, min(options.workers, len(players)))
    rate = None if options.rate is None else options.rate / len(players)
    return [
        WorkerSpec(
            worker_id=w,
            url=url,
            fmt=options.fmt,
            raid_id=raid_id,
            run_id=run_id,
            players=players[w::workers],
            mode=options.mode,
            rate_per_client=rate,
            actions=options.actions,
            subscribe=options.subscribe and not echo,
            echo=echo,
            sample_size=options.sample_size,
            drain_timeout_s=options.drain_timeout,
            clients_total=len(players),
        )
        for w in range(workers)
    ]


def summary(driven: Driven) -> dict[str, Any]:
    merged = driven.merged
    # The workers' CPU during the load and drain, plus this process's (merging windows).
    workers = sum(load.cpu_s for load in driven.loads)
    cpu = workers + driven.parent_cpu_s
    return {
        "tool_cpu_s": cpu,
        "tool_cpu_parent_s": driven.parent_cpu_s,
        "tool_cpu_us_per_strike": cpu / merged.sent * 1e6 if merged.sent else 0.0,
        "strikes": merged.ok,
        "sent": merged.sent,
        "strikes_per_s": merged.ok / driven.elapsed_s if driven.elapsed_s else 0.0,
        "latency_ms": latency_ms(merged.total),
        "errors": dict(sorted(merged.errors.items())),
    }


async def run(options: Options, console: Console) -> tuple[dict[str, Any], Driven]:
    """Set up, drive, audit; returns the JSON result and the server drive."""
    admin_token = options.admin_token
    if admin_token is None:
        raise SetupError("pass --admin-token (or set RAID_ADMIN_TOKEN)")
    run_id = make_run_id()
    tokens = read_tokens(options.tokens) if options.tokens is not None else None
    ttl = options.duration + 3600
    logins = player_logins(run_id, options.clients, options.secret, tokens, ttl)
    live = not options.quiet
    with Display("set-up", options.duration, console, live) as display:
        display.status(f"granting {options.roster} characters to each of {len(logins)} players")
        prepared = await prepare(
            options.url,
            admin_token,
            run_id=run_id,
            logins=logins,
            raid_id=options.raid_id,
            boss=options.boss,
            roster=options.roster,
            fmt=options.fmt,
        )
        before = await read_baseline(options.url, admin_token, prepared.raid_id, options.fmt)
    reads: dict[str, Baseline] = {}
    unreadable: list[str] = []  # why the raid could not be read after the load

    async def read_after() -> Baseline | None:
        """The raid after the load; None (and the reason noted) if a server that stopped
        answering still did not answer within AFTER_LOAD_PATIENCE_S: the load's figures
        are still reported, and the audit fails."""
        try:
            return await read_baseline(
                options.url, admin_token, prepared.raid_id, options.fmt, AFTER_LOAD_PATIENCE_S
            )
        except raidclient.RaidClientError as exc:
            unreadable.append(
                f"the server did not answer raid.hub within {AFTER_LOAD_PATIENCE_S:g} s "
                f"after the load ({exc})"
            )
            return None

    async def between() -> tuple[int, int]:
        after = await read_after()
        if after is None:
            return before.strike_count, before.strike_count  # the checks wait for nothing
        reads["after"] = after
        return before.strike_count, after.strike_count

    specs = _specs(options, prepared.players, prepared.raid_id, run_id, echo=False, url=options.url)
    with Display(f"raid {prepared.raid_id}", options.duration, console, live) as display:
        driven = await drive(specs, options.duration, display, between if options.audit else None)
    result: dict[str, Any] = {
        "url": options.url,
        "raid_id": prepared.raid_id,
        "run_id": run_id,
        "clients": len(prepared.players),
        "workers": len(specs),
        "format": options.fmt,
        "mode": options.mode,
        "rate": options.rate,
        "mix": _mix_text(options.actions),
        "subscribe": options.subscribe,
        "duration_s": driven.elapsed_s,
        **summary(driven),
        "in_doubt": sum(load.in_doubt for load in driven.loads),
        "resent_after_drain": sum(load.resolved for load in driven.loads),
        "timeline": driven.merged.timeline(),
    }
    after_checks = await read_after() if options.audit and not unreadable else None
    if options.audit and (after_checks is None or "after" not in reads):
        detail = unreadable[0] if unreadable else "the raid could not be read after the load"
        result["audit"] = {
            "passed": False,
            "checks": {"raid_readable": {"passed": False, "detail": detail}},
        }
    elif options.audit and after_checks is not None:
        result["audit"] = audit(
            AuditInput(
                before=before,
                after=reads["after"],
                after_checks=after_checks,
                loads=driven.loads,
                checks=driven.checks,
                subscribed=options.subscribe,
            )
        )
    else:
        result["audit"] = {"passed": True, "skipped": True, "checks": {}}
    result["echo"] = None
    if options.echo_ceiling:
        result["echo"] = await _echo_ceiling(options, prepared.players, run_id, console, result)
    return result, driven


async def _echo_ceiling(
    options: Options,
    players: tuple[Player, ...],
    run_id: str,
    console: Console,
    result: dict[str, Any],
) -> dict[str, Any]:
    server = EchoServer()
    url = server.start()
    try:
        specs = _specs(options, players, "echo", run_id, echo=True, url=url)
        plain = [replace(spec, subscribe=False) for spec in specs]
        with Display("echo server", options.duration, console, not options.quiet) as display:
            driven = await drive(plain, options.duration, display, None)
    finally:
        server.stop()
    echo = summary(driven)
    ratio = result["strikes_per_s"] / echo["strikes_per_s"] if echo["strikes_per_s"] else 0.0
    return {
        "strikes_per_s": echo["strikes_per_s"],
        "strikes": echo["strikes"],
        "latency_ms": echo["latency_ms"],
        "errors": echo["errors"],
        "tool_cpu_us_per_strike": echo["tool_cpu_us_per_strike"],
        "ratio": ratio,
    }


def _mix_text(actions: tuple[str, ...]) -> str:
    counts: dict[str, int] = {}
    for action in actions:
        counts[action] = counts.get(action, 0) + 1
    return ",".join(f"{a}={n}" for a, n in counts.items())
