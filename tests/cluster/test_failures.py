"""Failure behaviour of ``serve --workers 2`` on loopback: real processes, real clients.

Players strike through raidclient (it reconnects and resends a strike with the same
``strike_id``, and retries ``unavailable``) while a gateway, the raid host or the NATS server
is killed, or the host is paused and fenced. Afterwards the journal holds every
acknowledged strike exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from persistence.database import Database
from persistence.leases import acquire_lease
from raidclient import RaidClient, Resync, connect
from raidclient.errors import Unavailable
from tests.cluster.processes import ClusterProcess, start_cluster
from tests.e2e.harness import character, token
from tests.timeouts import TIMEOUT

PLAYERS = 6
STRIKES = 12
RAID = "cluster"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[ClusterProcess]:
    handle = start_cluster(tmp_path, workers=2)
    try:
        admin = await connect(handle.ws_url, token("ops", "admin"))
        for index in range(PLAYERS):
            user = f"p{index}"
            await admin.grant_roster(user, [character(user, n, power=20) for n in range(40)])
        await admin.create_raid("dummy", raid_id=RAID)
        await admin.close()
        yield handle
    finally:
        handle.stop()


async def _players(cluster: ClusterProcess) -> list[RaidClient]:
    return [
        await connect(cluster.ws_url, token(f"p{i}"), reconnect_timeout=TIMEOUT * 3)
        for i in range(PLAYERS)
    ]


async def _play(clients: list[RaidClient], first: int, acked: dict[tuple[str, str], int]) -> None:
    """Every player strikes ``STRIKES`` times; each acknowledged report is recorded."""

    async def play(client: RaidClient) -> None:
        for n in range(first, first + STRIKES):
            strike_id = f"s{n}"
            report = await client.strike(RAID, "analyze", [f"{client.user_id}-c{n}"], strike_id)
            acked[(client.user_id, strike_id)] = report.analysis_points

    await asyncio.gather(*(play(client) for client in clients))


def _journal(db_path: Path) -> list[tuple[int, str, str, int]]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        rows = db.execute(
            "SELECT seq, user_id, strike_id, analysis_points FROM raid_strike_logs "
            "WHERE raid_id = ? AND rolled_back = 0 ORDER BY seq",
            (RAID,),
        ).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


def _check_exactly_once(cluster: ClusterProcess, acked: dict[tuple[str, str], int]) -> None:
    rows = _journal(cluster.db_path)
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    stored = {(r[1], r[2]): r[3] for r in rows}
    assert len(stored) == len(rows), "a strike_id was applied twice"
    for key, points in acked.items():
        assert stored.get(key) == points, f"acknowledged strike {key} lost"


async def _under_load(
    clients: list[RaidClient], acked: dict[tuple[str, str], int], fault: Callable[[], None]
) -> None:
    """Strike, inject ``fault`` once the first strikes are acknowledged, strike on."""

    async def inject() -> None:
        async with asyncio.timeout(TIMEOUT):
            while len(acked) < PLAYERS:
                await asyncio.sleep(0.01)
        fault()

    await asyncio.gather(_play(clients, 0, acked), inject())


async def _close(clients: list[RaidClient]) -> None:
    for client in clients:
        await client.close()


async def test_a_gateway_dies_under_load(cluster: ClusterProcess) -> None:
    gateways = cluster.pids("gateway")
    assert len(gateways) == 2
    clients = await _players(cluster)
    watcher = await connect(cluster.ws_url, token("watcher"), reconnect_timeout=TIMEOUT * 3)
    acked: dict[tuple[str, str], int] = {}
    seqs: list[int] = []
    resyncs = 0

    async def follow() -> None:
        nonlocal resyncs
        async with watcher.subscribe(RAID) as events:
            async for event in events:
                if isinstance(event, Resync):
                    resyncs += 1
                else:
                    seqs.append(event.seq)

    following = asyncio.create_task(follow())
    try:
        await asyncio.sleep(0.2)
        busiest = max(gateways, key=cluster.connections)  # at least 4 of our 7 clients
        await _under_load(clients, acked, lambda: os.kill(busiest, signal.SIGKILL))
        cluster.wait_for_log("exited with -9: restarting")
        await _play(clients, STRIKES, acked)  # everyone goes on, whichever gateway they reach
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await _close([*clients, watcher])
    assert len(acked) == PLAYERS * STRIKES * 2
    assert sum(c.reconnects for c in [*clients, watcher]) >= 1  # some were on the killed one
    _check_exactly_once(cluster, acked)
    assert seqs == sorted(set(seqs))  # each event once, in order, across the reconnect
    assert resyncs == 0  # resumed from since_seq on another gateway: nothing missed
    cluster.wait_for_log('"logger": "raid.gateway", "msg": "listening"', count=3)  # restarted
    assert len(cluster.pids("gateway")) == 2


async def test_the_raid_host_is_killed(cluster: ClusterProcess) -> None:
    clients = await _players(cluster)
    acked: dict[tuple[str, str], int] = {}
    [host] = cluster.pids("host")
    try:
        # Killed under load: the strikes in flight end unavailable once the host's heartbeat
        # is missed (3 s), well before the clients' 30 s request timeout; they are retried.
        load = asyncio.create_task(_play(clients[:-1], 0, acked))
        async with asyncio.timeout(TIMEOUT):
            while len(acked) < PLAYERS - 1:
                await asyncio.sleep(0.01)
        os.kill(host, signal.SIGKILL)
        reply = await _refused_while_down(clients[-1])
        assert reply["code"] == "unavailable"
        assert float(str(reply["retry_after"])) > 0
        await load
        cluster.wait_for_log("raid host ready", count=2)  # restarted from snapshot + journal
        await _play(clients, STRIKES, acked)  # clients resume (strike retries unavailable)
    finally:
        await _close(clients)
    assert len(cluster.pids("host")) == 1
    assert len(acked) == (PLAYERS - 1) * STRIKES + PLAYERS * STRIKES
    _check_exactly_once(cluster, acked)


async def _refused_while_down(client: RaidClient) -> dict[str, object]:
    """A strike sent while no host serves: answered at once, not retried (raw request)."""
    try:
        await client.request(
            "strike",
            raid_id=RAID,
            action="analyze",
            team=[f"{client.user_id}-c39"],
            strike_id="while-down",
        )
    except Unavailable as refused:
        return dict(refused.reply)
    raise AssertionError("a strike was served while the raid host was dead")


async def test_nats_restarts(cluster: ClusterProcess) -> None:
    clients = await _players(cluster)
    acked: dict[tuple[str, str], int] = {}
    [nats] = cluster.pids("nats")
    try:
        await _under_load(clients, acked, lambda: os.kill(nats, signal.SIGKILL))
        cluster.wait_for_log("nats-server exited")
        await _play(clients, STRIKES, acked)
    finally:
        await _close(clients)
    assert len(acked) == PLAYERS * STRIKES * 2
    [restarted] = cluster.pids("nats")
    assert restarted != nats
    _check_exactly_once(cluster, acked)


async def test_a_paused_host_cannot_write_after_a_takeover(cluster: ClusterProcess) -> None:
    """SIGSTOP the host, take its lease over (as a host on another machine would once the
    lease expired), SIGCONT it: it cannot journal a single strike, and it stops itself."""
    clients = await _players(cluster)
    acked: dict[tuple[str, str], int] = {}
    try:
        await _play(clients[:1], 0, acked)
        [host] = cluster.pids("host")
        os.kill(host, signal.SIGSTOP)
        try:
            db = await Database.open(cluster.db_path)
            try:
                lease = await acquire_lease(db, "elsewhere/1", 0.5, time.time(), take_over=True)
            finally:
                await db.close()
        finally:
            os.kill(host, signal.SIGCONT)
        assert lease.fence.generation == 2
        reply = await _refused_while_down(clients[1])
        assert reply["code"] == "unavailable"
        assert "while-down" not in {row[2] for row in _journal(cluster.db_path)}
        cluster.wait_for_log("raid host fenced")  # its lease renewal found the takeover
        cluster.wait_for_log("raid host ready", count=2)  # a new host, generation 3
        await _play(clients, STRIKES, acked)
    finally:
        await _close(clients)
    _check_exactly_once(cluster, acked)
    assert "while-down" not in {row[2] for row in _journal(cluster.db_path)}
