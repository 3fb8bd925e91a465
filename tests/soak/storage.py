"""Storage faults under a running server, without root: a full disk (the server's file size
limit lowered with ``prlimit``, so SQLite's writes fail with EFBIG as on a full disk), a
database locked by another process (``BEGIN EXCLUSIVE`` held past ``busy_timeout_ms``), and
the database file removed while running (persistence/file_guard.py).

Each run: players strike; the fault is injected; their strikes answer ``unavailable`` (never
``internal``, never an acknowledgement that is later missing); the fault is removed; strikes
are acknowledged again; the server is stopped and restarted, and the database is audited
against every acknowledgement (probes.audit).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from raidclient import RaidClient, ServerError, connect
from tests.e2e.harness import ServerProcess, character, start_server, token, write_config
from tests.soak.probes import Acknowledged, ScenarioResult, audit, rss_kib
from tests.timeouts import TIMEOUT

RAID = "store"
CONFIG = "\n[actors]\nrequest_timeout_s = 5\n"
BUSY_TIMEOUT_MS = 200


class Fault:
    """One storage fault: ``inject`` it into a running server, ``remove`` it."""

    name = ""

    def inject(self, server: ServerProcess) -> None: ...

    def remove(self, server: ServerProcess) -> None: ...


class DiskFull(Fault):
    """Every write past 4 KiB of any file fails (EFBIG), as on a full disk: the WAL's first
    frame ends past it. The server's log file is hit too, as it would be."""

    name = "disk full"

    def inject(self, server: ServerProcess) -> None:
        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))

    def remove(self, server: ServerProcess) -> None:
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, unlimited)


class Locked(Fault):
    """Another process holds the write lock (``BEGIN EXCLUSIVE``) longer than the server's
    ``busy_timeout_ms``: "database is locked"."""

    name = "database locked"

    def __init__(self) -> None:
        self.holder: sqlite3.Connection | None = None

    def inject(self, server: ServerProcess) -> None:
        self.holder = sqlite3.connect(server.db_path, timeout=TIMEOUT, isolation_level=None)
        self.holder.execute("BEGIN EXCLUSIVE")

    def remove(self, server: ServerProcess) -> None:
        if self.holder is not None:
            self.holder.execute("ROLLBACK")
            self.holder.close()
            self.holder = None


class Removed(Fault):
    """The database file is removed while the server runs, then put back (a hard link kept
    it, as a backup or ``mv`` back would)."""

    name = "database file removed"

    def inject(self, server: ServerProcess) -> None:
        saved = server.db_path.with_suffix(".saved")
        os.link(server.db_path, saved)
        server.db_path.unlink()

    def remove(self, server: ServerProcess) -> None:
        saved = server.db_path.with_suffix(".saved")
        os.link(saved, server.db_path)
        saved.unlink()


FAULTS: dict[str, Callable[[], Fault]] = {"disk": DiskFull, "locked": Locked, "removed": Removed}


@contextlib.contextmanager
def _running(directory: Path) -> Iterator[ServerProcess]:
    config = write_config(directory, extra=CONFIG)
    text = config.read_text().replace(
        "snapshot_interval_s = 3600",
        f"snapshot_interval_s = 1\nbusy_timeout_ms = {BUSY_TIMEOUT_MS}",
    )
    config.write_text(text)
    server = start_server(directory, config_path=config)
    try:
        yield server
    finally:
        server.stop()


class _Players:
    """Players striking with fresh characters; records what was acknowledged."""

    def __init__(self, clients: list[tuple[str, RaidClient]], acked: Acknowledged) -> None:
        self.clients = clients
        self.acked = acked
        self.next = 0  # next character / strike number
        self.codes: dict[str, int] = {}  # error codes answered

    async def round(self) -> int:
        """One strike per player; returns how many were acknowledged."""
        n = self.next
        self.next += 1

        async def one(user: str, client: RaidClient) -> bool:
            try:
                # request(), not strike(): strike() retries unavailable, hiding the fault.
                reply = await client.request(
                    "strike",
                    raid_id=RAID,
                    action="fight",
                    team=[f"{user}-c{n}"],
                    strike_id=f"s{n}",
                )
            except ServerError as error:
                self.codes[error.code] = self.codes.get(error.code, 0) + 1
                return False
            self.acked.strikes[(RAID, user, f"s{n}")] = (reply["damage"], reply["analysis_points"])
            return True

        done = await asyncio.gather(*(one(u, c) for u, c in self.clients))
        return sum(done)


async def storage_fault(
    directory: Path, fault: Fault, *, runs: int = 1, players: int = 10, rounds: int = 4
) -> ScenarioResult:
    """``runs`` times: inject ``fault`` under ``players``, then remove it; audit each run."""
    started = time.monotonic()
    result = ScenarioResult(f"storage: {fault.name}")
    acked = Acknowledged()
    users = [f"u{i:02d}" for i in range(players)]
    unavailable = 0
    for run in range(runs):
        with _running(directory) as server:
            result.runs += 1
            admin = await connect(server.ws_url, token("ops", "admin"), reconnect=False)
            if run == 0:
                for user in users:
                    roster = [character(user, n, power=10) for n in range(runs * rounds * 40)]
                    await admin.grant_roster(user, roster)
                    acked.grants.update({c["character_id"]: user for c in roster})
                acked.raids.add(await admin.create_raid("dummy", raid_id=RAID))
            clients = [(u, await connect(server.ws_url, token(u), reconnect=False)) for u in users]
            group = _Players(clients, acked)
            group.next = run * rounds * 40
            try:
                for _ in range(rounds):
                    assert await group.round() == players, group.codes  # healthy
                if run == 0:
                    result.rss_before_kib = rss_kib(server.process.pid)
                fault.inject(server)
                result.faults += 1
                try:
                    refused_rounds = 0
                    for _ in range(rounds):
                        if await group.round() < players:
                            refused_rounds += 1
                    # Requests keep failing while the fault lasts: nothing above was lost.
                    assert refused_rounds, f"{fault.name}: no request noticed the fault"
                finally:
                    fault.remove(server)
                await _recovered(group, players)
                result.rss_after_kib = rss_kib(server.process.pid)
                assert set(group.codes) == {"unavailable"}, group.codes
                unavailable += group.codes["unavailable"]
            finally:
                for _, client in clients:
                    await client.close()
                await admin.close()
        result.lost += await audit(directory / "raid.db", acked)
    result.operations = len(acked)
    result.notes.append(f"{unavailable} requests answered unavailable during the fault")
    result.notes.append(
        "recovered while running; audited after each run (restore = the start-up path)"
    )
    result.seconds = time.monotonic() - started
    return result


async def _recovered(group: _Players, players: int) -> None:
    """Strikes are acknowledged again once the fault is gone (raids restart by themselves)."""
    deadline = time.monotonic() + TIMEOUT * 3
    while time.monotonic() < deadline:
        if await group.round() == players:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"no recovery after the fault: {group.codes}")
