"""Reconnection: strikes are never applied twice nor lost; event streams resume or resync.

A TCP proxy sits between the client and the real server so a test can cut the
connection at a chosen moment and point the client's address at a restarted server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

import raidclient
from tests.client.proxy import Proxy
from tests.e2e.harness import ServerProcess, character, start_server, token, write_config
from tests.timeouts import TIMEOUT

Item = raidclient.Event | raidclient.Resync


def _fast_backoff() -> raidclient.Backoff:
    return raidclient.Backoff(initial=0.02, maximum=0.2)


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def proxy(server: ServerProcess) -> AsyncIterator[Proxy]:
    handle = Proxy(server.port)
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


class Collector:
    """Reads a subscription in the background, like an application would."""

    def __init__(self, subscription: raidclient.Subscription) -> None:
        self.items: list[Item] = []
        self._task = asyncio.create_task(self._run(subscription))

    async def _run(self, subscription: raidclient.Subscription) -> None:
        async for item in subscription:
            self.items.append(item)

    async def wait_for_hp(self, strike_count: int) -> None:
        async def seen() -> bool:
            return any(
                isinstance(i, raidclient.HpEvent) and i.strike_count >= strike_count
                for i in self.items
            )

        await _until(seen, f"the hp event of strike {strike_count}")

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def _contiguous(items: list[Item]) -> bool:
    seqs = [i.seq for i in items]
    return seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def test_a_strike_applied_whose_reply_was_lost_is_resent_not_reapplied(
    proxy: Proxy, admin: raidclient.RaidClient, raid_id: str
) -> None:
    async with await raidclient.connect(
        proxy.url, token("alice"), backoff=_fast_backoff()
    ) as alice:
        proxy.drop_replies = True
        pending = asyncio.create_task(
            alice.strike(raid_id, "fight", ["alice-c0"], strike_id="once")
        )

        async def applied() -> bool:
            return (await admin.hub(raid_id)).raid.strike_count == 1

        await _until(applied, "the server to apply the strike")
        assert not pending.done()
        proxy.drop_replies = False
        proxy.cut()
        report = await asyncio.wait_for(pending, TIMEOUT)
        assert alice.reconnects == 1
    assert report.strike_id == "once"
    assert report.strike_count == 1
    hub = await admin.hub(raid_id)
    assert hub.raid.strike_count == 1
    assert hub.raid.current_hp == hub.raid.total_hp - report.damage


async def test_subscription_resumes_with_since_seq_after_a_drop(
    server: ServerProcess, proxy: Proxy, raid_id: str
) -> None:
    async with (
        await raidclient.connect(proxy.url, token("alice"), backoff=_fast_backoff()) as alice,
        await raidclient.connect(server.ws_url, token("bob")) as bob,
    ):
        events = alice.subscribe(raid_id)
        start = await events.start()
        collector = Collector(events)
        await bob.strike(raid_id, "fight", ["bob-c0"])
        await collector.wait_for_hp(1)
        proxy.refuse = True
        proxy.cut()
        for n in (1, 2):  # while alice is away
            await bob.strike(raid_id, "analyze", [f"bob-c{n}"])
        proxy.refuse = False
        await collector.wait_for_hp(3)
        await collector.stop()
        assert alice.reconnects == 1
    assert not [i for i in collector.items if isinstance(i, raidclient.Resync)]
    assert collector.items[0].seq == start + 1
    assert _contiguous(collector.items)


async def test_server_restart_under_a_pending_strike_and_a_subscription(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    server = start_server(tmp_path, config_path=config)
    proxy = Proxy(server.port)
    await proxy.start()
    restarted: ServerProcess | None = None
    try:
        async with await raidclient.connect(server.ws_url, token("ops", "admin")) as admin:
            await admin.grant_roster("alice", [character("alice", i) for i in range(6)])
            raid = await admin.create_raid("dummy", raid_id="r1")
        async with await raidclient.connect(
            proxy.url, token("alice"), backoff=_fast_backoff(), reconnect_timeout=TIMEOUT * 3
        ) as alice:
            events = alice.subscribe(raid)
            await events.start()
            collector = Collector(events)
            first = await alice.strike(raid, "fight", ["alice-c0"], strike_id="s1")
            await collector.wait_for_hp(1)
            os.kill(server.process.pid, signal.SIGSTOP)  # the next strike cannot be processed
            pending = asyncio.create_task(
                alice.strike(raid, "analyze", ["alice-c1"], strike_id="s2")
            )
            await asyncio.sleep(0)  # let it send its frame to the frozen server
            server.stop(signal.SIGKILL)
            assert not pending.done()
            restarted = start_server(tmp_path, config_path=config, db_path=server.db_path)
            proxy.upstream_port = restarted.port
            second = await asyncio.wait_for(pending, TIMEOUT * 3)
            assert second.strike_id == "s2"
            assert second.strike_count == 2

            async def resynced() -> bool:
                return any(isinstance(i, raidclient.Resync) for i in collector.items)

            await _until(resynced, "a resync marker")
            third = await alice.strike(raid, "fight", ["alice-c2"], strike_id="s3")
            await collector.wait_for_hp(3)
            await collector.stop()
            again = await alice.strike(raid, "analyze", ["alice-c1"], strike_id="s2")
            assert again == second
        markers = [i for i in collector.items if isinstance(i, raidclient.Resync)]
        assert len(markers) == 1
        marker = markers[0]
        assert marker.hub.raid.strike_count in (1, 2)
        after = collector.items[collector.items.index(marker) + 1 :]
        assert after[0].seq == marker.seq + 1
        assert _contiguous(after)
        before = collector.items[: collector.items.index(marker)]
        assert _contiguous(before)
        async with await raidclient.connect(restarted.ws_url, token("ops", "admin")) as admin:
            hub = await admin.hub(raid)
        assert hub.raid.strike_count == 3
        assert hub.raid.current_hp == hub.raid.total_hp - first.damage - third.damage
    finally:
        await proxy.stop()
        server.stop(signal.SIGKILL)
        if restarted is not None:
            restarted.stop()
