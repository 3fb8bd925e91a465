"""Every op and every error code over a real socket, in MessagePack and JSON."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tests.e2e.harness import Client, ServerProcess, character, start_server, token, write_config


@pytest.mark.parametrize("binary", [True, False], ids=["msgpack", "json"])
async def test_a_whole_player_session(server: ServerProcess, raid_id: str, binary: bool) -> None:
    client = await Client.connect(server, binary=binary)
    try:
        hello = await client.hello("alice")
        assert hello["user_id"] == "alice" and hello["role"] == "player"
        assert {"raid_id": "r1", "name": "Training Dummy", "status": "active"} in hello["raids"]
        assert (await client.ok("ping"))["server_time"] > 0

        hub = await client.ok("raid.hub", raid_id=raid_id)
        assert hub["raid"]["current_hp"] == hub["raid"]["total_hp"] == 1000
        assert hub["raid"]["next_analysis_threshold"] == 10
        assert "weakness_pool" not in hub["raid"] and "curse_pool" not in hub["raid"]
        assert hub["me"]["rank_damage"] is None
        assert hub["leaderboard"] == {"damage": [], "analysis": []}

        options = await client.ok("team.options", raid_id=raid_id)
        assert options["max_team_size"] == 6
        assert len(options["characters"]) == 6
        first = options["characters"][0]
        assert first["contribution"] == 100.0
        assert first["exhausted"] is False and first["weak"] is False and first["resisted"] is False

        subscribed = await client.ok("raid.subscribe", raid_id=raid_id)
        report = await client.ok(
            "strike", raid_id=raid_id, action="fight", team=["alice-c0", "alice-c1"], strike_id="s1"
        )
        # base = 100 + 100 = 200, multiplier 1, score 200, damage floor(200 / 10) = 20
        assert report["base"] == 200.0 and report["multiplier"] == 1.0 and report["score"] == 200
        assert report["damage"] == 20 and report["boss_hp"] == 980 and report["strike_count"] == 1
        assert report["rewards"] == [{"key": "strike:s1", "bundle": {"raid_tokens": 10}}]
        assert report["exhausted"] == ["alice-c0", "alice-c1"]
        hp = await client.next_event({"type": "hp"})
        assert hp["raid_id"] == raid_id and hp["current_hp"] == 980
        assert hp["seq"] > subscribed["seq"]

        analysis = await client.ok(
            "strike", raid_id=raid_id, action="analyze", team=["alice-c2"], strike_id="s2"
        )
        assert analysis["analysis_points"] == 10
        assert analysis["breakthroughs"][0]["index"] == 1
        assert analysis["breakthroughs"][0]["weakness"] in ("fire", "wind")
        breakthrough = await client.next_event({"type": "breakthrough"})
        assert breakthrough["index"] == 1

        rewards = await client.ok("rewards.list", raid_id=raid_id)
        assert {"key": "breakthrough:1", "bundle": {"gems": 1}} in rewards["claimable"]
        assert {r["key"] for r in rewards["claimed"]} == {"strike:s1", "strike:s2"}
        claim = await client.ok("rewards.claim", raid_id=raid_id, key="breakthrough:1")
        assert claim == {
            "op": "rewards.claim.ok",
            "rid": claim["rid"],
            "key": "breakthrough:1",
            "bundle": {"gems": 1},
        }
        again = await client.request("rewards.claim", raid_id=raid_id, key="breakthrough:1")
        assert again["code"] == "already_claimed"
        never = await client.request("rewards.claim", raid_id=raid_id, key="victory")
        assert never["code"] == "not_eligible"

        hub = await client.ok("raid.hub", raid_id=raid_id)
        assert hub["me"]["rank_damage"] == 1 and hub["me"]["rank_analysis"] == 1
        assert hub["leaderboard"]["damage"] == [{"user_id": "alice", "value": 20}]
        await client.ok("raid.unsubscribe", raid_id=raid_id)
    finally:
        await client.close()


async def test_rule_errors_carry_their_fields(alice: Client, raid_id: str) -> None:
    async def strike(team: list[str], strike_id: str, raid: str = raid_id) -> dict[str, object]:
        return await alice.request(
            "strike", raid_id=raid, action="fight", team=team, strike_id=strike_id
        )

    assert (await strike(["alice-c0"], "x", raid="nope"))["code"] == "unknown_raid"
    assert (await strike([], "e"))["code"] == "invalid_team"
    assert (await strike(["alice-c0", "alice-c0"], "d"))["code"] == "invalid_team"
    assert (await strike([f"alice-c{i}" for i in range(7)], "big"))["code"] == "invalid_team"
    theirs = await strike(["bob-c0"], "b")
    assert theirs["code"] == "character_not_owned" and theirs["character_ids"] == ["bob-c0"]
    await alice.ok("strike", raid_id=raid_id, action="fight", team=["alice-c0"], strike_id="ok")
    tired = await strike(["alice-c0", "alice-c1"], "t")
    assert tired["code"] == "character_exhausted" and tired["character_ids"] == ["alice-c0"]
    assert isinstance(tired["message"], str) and tired["message"]


async def test_ended_raid_is_not_active(admin: Client, alice: Client, raid_id: str) -> None:
    assert (await admin.ok("admin.raid.end", raid_id=raid_id))["status"] == "ended"
    refused = await alice.request(
        "strike", raid_id=raid_id, action="fight", team=["alice-c0"], strike_id="late"
    )
    assert refused["code"] == "raid_not_active"
    hub = await alice.ok("raid.hub", raid_id=raid_id)
    assert hub["raid"]["status"] == "ended"


async def test_scheduled_raid_is_not_active(admin: Client, alice: Client) -> None:
    created = await admin.ok(
        "admin.raid.create", boss="dummy", start="2999-01-01T00:00:00", raid_id="later"
    )
    assert created["raid_id"] == "later"
    refused = await alice.request(
        "strike", raid_id="later", action="fight", team=["alice-c0"], strike_id="early"
    )
    assert refused["code"] == "raid_not_active"


async def test_cooldown_answers_retry_after(tmp_path: Path) -> None:
    server = start_server(tmp_path, config_path=write_config(tmp_path, cooldown_s=60))
    try:
        admin = await Client.connect(server)
        await admin.hello("ops", "admin")
        await admin.ok(
            "admin.roster.grant", user_id="cd", characters=[character("cd", 0), character("cd", 1)]
        )
        raid = (await admin.ok("admin.raid.create", boss="dummy"))["raid_id"]
        player = await Client.connect(server)
        await player.hello("cd")
        await player.ok("strike", raid_id=raid, action="fight", team=["cd-c0"], strike_id="1")
        refused = await player.request(
            "strike", raid_id=raid, action="fight", team=["cd-c1"], strike_id="2"
        )
        assert refused["code"] == "on_cooldown"
        assert 59 < refused["retry_after"] <= 60
        await player.close()
        await admin.close()
    finally:
        server.stop()


async def test_operator_ops(admin: Client, alice: Client, raid_id: str) -> None:
    granted = await admin.ok(
        "admin.roster.grant",
        user_id="carol",
        characters=[{"name": "New", "rarity": 5, "stats": {"power": 10}, "tags": ["light"]}],
    )
    assert len(granted["character_ids"]) == 1
    await alice.ok("strike", raid_id=raid_id, action="fight", team=["alice-c0"], strike_id="p1")
    snapshot = await admin.ok("admin.snapshot", raid_id=raid_id)
    assert snapshot["seq"] == 1 and snapshot["snapshot_id"] > 0
    pending = await admin.ok("admin.rewards.pending", limit=10)
    keys = [(r["user_id"], r["key"]) for r in pending["rewards"]]
    assert ("alice", "strike:p1") in keys
    ids = [r["id"] for r in pending["rewards"]]
    assert (await admin.ok("admin.rewards.ack", ids=ids))["acked"] == len(ids)
    assert (await admin.ok("admin.rewards.ack", ids=ids))["acked"] == 0
    assert (await admin.ok("admin.rewards.pending"))["rewards"] == []
    bad_boss = await admin.request("admin.raid.create", boss="nobody")
    assert bad_boss["code"] == "bad_request"
    bad_stat = await admin.request(
        "admin.roster.grant",
        user_id="carol",
        characters=[{"name": "X", "rarity": 1, "stats": {"luck": 1}, "tags": []}],
    )
    assert bad_stat["code"] == "bad_request" and "luck" in bad_stat["message"]


async def test_players_cannot_use_operator_ops(alice: Client, raid_id: str) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("admin.raid.create", {"boss": "dummy"}),
        ("admin.raid.end", {"raid_id": raid_id}),
        ("admin.roster.grant", {"user_id": "alice", "characters": [character("alice", 9)]}),
        ("admin.snapshot", {"raid_id": raid_id}),
        ("admin.rewards.pending", {}),
        ("admin.rewards.ack", {"ids": [1]}),
    ]
    for op, fields in cases:
        assert (await alice.request(op, **fields))["code"] == "forbidden", op


async def test_sessions_need_a_valid_hello(server: ServerProcess) -> None:
    client = await Client.connect(server)
    try:
        assert (await client.request("ping"))["code"] == "unauthenticated"
        expired = await client.request("hello", token=token("alice", ttl=-10))
        assert expired["code"] == "unauthenticated"
        forged = token("alice")[:-2] + "AA"
        assert (await client.request("hello", token=forged))["code"] == "unauthenticated"
        assert (await client.request("hello", token="garbage"))["code"] == "unauthenticated"
        assert (await client.request("nonsense.op"))["code"] in ("unknown_op", "unauthenticated")
        await client.hello("alice")
        assert (await client.request("nonsense.op"))["code"] == "unknown_op"
    finally:
        await client.close()


async def test_malformed_frames_answer_bad_request_and_keep_the_connection(
    server: ServerProcess,
) -> None:
    client = await Client.connect(server)
    try:
        await client.hello("alice")
        for frame in [
            b"\xc1\xff garbage",
            b"\x93\x01\x02\x03",
            "not json",
            "[1, 2]",
            json.dumps({"rid": 5}),
            msgpack.packb({"op": 7, "rid": 1}),
        ]:
            await client.send_raw(frame)
        bad = await client.request("strike", raid_id="r1", action="dance", team=[], strike_id="s")
        assert bad["code"] == "bad_request"
        wrong = await client.request("raid.hub", raid_id=["r1"])
        assert wrong["code"] == "bad_request"
        long_id = await client.request("raid.hub", raid_id="x" * 65)
        assert long_id["code"] == "bad_request"
        assert (await client.ok("ping"))["op"] == "ping.ok"
        errors = [r for r in client.replies if r.get("op") == "error"]
        assert sum(1 for r in errors if r["code"] == "bad_request" and r["rid"] is None) == 4
        assert {r["rid"] for r in errors if r["code"] == "bad_request"} >= {5, 1}
    finally:
        await client.close()


async def test_a_flood_is_rate_limited_and_the_connection_survives(tmp_path: Path) -> None:
    server = start_server(tmp_path, config_path=write_config(tmp_path, messages_per_s=50))
    try:
        client = await Client.connect(server)
        await client.hello("flood")
        replies = await asyncio.gather(*(client.request("ping") for _ in range(120)))
        limited = [r for r in replies if r["op"] == "error"]
        assert limited and all(r["code"] == "rate_limited" for r in limited)
        assert all(0 < r["retry_after"] <= 1 for r in limited)
        assert sum(1 for r in replies if r["op"] == "ping.ok") >= 49
        reply = limited[-1]
        while reply["op"] == "error":  # wait as told, then the connection serves again
            await asyncio.sleep(reply["retry_after"])
            reply = await client.request("ping")
        assert reply["op"] == "ping.ok"
        await client.close()
    finally:
        server.stop()


async def test_an_oversized_frame_closes_with_1009(server: ServerProcess) -> None:
    client = await Client.connect(server)
    await client.hello("big")
    await client.send_raw(b"\x00" * 70_000)
    await asyncio.wait_for(client.connection.wait_closed(), 10)
    assert client.connection.close_code == 1009
    await client.close()


async def test_a_connection_without_hello_is_closed(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = config.read_text().replace("[server]\n", "[server]\nhello_timeout_s = 0.3\n", 1)
    config.write_text(text)
    server = start_server(tmp_path, config_path=config)
    try:
        client = await Client.connect(server)
        await asyncio.wait_for(client.connection.wait_closed(), 10)
        assert client.connection.close_code == 1008
        await client.close()
        polite = await Client.connect(server)
        await polite.hello("in-time")
        assert (await polite.ok("ping"))["op"] == "ping.ok"
        await polite.close()
    finally:
        server.stop()
