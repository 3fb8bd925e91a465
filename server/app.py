"""Running the server: open the database, restore raids, serve, shut down gracefully."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from actors.service import RaidService
from persistence.database import Database
from persistence.lock import DatabaseLock
from raid.config import Config
from server.demo import DEMO_PLAYERS, demo_user, seed_demo
from server.errors import StartupError
from server.gateway import Gateway, GatewayConfig, serve
from server.http import load_index_html, make_http_handler
from server.metrics import Metrics
from server.tokens import issue_token

log = logging.getLogger("raid.app")

DEFAULT_SECRET = "change-me"
SHUTDOWN_GRACE_S = 10.0


@dataclass(frozen=True, slots=True)
class ServeOptions:
    db_path: Path
    host: str
    port: int
    demo: bool
    secret: str


async def run(config: Config, options: ServeOptions) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    if options.secret == DEFAULT_SECRET and not options.demo:
        raise StartupError(
            "refusing to start with the default secret: set RAID_SECRET or [server] secret "
            "(or use --demo)"
        )
    lock = DatabaseLock.acquire(options.db_path)
    tune_runtime()
    try:
        await _serve(config, options)
    finally:
        lock.release()


async def _serve(config: Config, options: ServeOptions) -> None:
    db = await Database.open(
        options.db_path,
        synchronous=config.persistence.synchronous.value,
        busy_timeout_ms=config.persistence.busy_timeout_ms,
    )
    metrics = Metrics()
    service = RaidService(config, db, metrics)
    try:
        await service.start()
        demo_raid = await seed_demo(service) if options.demo else None
        freeze_startup_state()
        cfg = config.server
        gateway = Gateway(
            service,
            GatewayConfig(
                secret=options.secret,
                max_frame_bytes=cfg.max_frame_bytes,
                messages_per_s=cfg.messages_per_s,
                message_burst=cfg.message_burst,
                max_pending_bytes=cfg.max_pending_bytes,
                ping_interval_s=cfg.ping_interval_s,
                ping_timeout_s=cfg.ping_timeout_s,
                compression=cfg.compression,
                hello_timeout_s=cfg.hello_timeout_s,
            ),
            metrics,
        )
        handler = make_http_handler(lambda: service.ready, load_index_html(), metrics.render)
        server = await serve(gateway, options.host, options.port, handler)
        port = server.sockets[0].getsockname()[1] if server.sockets else options.port
        log.info("listening", extra={"host": options.host, "port": port})
        _banner(options, port, demo_raid)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("shutting down")
        server.close(close_connections=False)
        await gateway.close_all()
        await asyncio.wait_for(server.wait_closed(), SHUTDOWN_GRACE_S)
    finally:
        await service.stop()
        await db.close()
    log.info("stopped")


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
