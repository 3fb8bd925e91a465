"""``raid-server host``: a raid host process (the raids, their journal, no WebSockets).

Start-up: the database lock (like ``serve``), then the lease (persistence/leases.py: a new
generation that fences every journal and snapshot write), the raids restored, then the NATS
subscriptions. A lease still held by a host on this machine is taken over at once: holding
the database lock proves that host is dead (the kernel releases the lock with its process).
A lease held by a host elsewhere is refused until it expires, unless ``--take-over``.

The lease is renewed every third of its lifetime; if a renewal finds it taken over, the host
stops at once (exit 1): its writes are refused anyway.

SIGTERM or SIGINT: stop taking requests, answer those under way, flush the journal, take the
final snapshots, close NATS and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client as NATS

from actors.service import RaidService
from persistence.database import Database
from persistence.leases import Fenced, Lease, LeaseHeld, acquire_lease, renew_lease
from persistence.lock import DatabaseLock
from raid.config import Config
from server.app import freeze_startup_state, tune_runtime
from server.errors import StartupError
from server.metrics import Metrics
from server.raid_host import RaidHost
from server.raid_link import LEASE_TTL_S

log = logging.getLogger("raid.host")
nats_log = logging.getLogger("raid.nats")

DEFAULT_LEASE_TTL_S = LEASE_TTL_S


@dataclass(frozen=True, slots=True)
class HostOptions:
    db_path: Path
    nats_url: str
    prefix: str
    lease_ttl_s: float = DEFAULT_LEASE_TTL_S
    take_over: bool = False


def holder_name() -> str:
    """``<hostname>/<pid>``: who holds a lease, and whether it ran on this machine."""
    return f"{socket.gethostname()}/{os.getpid()}"


class LinkEvents:
    """Who to tell when the NATS connection drops or comes back (set once the parts exist)."""

    def __init__(self) -> None:
        self.on_disconnect: Callable[[], None] = lambda: None
        self.on_reconnect: Callable[[], None] = lambda: None


async def connect_nats(url: str, name: str, events: LinkEvents | None = None) -> NATS:
    """A NATS connection that reconnects for ever (a NATS restart is survived)."""
    told = events or LinkEvents()

    async def error(exc: Exception) -> None:
        nats_log.warning("nats: %s", exc)

    async def disconnected() -> None:
        nats_log.warning("nats: disconnected")
        told.on_disconnect()

    async def reconnected() -> None:
        nats_log.info("nats: reconnected")
        told.on_reconnect()

    try:
        return await nats.connect(
            url,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            allow_reconnect=True,
            error_cb=error,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
        )
    except (OSError, nats.errors.Error) as exc:
        raise StartupError(f"cannot connect to NATS at {url}: {exc}") from None


async def run_host(config: Config, options: HostOptions) -> int:
    """Serve raids on NATS until SIGTERM/SIGINT; the exit code."""
    lock = DatabaseLock.acquire(options.db_path)
    tune_runtime()
    try:
        return await _serve(config, options)
    finally:
        lock.release()


async def _serve(config: Config, options: HostOptions) -> int:
    db = await Database.open(
        options.db_path,
        synchronous=config.persistence.synchronous.value,
        busy_timeout_ms=config.persistence.busy_timeout_ms,
        page_cache_mib=config.persistence.page_cache_mib,
    )
    service: RaidService | None = None
    nc: NATS | None = None
    host: RaidHost | None = None
    code = 0
    try:
        lease = await acquire(db, options)
        db.fence = lease.fence
        service = RaidService(config, db, Metrics())
        await service.start()
        freeze_startup_state()
        events = LinkEvents()
        nc = await connect_nats(options.nats_url, f"raid-host {holder_name()}", events)
        host = RaidHost(service, nc, options.prefix)
        events.on_reconnect = host.reconnected  # gateways fail what was in flight meanwhile
        await host.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        fenced = asyncio.create_task(_renew(db, lease, options.lease_ttl_s, stop))
        orphan = watch_supervisor(stop)
        log.info(
            "raid host ready: %d raids, lease generation %d, NATS %s",
            len(service.live),
            lease.fence.generation,
            options.nats_url,
        )
        announce_ready({"ready": "host", "generation": lease.fence.generation})
        await stop.wait()
        orphan.cancel()
        fenced.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            code = await fenced
    finally:
        if host is not None:
            await host.stop()
        if service is not None:
            await service.stop()
        if nc is not None:
            with contextlib.suppress(nats.errors.Error):
                await nc.close()
        await db.close()
    log.info("raid host stopped")
    return code


async def acquire(db: Database, options: HostOptions) -> Lease:
    """Take the lease; one held by a dead host of this machine is taken over at once."""
    me = holder_name()
    now = time.time()
    try:
        return await acquire_lease(db, me, options.lease_ttl_s, now, take_over=options.take_over)
    except LeaseHeld as held:
        if held.holder.split("/", 1)[0] == me.split("/", 1)[0]:
            # We hold the database lock: that host of this machine is dead.
            return await acquire_lease(db, me, options.lease_ttl_s, now, take_over=True)
        raise StartupError(str(held)) from None


async def _renew(db: Database, lease: Lease, ttl_s: float, stop: asyncio.Event) -> int:
    """Renew the lease until cancelled; exit code 1 (and stop) once it was taken over."""
    while True:
        await asyncio.sleep(ttl_s / 3)
        try:
            lease = await renew_lease(db, lease, ttl_s, time.time())
        except Fenced as exc:
            log.error("raid host fenced: %s; stopping", exc)
            stop.set()
            return 1


SUPERVISOR_ENV = "RAID_SUPERVISOR_PID"
"""Set by ``serve --workers`` for its children: they stop if the supervisor disappears."""


def watch_supervisor(stop: asyncio.Event) -> asyncio.Task[None]:
    """Set ``stop`` if the supervising process is gone (children run in their own session,
    so a SIGKILL of the supervisor would otherwise leave them serving on)."""

    async def watch() -> None:
        supervisor = os.environ.get(SUPERVISOR_ENV)
        if not supervisor:
            return
        while os.getppid() == int(supervisor):
            await asyncio.sleep(1.0)
        log.error("the supervisor (pid %s) is gone: stopping", supervisor)
        stop.set()

    return asyncio.create_task(watch(), name="watch-supervisor")


def announce_ready(fields: dict[str, object]) -> None:
    """The one stdout line a supervisor waits for (``serve --workers``)."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()
