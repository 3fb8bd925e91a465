"""Events: contiguous per-raid seq, hp coalescing, resume with since_seq, one order for all.

Behaviour is tested through raidclient; the since_seq replay, a wire-level promise
(replayed frames identical to the missed ones), keeps the hand-rolled client."""

from __future__ import annotations

import asyncio
from typing import Any

import raidclient
from tests.e2e.harness import Client, ServerProcess, character, token
from tests.timeouts import TIMEOUT


async def _players(url: str, admin: Client, count: int) -> list[raidclient.RaidClient]:
    clients = []
    for i in range(count):
        user = f"u{i}"
        await admin.ok(
            "admin.roster.grant", user_id=user, characters=[character(user, n) for n in range(6)]
        )
        clients.append(await raidclient.connect(url, token(user)))
    return clients


async def _until_hp(
    events: raidclient.Subscription, strike_count: int
) -> list[raidclient.Event | raidclient.Resync]:
    """Every item of the stream up to the hp event showing ``strike_count`` strikes."""
    seen: list[raidclient.Event | raidclient.Resync] = []
    async with asyncio.timeout(TIMEOUT):
        async for item in events:
            seen.append(item)
            if isinstance(item, raidclient.HpEvent) and item.strike_count == strike_count:
                return seen
    raise AssertionError("the event stream ended")


async def test_subscribers_see_one_contiguous_sequence(
    server: ServerProcess, admin: Client, raid_id: str
) -> None:
    watchers = [
        await raidclient.connect(server.ws_url, token("alice"), fmt=("msgpack", "json")[i % 2])
        for i in range(3)
    ]
    streams = [watcher.subscribe(raid_id) for watcher in watchers]
    for stream in streams:
        await stream.start()
    players = await _players(server.ws_url, admin, 5)

    async def play(index: int, client: raidclient.RaidClient) -> None:
        for n in range(6):
            action = ("fight", "analyze")[n % 2]
            await client.strike(raid_id, action, [f"u{index}-c{n}"], f"{index}-{n}")

    await asyncio.gather(*(play(i, c) for i, c in enumerate(players)))
    # 30 strikes: retaliations at 3, 6, 9 … and two breakthroughs; collect until the hp event
    # that shows the 30th strike, which comes after every other event of those strikes.
    seen = [await _until_hp(stream, 30) for stream in streams]
    for items in seen:
        events = [e for e in items if isinstance(e, raidclient.Event)]
        assert len(events) == len(items)  # no Resync: nothing was skipped
        seqs = [e.seq for e in events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    non_hp = [
        [(e.seq, e.type) for e in items if isinstance(e, raidclient.Event) and e.type != "hp"]
        for items in seen
    ]
    assert non_hp[0] == non_hp[1] == non_hp[2]
    types = {t for _, t in non_hp[0]}
    assert {"retaliation", "breakthrough", "announcement"} <= types
    for client in [*watchers, *players]:
        await client.close()


async def test_hp_events_are_coalesced_under_a_burst(
    server: ServerProcess, admin: Client, raid_id: str
) -> None:
    watcher = await raidclient.connect(server.ws_url, token("alice"))
    stream = watcher.subscribe(raid_id)
    await stream.start()
    players = await _players(server.ws_url, admin, 10)

    async def play(index: int, client: raidclient.RaidClient) -> int:
        points = 0
        for n in range(6):
            report = await client.strike(raid_id, "analyze", [f"u{index}-c{n}"], f"{n}")
            points += report.analysis_points
        return points

    total = sum(await asyncio.gather(*(play(i, c) for i, c in enumerate(players))))
    hp_events = [e for e in await _until_hp(stream, 60) if isinstance(e, raidclient.HpEvent)]
    assert len(hp_events) < 60
    assert hp_events[-1].analysis_points == total
    counts = [e.strike_count for e in hp_events]
    assert counts == sorted(counts)
    status, _, metrics = server.http_get("/metrics")
    assert status == 200
    coalesced = [line for line in metrics.splitlines() if line.startswith("events_coalesced_total")]
    assert coalesced and float(coalesced[0].split()[-1]) > 0
    for client in [watcher, *players]:
        await client.close()


async def test_resume_with_since_seq(server: ServerProcess, alice: Client, raid_id: str) -> None:
    first = await Client.connect(server)
    await first.hello("bob")
    start = (await first.ok("raid.subscribe", raid_id=raid_id))["seq"]
    for n in range(3):
        await alice.ok(
            "strike", raid_id=raid_id, action="analyze", team=[f"alice-c{n}"], strike_id=f"a{n}"
        )
    missed: list[dict[str, Any]] = []
    while not missed or missed[-1].get("strike_count") != 3:
        missed.append(await first.next_event())
    await first.close()

    second = await Client.connect(server)
    await second.hello("bob")
    reply = await second.ok("raid.subscribe", raid_id=raid_id, since_seq=start)
    assert "resync" not in reply
    replayed = [await second.next_event() for _ in missed]
    assert [e["seq"] for e in replayed] == [e["seq"] for e in missed]
    assert replayed == missed
    far = await second.ok("raid.subscribe", raid_id=raid_id, since_seq=1)
    assert far["resync"] is True
    await second.close()
