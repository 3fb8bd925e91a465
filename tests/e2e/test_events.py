"""Events: contiguous per-raid seq, hp coalescing, resume with since_seq, one order for all."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.e2e.harness import Client, ServerProcess, character


async def _players(admin: Client, server: ServerProcess, count: int) -> list[Client]:
    clients = []
    for i in range(count):
        user = f"u{i}"
        await admin.ok(
            "admin.roster.grant", user_id=user, characters=[character(user, n) for n in range(6)]
        )
        client = await Client.connect(server)
        await client.hello(user)
        clients.append(client)
    return clients


async def test_subscribers_see_one_contiguous_sequence(
    server: ServerProcess, admin: Client, raid_id: str
) -> None:
    watchers = [await Client.connect(server, binary=i % 2 == 0) for i in range(3)]
    for watcher in watchers:
        await watcher.hello("alice")
        await watcher.ok("raid.subscribe", raid_id=raid_id)
    players = await _players(admin, server, 5)

    async def play(index: int, client: Client) -> None:
        for n in range(6):
            await client.ok(
                "strike",
                raid_id=raid_id,
                action=("fight", "analyze")[n % 2],
                team=[f"u{index}-c{n}"],
                strike_id=f"{index}-{n}",
            )

    await asyncio.gather(*(play(i, c) for i, c in enumerate(players)))
    # 30 strikes: retaliations at 3, 6, 9 … and two breakthroughs; collect until the hp event
    # that shows the 30th strike, which comes after every other event of those strikes.
    seen: list[list[dict[str, object]]] = []
    for watcher in watchers:
        events = []
        while True:
            event = await watcher.next_event()
            events.append(event)
            if event["type"] == "hp" and event["strike_count"] == 30:
                break
        seen.append(events)
    for events in seen:
        seqs = [int(str(e["seq"])) for e in events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    non_hp = [[(e["seq"], e["type"]) for e in events if e["type"] != "hp"] for events in seen]
    assert non_hp[0] == non_hp[1] == non_hp[2]
    types = {t for _, t in non_hp[0]}
    assert {"retaliation", "breakthrough", "announcement"} <= types
    for client in [*watchers, *players]:
        await client.close()


async def test_hp_events_are_coalesced_under_a_burst(
    server: ServerProcess, admin: Client, raid_id: str
) -> None:
    watcher = await Client.connect(server)
    await watcher.hello("alice")
    await watcher.ok("raid.subscribe", raid_id=raid_id)
    players = await _players(admin, server, 10)

    async def play(index: int, client: Client) -> int:
        points = 0
        for n in range(6):
            report = await client.ok(
                "strike",
                raid_id=raid_id,
                action="analyze",
                team=[f"u{index}-c{n}"],
                strike_id=f"{n}",
            )
            points += report["analysis_points"]
        return points

    total = sum(await asyncio.gather(*(play(i, c) for i, c in enumerate(players))))
    hp_events: list[dict[str, Any]] = []
    while not hp_events or hp_events[-1]["strike_count"] != 60:
        event = await watcher.next_event({"type": "hp"})
        hp_events.append(event)
    assert len(hp_events) < 60
    assert hp_events[-1]["analysis_points"] == total
    counts = [e["strike_count"] for e in hp_events]
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
