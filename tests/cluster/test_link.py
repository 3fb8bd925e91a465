"""The RaidApi seam over real NATS: a gateway's RemoteRaids against a RaidHost serving a real
RaidService (real actors, a real SQLite journal), both in this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from actors.raids import CharacterGrant
from raid.config import Action
from raid.errors import ErrorCode, RaidError, Rejection, Unavailable
from server.nats_process import NatsServer
from server.raid_host import RaidHost
from server.remote_raids import RemoteRaids
from tests.actors.conftest import Harness, open_harness
from tests.cluster.conftest import connect
from tests.timeouts import TIMEOUT


class Recorder:
    """An EventSink that keeps what it is given, per subscriber."""

    def __init__(self) -> None:
        self.replies: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.changed = asyncio.Event()

    def subscribed(
        self, subscriber_id: str, reply: dict[str, Any], replay: list[dict[str, Any]]
    ) -> None:
        self.replies[subscriber_id] = reply
        self.events.setdefault(subscriber_id, []).extend(replay)
        self.changed.set()

    def deliver(self, subscriber_ids: Sequence[str], events: list[dict[str, Any]]) -> None:
        for subscriber_id in subscriber_ids:
            self.events.setdefault(subscriber_id, []).extend(events)
        self.changed.set()

    async def wait_for(self, subscriber_id: str, seq: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(TIMEOUT):
            while not any(e["seq"] >= seq for e in self.events.get(subscriber_id, [])):
                self.changed.clear()
                await self.changed.wait()
        return self.events[subscriber_id]


class Cluster:
    def __init__(self, harness: Harness, host: RaidHost, remote: RemoteRaids) -> None:
        self.harness = harness
        self.host = host
        self.remote = remote


@pytest.fixture
async def cluster(tmp_path: Path, nats_server: NatsServer) -> AsyncIterator[Cluster]:
    harness, service, db = await open_harness(tmp_path)
    host_nc, gateway_nc = await connect(nats_server.url), await connect(nats_server.url)
    host = RaidHost(service, host_nc)
    await host.start()
    remote = RemoteRaids(gateway_nc, timeout_s=TIMEOUT)
    await remote.start()
    try:
        yield Cluster(harness, host, remote)
    finally:
        await remote.close()
        await host.stop()
        await gateway_nc.close()
        await host_nc.close()
        await service.stop()
        await db.close()


async def test_strikes_of_one_iteration_go_as_one_request(cluster: Cluster) -> None:
    remote = cluster.remote
    raid_id = await remote.create_raid("dummy")
    players = [f"p{i:02d}" for i in range(20)]
    for user in players:
        await cluster.harness.grant(user)
    reports = await asyncio.gather(
        *(remote.strike(u, raid_id, Action.FIGHT, [f"{u}-c0"], f"{u}-s1") for u in players)
    )
    assert remote.batches_sent == 1
    assert sorted(int(r["strike_count"]) for r in reports) == list(range(1, 21))
    logs = await cluster.harness.db.get_raid_strike_logs_by_raid(raid_id)
    assert len(logs) == 20
    again = await remote.strike("p03", raid_id, Action.FIGHT, ["p03-c0"], "p03-s1")
    assert again == next(r for r in reports if r["strike_id"] == "p03-s1")  # idempotent
    assert len(await cluster.harness.db.get_raid_strike_logs_by_raid(raid_id)) == 20


async def test_refusals_travel_as_the_same_error(cluster: Cluster) -> None:
    remote = cluster.remote
    raid_id = await remote.create_raid("dummy")
    granted = await remote.grant_roster(
        "alice", [CharacterGrant("alice-c0", "Hero", 3, {"power": 100}, ("fire",))]
    )
    assert granted == ["alice-c0"]
    with pytest.raises(Rejection) as refused:
        await remote.strike("alice", raid_id, Action.FIGHT, ["bob-c0"], "s1")
    assert refused.value.code is ErrorCode.CHARACTER_NOT_OWNED
    with pytest.raises(RaidError) as unknown:
        await remote.hub("alice", "no-such-raid")
    assert unknown.value.code is ErrorCode.UNKNOWN_RAID
    with pytest.raises(RaidError) as bad_id:
        await remote.hub("alice", "a.b")
    assert bad_id.value.code is ErrorCode.UNKNOWN_RAID
    for n in range(3):  # hostile subscribes to made-up raids leave nothing behind
        with pytest.raises(RaidError):
            await remote.subscribe("s1", f"nope-{n}", None, n)
    assert remote.feeds == 0


async def test_no_host_answers_unavailable_with_retry_after(nats_server: NatsServer) -> None:
    nc = await connect(nats_server.url)
    try:
        remote = RemoteRaids(nc, timeout_s=0.5)
        await remote.start()
        with pytest.raises(Unavailable) as refused:
            await remote.strike("alice", "r1", Action.FIGHT, ["c"], "s1")
        assert refused.value.code is ErrorCode.UNAVAILABLE
        assert refused.value.extra["retry_after"] > 0
    finally:
        await nc.close()


async def test_events_reach_each_subscriber_once_in_order(cluster: Cluster) -> None:
    remote = cluster.remote
    sink = Recorder()
    remote.attach(sink)
    raid_id = await remote.create_raid("dummy")
    await cluster.harness.grant("alice")
    await remote.subscribe("s1", raid_id, None, "rid-1")
    await remote.subscribe("s2", raid_id, None, "rid-2")
    assert sink.replies["s1"]["rid"] == "rid-1"
    start = int(sink.replies["s1"]["seq"])
    for n in range(3):
        await remote.strike("alice", raid_id, Action.FIGHT, [f"alice-c{n}"], f"a{n}")
    await remote.rewards_list("alice", raid_id)  # a round trip: the host has published by now
    for subscriber in ("s1", "s2"):
        events = await sink.wait_for(subscriber, start + 1)
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert seqs[0] == int(sink.replies[subscriber]["seq"]) + 1
    await remote.subscribe("late", raid_id, start, "rid-3")  # resume: the host replays
    replayed = [e["seq"] for e in sink.events["late"]]
    assert replayed == list(range(start + 1, start + 1 + len(replayed))), replayed
    last = replayed[-1]  # the raid's latest event (s1 may not have been sent it yet)
    live = await sink.wait_for("s1", last)
    assert replayed == [e["seq"] for e in live if e["seq"] <= last]
    assert sink.replies["late"]["seq"] == last
    remote.subscriber_gone("s1")
    await remote.strike("alice", raid_id, Action.FIGHT, ["alice-c5"], "a5")
    await sink.wait_for("s2", last + 1)
    assert sink.events["s1"][-1]["seq"] == last  # gone: nothing more
