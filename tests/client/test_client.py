"""raidclient against a real server: typed replies, one exception per error code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import raidclient
from tests.e2e.harness import ServerProcess, start_server, token, write_config


async def test_hello_and_hub_are_typed(alice: raidclient.RaidClient, raid_id: str) -> None:
    assert alice.hello is not None
    assert alice.user_id == "alice"
    assert alice.hello.role == "player"
    assert [r.raid_id for r in alice.hello.raids] == [raid_id]
    hub = await alice.hub(raid_id)
    assert hub.raid.raid_id == raid_id
    assert hub.raid.current_hp == hub.raid.total_hp == 1000
    assert hub.raid.dominant_stats == ("power",)
    assert hub.me.user_id == "alice"
    assert hub.me.strikes == 0
    assert await alice.ping() > 0


async def test_best_team_then_strike(alice: raidclient.RaidClient, raid_id: str) -> None:
    options = await alice.team_options(raid_id)
    assert options.max_team_size == 6
    team = options.best_team()
    # power 100..105: the strongest first, all six fit
    assert team == [f"alice-c{i}" for i in (5, 4, 3, 2, 1, 0)]
    report = await alice.strike(raid_id, "fight", team[:2])
    assert isinstance(report, raidclient.StrikeReport)
    assert len(report.strike_id) == 32  # made by the client
    assert report.team == ("alice-c5", "alice-c4")
    assert report.damage > 0
    assert report.boss_hp == 1000 - report.damage
    assert report.strike_count == 1
    assert report.rewards[0].key == f"strike:{report.strike_id}"
    after = await alice.team_options(raid_id)
    assert after.best_team() == [f"alice-c{i}" for i in (3, 2, 1, 0)]
    again = await alice.strike(raid_id, "fight", team[:2], strike_id=report.strike_id)
    assert again == report  # same strike_id: the original report, nothing applied


async def test_each_error_code_has_its_exception(
    alice: raidclient.RaidClient, admin: raidclient.RaidClient, raid_id: str
) -> None:
    with pytest.raises(raidclient.UnknownRaid) as unknown:
        await alice.hub("nope")
    assert unknown.value.code == "unknown_raid"
    assert "nope" in unknown.value.message
    with pytest.raises(raidclient.CharacterNotOwned) as not_owned:
        await alice.strike(raid_id, "fight", ["bob-c0"])
    assert not_owned.value.character_ids == ["bob-c0"]
    with pytest.raises(raidclient.InvalidTeam):
        await alice.strike(raid_id, "fight", ["alice-c0", "alice-c0"])
    with pytest.raises(raidclient.BadRequest):
        await alice.strike(raid_id, "dance", ["alice-c0"])
    await alice.strike(raid_id, "fight", ["alice-c0"])
    with pytest.raises(raidclient.CharacterExhausted) as tired:
        await alice.strike(raid_id, "fight", ["alice-c0"])
    assert tired.value.character_ids == ["alice-c0"]
    with pytest.raises(raidclient.Forbidden):
        await alice.end_raid(raid_id)
    with pytest.raises(raidclient.UnknownOp):
        await alice.request("dance")
    with pytest.raises(raidclient.AlreadyClaimed):
        rewards = await alice.rewards(raid_id)
        await alice.claim(raid_id, rewards.claimed[0].key)
    assert await admin.end_raid(raid_id) == "ended"
    with pytest.raises(raidclient.RaidNotActive):
        await alice.strike(raid_id, "fight", ["alice-c1"])


async def test_cooldown_and_rate_limit_carry_retry_after(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, config_path=write_config(tmp_path, cooldown_s=30, messages_per_s=5)
    )
    try:
        async with await raidclient.connect(server.ws_url, token("ops", "admin")) as admin:
            await admin.grant_roster("carol", [_hero("carol", 0), _hero("carol", 1)])
            raid = await admin.create_raid("dummy")
        async with await raidclient.connect(server.ws_url, token("carol")) as carol:
            await carol.strike(raid, "fight", ["carol-0"])
            with pytest.raises(raidclient.OnCooldown) as cooldown:
                await carol.strike(raid, "fight", ["carol-1"])
            assert cooldown.value.retry_after is not None
            assert 29 < cooldown.value.retry_after <= 30
            # 20 at once against a bucket of 5: sent together, so no refill can save them
            answers = await asyncio.gather(
                *(carol.ping() for _ in range(20)), return_exceptions=True
            )
            limited = [a for a in answers if isinstance(a, raidclient.RateLimited)]
            assert limited
            assert all(a.retry_after is not None and a.retry_after > 0 for a in limited)
    finally:
        server.stop()


def _hero(user: str, n: int) -> dict[str, object]:
    return {"character_id": f"{user}-{n}", "name": "Hero", "rarity": 1, "stats": {"power": 50}}


async def test_rewards_claim_and_operator_ops(
    alice: raidclient.RaidClient, admin: raidclient.RaidClient, raid_id: str
) -> None:
    for n in range(2):  # analysis thresholds 10 and 20: the strongest analysts pass both
        report = await alice.strike(raid_id, "analyze", [f"alice-c{5 - n}"])
        assert report.analysis_points > 0
    rewards = await alice.rewards(raid_id)
    claimable = {reward.key for reward in rewards.claimable}
    assert "breakthrough:1" in claimable
    claimed = await alice.claim(raid_id, "breakthrough:1")
    assert claimed.bundle == {"gems": 1}
    snapshot = await admin.snapshot(raid_id)
    assert snapshot.seq == 2
    pending = await admin.pending_rewards(limit=1000)
    mine = [row for row in pending if row.user_id == "alice" and row.raid_id == raid_id]
    assert {row.key for row in mine} >= {"breakthrough:1"}
    assert await admin.ack_rewards([row.id for row in mine]) == len(mine)
    assert await admin.ack_rewards([row.id for row in mine]) == 0
    assert await admin.grant_roster("dave", [_hero("dave", 0)]) == ["dave-0"]


async def test_json_format_and_bad_token(server: ServerProcess, raid_id: str) -> None:
    async with await raidclient.connect(server.ws_url, token("bob"), fmt="json") as bob:
        hub = await bob.hub(raid_id)
        assert hub.me.user_id == "bob"
    with pytest.raises(raidclient.Unauthenticated):
        await raidclient.connect(server.ws_url, "not.a-token")


async def test_unreachable_server_raises_connection_lost() -> None:
    with pytest.raises(raidclient.ConnectionLost, match="cannot connect"):
        await raidclient.connect("ws://127.0.0.1:1/ws", "t")
