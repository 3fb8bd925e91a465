from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from raid.config import Action
from raid.errors import ErrorCode, ProtocolError
from server.requests import (
    ADMIN_OPS,
    PARSERS,
    AdminRaidCreate,
    AdminRaidEnd,
    AdminRaidRestore,
    AdminRewardsAck,
    AdminRewardsPending,
    AdminRosterGrant,
    AdminSnapshot,
    CharacterSpec,
    Hello,
    Ping,
    RaidHub,
    RaidSubscribe,
    RaidUnsubscribe,
    Request,
    RewardsClaim,
    RewardsList,
    Strike,
    TeamOptions,
    parse_request,
    peek_rid,
)

ID64 = "x" * 64
ID65 = "x" * 65
CHARACTER = {"name": "Kara", "rarity": 3, "stats": {"power": 40}, "tags": ["fire"]}

HAPPY: list[tuple[dict[str, Any], Request]] = [
    ({"op": "hello", "token": "abc.def"}, Hello(token="abc.def")),
    ({"op": "ping"}, Ping()),
    ({"op": "raid.hub", "raid_id": "r1"}, RaidHub(raid_id="r1")),
    ({"op": "raid.subscribe", "raid_id": "r1"}, RaidSubscribe(raid_id="r1", since_seq=None)),
    ({"op": "raid.subscribe", "raid_id": "r1", "since_seq": 7}, RaidSubscribe("r1", 7)),
    ({"op": "raid.unsubscribe", "raid_id": ID64}, RaidUnsubscribe(raid_id=ID64)),
    ({"op": "team.options", "raid_id": "r1"}, TeamOptions(raid_id="r1")),
    (
        {
            "op": "strike",
            "raid_id": "r1",
            "action": "fight",
            "team": ["c1", "c2"],
            "strike_id": "s",
        },
        Strike(raid_id="r1", action=Action.FIGHT, team=("c1", "c2"), strike_id="s"),
    ),
    (
        {"op": "strike", "raid_id": "r1", "action": "analyze", "team": [], "strike_id": "s"},
        Strike(raid_id="r1", action=Action.ANALYZE, team=(), strike_id="s"),
    ),
    ({"op": "rewards.list", "raid_id": "r1"}, RewardsList(raid_id="r1")),
    (
        {"op": "rewards.claim", "raid_id": "r1", "key": "breakthrough:1"},
        RewardsClaim(raid_id="r1", key="breakthrough:1"),
    ),
    (
        {"op": "admin.raid.create", "boss": "leviathan"},
        AdminRaidCreate(boss="leviathan", start=None, end=None, raid_id=None),
    ),
    (
        {"op": "admin.raid.create", "boss": "b", "start": 10, "end": 20.5, "raid_id": "r9"},
        AdminRaidCreate(boss="b", start=10.0, end=20.5, raid_id="r9"),
    ),
    ({"op": "admin.raid.end", "raid_id": "r1"}, AdminRaidEnd(raid_id="r1")),
    (
        {"op": "admin.roster.grant", "user_id": "u1", "characters": [CHARACTER]},
        AdminRosterGrant(
            user_id="u1",
            characters=(CharacterSpec(None, "Kara", 3, {"power": 40}, ("fire",)),),
        ),
    ),
    ({"op": "admin.snapshot", "raid_id": "r1"}, AdminSnapshot(raid_id="r1")),
    (
        {"op": "admin.raid.restore", "raid_id": "r1", "snapshot_id": 7},
        AdminRaidRestore(raid_id="r1", snapshot_id=7),
    ),
    ({"op": "admin.rewards.pending"}, AdminRewardsPending(limit=100)),
    ({"op": "admin.rewards.pending", "limit": 1000}, AdminRewardsPending(limit=1000)),
    ({"op": "admin.rewards.ack", "ids": [1, 2, 3]}, AdminRewardsAck(ids=(1, 2, 3))),
]


def test_every_op_has_a_happy_case() -> None:
    assert {msg["op"] for msg, _ in HAPPY} == set(PARSERS)


def test_admin_ops_are_exactly_the_admin_prefixed_ops() -> None:
    assert {op for op in PARSERS if op.startswith("admin.")} == ADMIN_OPS


@pytest.mark.parametrize(("msg", "expected"), HAPPY, ids=[m["op"] for m, _ in HAPPY])
@pytest.mark.parametrize("rid", [1, "req-1"])
def test_happy_path(msg: dict[str, Any], expected: Request, rid: int | str) -> None:
    assert parse_request({**msg, "rid": rid}) == (rid, expected)


def refused(msg: dict[str, Any], code: ErrorCode = ErrorCode.BAD_REQUEST) -> str:
    with pytest.raises(ProtocolError) as caught:
        parse_request(msg)
    assert caught.value.code is code
    return caught.value.message


@pytest.mark.parametrize("op", [None, 5, True, ["ping"]])
def test_op_must_be_a_string(op: Any) -> None:
    msg = {"rid": 1} if op is None else {"op": op, "rid": 1}
    assert refused(msg).startswith("op:")


@pytest.mark.parametrize("rid", [None, True, False, 1.5, [], {}, "", ID65, 2**63])
def test_rid_must_be_an_int_or_a_short_string(rid: Any) -> None:
    msg = {"op": "ping"} if rid is None else {"op": "ping", "rid": rid}
    assert refused(msg).startswith("rid:")
    assert peek_rid(msg) is None


def test_peek_rid_reads_a_valid_rid_even_if_the_rest_is_wrong() -> None:
    assert peek_rid({"rid": 5, "op": 3}) == 5


def test_unknown_op() -> None:
    assert "nope" in refused({"op": "nope", "rid": 1}, ErrorCode.UNKNOWN_OP)
    long_op = refused({"op": "y" * 10_000, "rid": 1}, ErrorCode.UNKNOWN_OP)
    assert len(long_op) < 200


# (base message, field, bad value or None to drop it, error path expected in the message)
FIELD_ERRORS: list[tuple[dict[str, Any], str, Any, str]] = [
    ({"op": "hello", "token": "t"}, "token", None, "token"),
    ({"op": "hello", "token": "t"}, "token", 5, "token"),
    ({"op": "hello", "token": "t"}, "token", "", "token"),
    ({"op": "raid.hub", "raid_id": "r"}, "raid_id", None, "raid_id"),
    ({"op": "raid.hub", "raid_id": "r"}, "raid_id", ID65, "raid_id"),
    ({"op": "raid.hub", "raid_id": "r"}, "raid_id", 7, "raid_id"),
    ({"op": "raid.hub", "raid_id": "r"}, "raid_id", "\ud800", "raid_id"),
    ({"op": "raid.subscribe", "raid_id": "r"}, "since_seq", True, "since_seq"),
    ({"op": "raid.subscribe", "raid_id": "r"}, "since_seq", -1, "since_seq"),
    ({"op": "raid.subscribe", "raid_id": "r"}, "since_seq", "3", "since_seq"),
    ({"op": "raid.subscribe", "raid_id": "r"}, "since_seq", 1.0, "since_seq"),
    ({"op": "raid.unsubscribe", "raid_id": "r"}, "raid_id", "", "raid_id"),
    ({"op": "team.options", "raid_id": "r"}, "raid_id", None, "raid_id"),
    ({"op": "rewards.list", "raid_id": "r"}, "raid_id", ["r"], "raid_id"),
    ({"op": "rewards.claim", "raid_id": "r", "key": "k"}, "key", ID65, "key"),
    ({"op": "rewards.claim", "raid_id": "r", "key": "k"}, "key", None, "key"),
    ({"op": "admin.raid.create", "boss": "b"}, "boss", None, "boss"),
    ({"op": "admin.raid.create", "boss": "b"}, "start", "yesterday", "start"),
    ({"op": "admin.raid.create", "boss": "b"}, "start", True, "start"),
    ({"op": "admin.raid.create", "boss": "b"}, "end", [], "end"),
    ({"op": "admin.raid.create", "boss": "b"}, "end", float("inf"), "end"),
    ({"op": "admin.raid.create", "boss": "b"}, "raid_id", ID65, "raid_id"),
    ({"op": "admin.raid.end", "raid_id": "r"}, "raid_id", None, "raid_id"),
    ({"op": "admin.snapshot", "raid_id": "r"}, "raid_id", 1, "raid_id"),
    (
        {"op": "admin.raid.restore", "raid_id": "r", "snapshot_id": 1},
        "snapshot_id",
        0,
        "snapshot_id",
    ),
    (
        {"op": "admin.raid.restore", "raid_id": "r", "snapshot_id": 1},
        "snapshot_id",
        None,
        "snapshot_id",
    ),
    ({"op": "admin.raid.restore", "raid_id": "r", "snapshot_id": 1}, "raid_id", ID65, "raid_id"),
    ({"op": "admin.rewards.pending"}, "limit", 0, "limit"),
    ({"op": "admin.rewards.pending"}, "limit", 1001, "limit"),
    ({"op": "admin.rewards.pending"}, "limit", True, "limit"),
    ({"op": "admin.rewards.ack", "ids": [1]}, "ids", None, "ids"),
    ({"op": "admin.rewards.ack", "ids": [1]}, "ids", [1, True], "ids[1]"),
    ({"op": "admin.rewards.ack", "ids": [1]}, "ids", [-1], "ids[0]"),
    ({"op": "admin.rewards.ack", "ids": [1]}, "ids", 5, "ids"),
    ({"op": "admin.rewards.ack", "ids": [1]}, "ids", list(range(1001)), "ids"),
    (
        {"op": "admin.roster.grant", "user_id": "u", "characters": [CHARACTER]},
        "user_id",
        ID65,
        "user_id",
    ),
    (
        {"op": "admin.roster.grant", "user_id": "u", "characters": [CHARACTER]},
        "characters",
        [],
        "characters",
    ),
    (
        {"op": "admin.roster.grant", "user_id": "u", "characters": [CHARACTER]},
        "characters",
        {},
        "characters",
    ),
]


@pytest.mark.parametrize(("base", "name", "value", "path"), FIELD_ERRORS)
def test_field_errors_name_the_field(
    base: dict[str, Any], name: str, value: Any, path: str
) -> None:
    msg = {**base, "rid": 1}
    if value is None:
        msg.pop(name, None)
    else:
        msg[name] = value
    assert refused(msg).startswith(f"{path}:")


STRIKE = {
    "op": "strike",
    "rid": 1,
    "raid_id": "r",
    "action": "fight",
    "team": ["a"],
    "strike_id": "s",
}


@pytest.mark.parametrize(
    ("name", "value", "path"),
    [
        ("raid_id", None, "raid_id"),
        ("action", None, "action"),
        ("action", "dance", "action"),
        ("action", 1, "action"),
        ("team", None, "team"),
        ("team", "a", "team"),
        ("team", ["a", 3], "team[1]"),
        ("team", ["a", ID65], "team[1]"),
        ("strike_id", None, "strike_id"),
        ("strike_id", ID65, "strike_id"),
        ("strike_id", 12, "strike_id"),
    ],
)
def test_strike_field_errors(name: str, value: Any, path: str) -> None:
    msg = dict(STRIKE)
    if value is None:
        del msg[name]
    else:
        msg[name] = value
    assert refused(msg).startswith(f"{path}:")


def test_null_means_missing_for_required_and_absent_for_optional() -> None:
    assert refused({**STRIKE, "strike_id": None}).startswith("strike_id:")
    parsed = parse_request({"op": "raid.subscribe", "rid": 1, "raid_id": "r", "since_seq": None})
    assert parsed == (1, RaidSubscribe("r", None))


@pytest.mark.parametrize(
    ("character", "path"),
    [
        ({**CHARACTER, "name": None}, "characters[0].name"),
        ({**CHARACTER, "name": ID65}, "characters[0].name"),
        ({**CHARACTER, "rarity": True}, "characters[0].rarity"),
        ({**CHARACTER, "rarity": "3"}, "characters[0].rarity"),
        ({**CHARACTER, "stats": [1]}, "characters[0].stats"),
        ({**CHARACTER, "stats": {"power": 1.5}}, "characters[0].stats.power"),
        ({**CHARACTER, "stats": {"power": False}}, "characters[0].stats.power"),
        ({**CHARACTER, "stats": {"": 1}}, "characters[0].stats key"),
        ({**CHARACTER, "tags": "fire"}, "characters[0].tags"),
        ({**CHARACTER, "tags": ["fire", 2]}, "characters[0].tags[1]"),
        ({**CHARACTER, "character_id": ID65}, "characters[0].character_id"),
        ("Kara", "characters[0]"),
    ],
)
def test_character_field_errors(character: Any, path: str) -> None:
    msg = {"op": "admin.roster.grant", "rid": 1, "user_id": "u", "characters": [character]}
    assert refused(msg).startswith(f"{path}:")


def test_character_spec_is_read_only_and_tags_optional() -> None:
    character = {"character_id": "c1", "name": "Kara", "rarity": 5, "stats": {"power": 1}}
    msg = {"op": "admin.roster.grant", "rid": 1, "user_id": "u", "characters": [character]}
    _, req = parse_request(msg)
    assert isinstance(req, AdminRosterGrant)
    spec = req.characters[0]
    assert (spec.character_id, spec.tags) == ("c1", ())
    with pytest.raises(TypeError):
        spec.stats["power"] = 99  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2030-01-02T03:04:05Z", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()),
        ("2030-01-02T03:04:05", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()),
        ("2030-01-02T05:04:05+02:00", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()),
        ("2030-01-02", datetime(2030, 1, 2, tzinfo=UTC).timestamp()),
        (1_900_000_000, 1_900_000_000.0),
    ],
)
def test_raid_create_times(value: Any, expected: float) -> None:
    _, req = parse_request({"op": "admin.raid.create", "rid": 1, "boss": "b", "start": value})
    assert isinstance(req, AdminRaidCreate)
    assert req.start == expected


def test_unknown_extra_fields_are_ignored() -> None:
    assert parse_request({"op": "ping", "rid": 1, "extra": {"x": 1}}) == (1, Ping())
