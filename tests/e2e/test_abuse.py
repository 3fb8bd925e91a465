"""A hostile player against a real server process (issue 9, "Abuse"): bad tokens, operator
ops, other players' rewards, characters and strike_ids. Each attempt is refused with the
documented code, changes nothing, and leaves the connection usable."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.tokens import issue_token
from tests.e2e.harness import SECRET, Client, ServerProcess, token
from tests.soak.abuse import abuse


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _promoted(valid: str) -> str:
    """The player's token with its role changed to admin, keeping the player's signature."""
    payload_part, mac_part = valid.split(".")
    payload = json.loads(base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4)))
    payload["role"] = "admin"
    return _b64(json.dumps(payload).encode()) + "." + mac_part


@pytest.fixture
async def bob(server: ServerProcess, raid_id: str) -> AsyncIterator[Client]:
    client = await Client.connect(server)
    await client.hello("bob")
    try:
        yield client
    finally:
        await client.close()


async def test_forged_expired_and_foreign_tokens_are_unauthenticated(server: ServerProcess) -> None:
    now = time.time()
    bad_tokens = {
        "other secret": issue_token("another-secret-0123456789", "mallory", "admin", 3600, now),
        "expired": issue_token(SECRET, "mallory", "player", 10, now - 3600),
        "promoted": _promoted(token("mallory")),
        "no signature": token("mallory").split(".")[0] + ".",
        "empty": "",
        "garbage": "not a token",
    }
    client = await Client.connect(server)
    try:
        for name, bad in bad_tokens.items():
            reply = await client.request("hello", token=bad)
            assert reply["code"] == "unauthenticated", (name, reply)
            refused = await client.request("admin.rewards.pending")
            assert refused["code"] == "unauthenticated", (name, refused)
        assert (await client.hello("mallory"))["role"] == "player"
    finally:
        await client.close()


async def test_players_cannot_use_any_operator_op(alice: Client, raid_id: str) -> None:
    attempts: dict[str, dict[str, Any]] = {
        "admin.raid.create": {"boss": "dummy"},
        "admin.raid.end": {"raid_id": raid_id},
        "admin.roster.grant": {
            "user_id": "alice",
            "characters": [{"name": "X", "rarity": 5, "stats": {"power": 10**9}}],
        },
        "admin.snapshot": {"raid_id": raid_id},
        "admin.rewards.pending": {},
        "admin.rewards.ack": {"ids": [1, 2, 3]},
    }
    for op, fields in attempts.items():
        reply = await alice.request(op, **fields)
        assert reply["code"] == "forbidden", (op, reply)
    hub = await alice.ok("raid.hub", raid_id=raid_id)
    assert hub["raid"]["status"] == "active"
    options = await alice.ok("team.options", raid_id=raid_id)
    assert len(options["characters"]) == 6  # no character was granted


async def test_nobody_claims_another_players_rewards(
    alice: Client, bob: Client, raid_id: str
) -> None:
    report = await bob.ok(
        "strike", raid_id=raid_id, action="analyze", team=["bob-c0"], strike_id="b-an"
    )
    assert report["breakthroughs"], "bob's analysis should pass the first threshold"
    for key in ("breakthrough:1", "strike:b-an"):
        refused = await alice.request("rewards.claim", raid_id=raid_id, key=key)
        assert refused["code"] == "not_eligible", (key, refused)
    assert (await alice.ok("rewards.list", raid_id=raid_id))["claimed"] == []
    claimed = await bob.ok("rewards.claim", raid_id=raid_id, key="breakthrough:1")
    assert claimed["key"] == "breakthrough:1"


async def test_nobody_strikes_with_another_players_characters(
    alice: Client, bob: Client, raid_id: str
) -> None:
    refused = await alice.request(
        "strike", raid_id=raid_id, action="fight", team=["bob-c0", "alice-c0"], strike_id="x"
    )
    assert refused["code"] == "character_not_owned"
    assert refused["character_ids"] == ["bob-c0"]
    hub = await alice.ok("raid.hub", raid_id=raid_id)
    assert hub["raid"]["strike_count"] == 0
    assert (
        await bob.ok("strike", raid_id=raid_id, action="fight", team=["bob-c0"], strike_id="b")
    )["strike_count"] == 1
    # alice's refused strike used nothing: her character is still fresh
    await alice.ok("strike", raid_id=raid_id, action="fight", team=["alice-c0"], strike_id="x")


async def test_another_players_strike_id_is_not_theirs(
    alice: Client, bob: Client, raid_id: str
) -> None:
    original = await bob.ok(
        "strike", raid_id=raid_id, action="fight", team=["bob-c0"], strike_id="shared"
    )
    mine = await alice.ok(
        "strike", raid_id=raid_id, action="fight", team=["alice-c1"], strike_id="shared"
    )
    assert mine["team"] == ["alice-c1"] and mine["strike_count"] == original["strike_count"] + 1
    again = await bob.ok(
        "strike", raid_id=raid_id, action="fight", team=["bob-c0"], strike_id="shared"
    )
    assert {k: v for k, v in again.items() if k != "rid"} == {
        k: v for k, v in original.items() if k != "rid"
    }
    hub = await bob.ok("raid.hub", raid_id=raid_id)
    assert hub["raid"]["strike_count"] == 2


async def test_floods_hoarded_connections_slow_readers_and_half_handshakes(
    tmp_path: Path,
) -> None:
    """The server stays up, honest players are served throughout (every strike of theirs is
    acknowledged), and memory stays bounded (tests/soak/abuse.py; ``make soak`` runs the
    full sizes and reports the honest players' p99 against an unloaded run)."""
    sizes = {
        "flood of messages on one connection": 10_000,
        "connections for one user": 50,
        "slow readers": 1,
        "connections dropped mid-handshake": 50,
    }
    results = await abuse(tmp_path, sizes, honest=2, strikes=3, max_pending_bytes=65536, rounds=1)
    assert [r.faults for r in results] == list(sizes.values())
    for result in results:
        assert result.lost == 0
        assert result.operations >= 2 * 3
        # A loose guard against unbounded growth, not a figure: 10,000 frames or 50
        # connections must not cost the server anything near this.
        assert result.rss_after_kib - result.rss_before_kib < 200 * 1024, result
    assert "16 accepted" in results[1].notes[0]
    assert "1 disconnected" in results[2].notes[0]
