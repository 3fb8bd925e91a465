"""Running the server: open the database, restore raids, serve, shut down gracefully."""

from __future__ import annotations

import asyncio
import errno
import functools
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.server import Server

from actors.service import RaidService
from persistence.database import Database
from persistence.lock import DatabaseLock
from raid.config import Config
from server.demo import DEMO_PLAYERS, demo_tokens_json, demo_user, seed_demo
from server.errors import StartupError
from server.gateway import Gateway, GatewayConfig, serve
from server.http import HttpHandler, load_assets, load_index_html, make_http_handler
from server.metrics import Metrics
from server.tokens import check_secret, issue_token

log = logging.getLogger("raid.app")

SHUTDOWN_GRACE_S = 10.0


@dataclass(frozen=True, slots=True)
class ServeOptions:
    db_path: Path
    host: str
    port: int
    demo: bool
    secret: str


async def run(
    config: Config, options: ServeOptions, listening: Callable[[], None] = lambda: None
) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully.

    ``listening`` is called once the port is open: before that, a failure means the server
    never served (the CLI then removes the files it created).
    """
    try:
        check_secret(options.secret, options.demo, options.host)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    lock = DatabaseLock.acquire(options.db_path)
    tune_runtime()
    try:
        await _serve(config, options, listening)
    finally:
        lock.release()


async def _listen(gateway: Gateway, options: ServeOptions, handler: HttpHandler) -> Server:
    try:
        return await serve(gateway, options.host, options.port, handler)
    except OSError as exc:
        where = f"{options.host}:{options.port}"
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"address {where} is already in use: another raid-server? "
                f"(`ss -ltnp | grep :{options.port}` shows who); stop it or pick --port"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise StartupError(f"cannot listen on {where}: no such local address") from None
        raise StartupError(f"cannot listen on {where}: {exc.strerror or exc}") from None


async def _serve(config: Config, options: ServeOptions, listening: Callable[[], None]) -> None:
    started = time.perf_counter()
    db = await Database.open(
        options.db_path,
        synchronous=config.persistence.synchronous.value,
        busy_timeout_ms=config.persistence.busy_timeout_ms,
        page_cache_mib=config.persistence.page_cache_mib,
    )
    metrics = Metrics()
    service = RaidService(config, db, metrics)
    try:
        await service.start()
        restored_raids = len(service.live)  # before --demo may create one
        demo_raid = await seed_demo(service) if options.demo else None
        freeze_startup_state()
        cfg = config.server
        gateway = Gateway(
            service,
            GatewayConfig.of(cfg, options.secret),
            metrics,
        )
        demo_tokens = None
        if demo_raid is not None:
            demo_tokens = functools.partial(demo_tokens_json, options.secret, demo_raid)
        handler = make_http_handler(
            lambda: service.ready,
            load_index_html(),
            metrics.render,
            assets=load_assets(),
            demo_tokens=demo_tokens,
        )
        server = await _listen(gateway, options, handler)
        listening()
        stop = asyncio.Event()  # set by SIGTERM or SIGINT, from the moment the port is open
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        port = server.sockets[0].getsockname()[1] if server.sockets else options.port
        log.info("listening", extra={"host": options.host, "port": port})
        log.info(
            "ready in %.2f s: %d raids restored, %d journal entries replayed; "
            "serving on http://%s:%d/ (Ctrl+C to stop)",
            time.perf_counter() - started,
            restored_raids,
            service.replayed_entries,
            options.host,
            port,
            extra={"raids": restored_raids, "replayed": service.replayed_entries},
        )
        _banner(options, port, demo_raid)
        await stop.wait()
        log.info("shutting down: closing %d connections", len(gateway.sessions))
        server.close(close_connections=False)
        await gateway.close_all()
        await asyncio.wait_for(server.wait_closed(), SHUTDOWN_GRACE_S)
    finally:
        stopping = time.perf_counter()
        await service.stop()
        await db.close()
    log.info(
        "stopped in %.2f s: journal flushed, %d final snapshots taken, database closed",
        time.perf_counter() - stopping,
        service.final_snapshots,
        extra={"snapshots": service.final_snapshots},
    )


GC_THRESHOLD = (50_000, 50, 100)
"""Young-generation collections every 50,000 allocations instead of 700: a strike allocates
dozens of short-lived objects, and the default made the collector a measurable share of the
strike path (docs/benchmarks.md)."""

SWITCH_INTERVAL_S = 0.001
"""How long a busy thread may keep the GIL while another waits (CPython's default is 5 ms).
Every request crosses two or three threads; with 5 ms slices a snapshot being encoded could
hold a RaidActor's answer up to 60 ms, with 1 ms the pause stays under 5 ms, at no cost in
throughput (docs/benchmarks.md)."""


EVENT_LOOP_ENV = "RAID_EVENT_LOOP"
"""``uvloop`` (the default when installed) or ``asyncio``: which event loop ``serve`` runs."""


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop the server runs on: uvloop, unless RAID_EVENT_LOOP=asyncio.

    uvloop's C event loop made the lean one-process prototype of the strike path 23 % faster
    (13,700 against 11,100 strikes/s); on our loaded box the A/B was within noise
    (docs/benchmarks.md). The standard loop stays one environment variable away for
    debugging (PYTHONASYNCIODEBUG needs it).
    """
    choice = os.environ.get(EVENT_LOOP_ENV, "uvloop")
    if choice == "asyncio":
        return asyncio.new_event_loop
    if choice != "uvloop":
        raise StartupError(f"{EVENT_LOOP_ENV} must be uvloop or asyncio, not {choice!r}")
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def tune_runtime() -> None:
    """Before start-up: GC thresholds and GIL slices for many short-lived, cross-thread tasks."""
    gc.set_threshold(*GC_THRESHOLD)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def freeze_startup_state() -> None:
    """After start-up: move the restored, long-lived state out of the collector's scans."""
    gc.collect()
    gc.freeze()


def _banner(options: ServeOptions, port: int, demo_raid: str | None) -> None:
    lines = [
        f"World-Threat Raid server on {options.host}:{port}",
        f"  browser client: http://{options.host}:{port}/",
        f"  websocket:      ws://{options.host}:{port}/ws",
        f"  database:       {options.db_path}",
        "  stop:           Ctrl+C (or SIGTERM): final snapshot, then exit",
    ]
    if demo_raid is not None:
        now = time.time()
        lines.append(f"  demo raid:      {demo_raid}")
        for index in range(3):
            user = demo_user(index)
            token = issue_token(options.secret, user, "player", 86400, now)
            lines.append(f"  token {user}: {token}")
        admin = issue_token(options.secret, "admin", "admin", 86400, now)
        lines.append(f"  token admin:    {admin}")
        lines.append(f"  ({DEMO_PLAYERS} demo players: player01 … player{DEMO_PLAYERS:02d})")
    print("\n".join(lines), flush=True)
    sys.stdout.flush()
