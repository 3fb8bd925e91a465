"""Typed client requests: one frozen dataclass per op, parsed from a decoded frame.

Parsing checks shapes only (types, lengths, ranges) and names the offending field in
``ProtocolError(bad_request)``; rules-level checks (team size, ownership, stat names)
belong to the service and the rules. Ops are data: ``PARSERS`` maps each op name to its
parser, so adding an op is adding a dataclass and a table entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Self, TypeGuard, TypeVar

from raid.config import Action
from raid.errors import ErrorCode, FieldError, ProtocolError
from raid.limits import INT64_MAX, INT64_MIN, MAX_ID_LEN, parse_time  # each defined once

Rid = int | str
"""The client's request id, echoed in the reply."""

MAX_TOKEN_LEN = 4096
MAX_LIST_ITEMS = 1000  # sanity bound on any list field
MAX_TAGS = 64

T = TypeVar("T")


def _bad(path: str, problem: str) -> ProtocolError:
    return FieldError(path, problem)


def _is_utf8(text: str) -> bool:
    # JSON can smuggle lone surrogates into a str; they cannot be re-encoded later.
    if text.isascii():  # the common case, checked in C without encoding a copy
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_text(value: object, max_len: int) -> TypeGuard[str]:
    return isinstance(value, str) and 1 <= len(value) <= max_len and _is_utf8(value)


def as_text(value: object, path: str, max_len: int = MAX_ID_LEN) -> str:
    """A string of 1..max_len characters."""
    if not _is_text(value, max_len):
        raise _bad(path, f"must be a string of 1-{max_len} characters")
    return value


def as_id(value: object, path: str) -> str:
    return as_text(value, path, MAX_ID_LEN)


def as_int(value: object, path: str, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    """An integer in [lo, hi]; ``True``/``False`` are not integers on the wire."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(path, "must be an integer")
    if not lo <= value <= hi:
        raise _bad(path, f"must be between {lo} and {hi}")
    return value


def as_time(value: object, path: str) -> float:
    """Unix seconds, or an ISO-8601 string (naive means UTC), within raid.limits' range."""
    try:
        return parse_time(value)
    except ValueError as exc:
        raise _bad(path, str(exc)) from None


def as_list(value: object, path: str, max_items: int = MAX_LIST_ITEMS) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(path, "must be a list")
    if len(value) > max_items:
        raise _bad(path, f"must have at most {max_items} items")
    return value


def as_map(value: object, path: str) -> Mapping[Any, Any]:
    if not isinstance(value, dict):
        raise _bad(path, "must be a map")
    return value


_ACTIONS: Mapping[str, Action] = MappingProxyType({action.value: action for action in Action})


def as_action(value: object, path: str) -> Action:
    action = _ACTIONS.get(value) if isinstance(value, str) else None
    if action is None:
        raise _bad(path, f"must be one of {', '.join(action.value for action in Action)}")
    return action


def as_id_tuple(value: object, path: str) -> tuple[str, ...]:
    items = as_list(value, path)
    if all(_is_text(item, MAX_ID_LEN) for item in items):  # no item path built when valid
        return tuple(items)
    return tuple(as_id(item, f"{path}[{i}]") for i, item in enumerate(items))


class Fields:
    """Field access for one request map that names the field in every error."""

    def __init__(self, msg: Mapping[str, Any], prefix: str = "") -> None:
        self._msg = msg  # the decoded request (or a nested map of it)
        self._prefix = prefix  # path of that map inside the request, for error messages

    def path(self, name: str) -> str:
        return f"{self._prefix}{name}" if self._prefix else name

    def req(self, name: str, conv: Callable[[object, str], T]) -> T:
        """A required field; null counts as missing."""
        value = self._msg.get(name)
        if value is None:
            raise _bad(self.path(name), "is required")
        return conv(value, self.path(name))

    def opt(self, name: str, conv: Callable[[object, str], T]) -> T | None:
        """An optional field; absent and null both give None."""
        value = self._msg.get(name)
        return None if value is None else conv(value, self.path(name))


# --- session and player ops -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    op: ClassVar[str] = "hello"
    token: str

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(token=f.req("token", _as_token))


def _as_token(value: object, path: str) -> str:
    """Any string up to MAX_TOKEN_LEN: an empty or otherwise malformed token is the token
    check's to refuse (``unauthenticated``), not a shape error."""
    if not isinstance(value, str) or len(value) > MAX_TOKEN_LEN:
        raise _bad(path, f"must be a string of at most {MAX_TOKEN_LEN} characters")
    return value


@dataclass(frozen=True, slots=True)
class Ping:
    op: ClassVar[str] = "ping"

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls()


@dataclass(frozen=True, slots=True)
class RaidHub:
    op: ClassVar[str] = "raid.hub"
    raid_id: str

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(raid_id=f.req("raid_id", as_id))


@dataclass(frozen=True, slots=True)
class RaidSubscribe:
    op: ClassVar[str] = "raid.subscribe"
    raid_id: str
    since_seq: int | None = None

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(
            raid_id=f.req("raid_id", as_id),
            since_seq=f.opt("since_seq", lambda v, p: as_int(v, p, lo=0)),
        )


@dataclass(frozen=True, slots=True)
class RaidUnsubscribe:
    op: ClassVar[str] = "raid.unsubscribe"
    raid_id: str

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(raid_id=f.req("raid_id", as_id))


@dataclass(frozen=True, slots=True)
class TeamOptions:
    op: ClassVar[str] = "team.options"
    raid_id: str

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(raid_id=f.req("raid_id", as_id))


@dataclass(frozen=True, slots=True)
class Strike:
    op: ClassVar[str] = "strike"
    raid_id: str
    action: Action
    team: tuple[str, ...]
    strike_id: str  # the client's idempotency key

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(
            raid_id=f.req("raid_id", as_id),
            action=f.req("action", as_action),
            team=f.req("team", as_id_tuple),
            strike_id=f.req("strike_id", as_id),
        )


@dataclass(frozen=True, slots=True)
class RewardsList:
    op: ClassVar[str] = "rewards.list"
    raid_id: str

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(raid_id=f.req("raid_id", as_id))


@dataclass(frozen=True, slots=True)
class RewardsClaim:
    op: ClassVar[str] = "rewards.claim"
    raid_id: str
    key: str

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(raid_id=f.req("raid_id", as_id), key=f.req("key", as_id))


# --- operator ops ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdminRaidCreate:
    op: ClassVar[str] = "admin.raid.create"
    boss: str  # boss template id
    start: float | None = None  # unix seconds; None = now
    end: float | None = None  # unix seconds; None = start + the template's duration_s
    raid_id: str | None = None  # None = the server picks one

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(
            boss=f.req("boss", as_id),
            start=f.opt("start", as_time),
            end=f.opt("end", as_time),
            raid_id=f.opt("raid_id", as_id),
        )


@dataclass(frozen=True, slots=True)
class AdminRaidEnd:
    op: ClassVar[str] = "admin.raid.end"
    raid_id: str

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(raid_id=f.req("raid_id", as_id))


def _as_stats(value: object, path: str) -> Mapping[str, int]:
    stats = {
        as_id(name, f"{path} key"): as_int(points, f"{path}.{name}")
        for name, points in as_map(value, path).items()
    }
    return MappingProxyType(stats)


def _as_tags(value: object, path: str) -> tuple[str, ...]:
    items = as_list(value, path, MAX_TAGS)
    return tuple(as_id(tag, f"{path}[{i}]") for i, tag in enumerate(items))


@dataclass(frozen=True, slots=True)
class CharacterSpec:
    character_id: str | None  # None = the server picks one
    name: str
    rarity: int
    stats: Mapping[str, int]  # a read-only view
    tags: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: object, path: str) -> CharacterSpec:
        f = Fields(as_map(value, path), prefix=f"{path}." if path else "")
        return cls(
            character_id=f.opt("character_id", as_id),
            name=f.req("name", as_id),
            rarity=f.req("rarity", as_int),
            stats=f.req("stats", _as_stats),
            tags=f.opt("tags", _as_tags) or (),
        )


def _as_characters(value: object, path: str) -> tuple[CharacterSpec, ...]:
    items = as_list(value, path)
    if not items:
        raise _bad(path, "must not be empty")
    return tuple(CharacterSpec.parse(item, f"{path}[{i}]") for i, item in enumerate(items))


@dataclass(frozen=True, slots=True)
class AdminRosterGrant:
    op: ClassVar[str] = "admin.roster.grant"
    user_id: str
    characters: tuple[CharacterSpec, ...]

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(user_id=f.req("user_id", as_id), characters=f.req("characters", _as_characters))


@dataclass(frozen=True, slots=True)
class AdminSnapshot:
    op: ClassVar[str] = "admin.snapshot"
    raid_id: str

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(raid_id=f.req("raid_id", as_id))


@dataclass(frozen=True, slots=True)
class AdminRaidRestore:
    op: ClassVar[str] = "admin.raid.restore"
    raid_id: str
    snapshot_id: int  # back to it, or forward again to one an earlier restore rolled back

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(
            raid_id=f.req("raid_id", as_id),
            snapshot_id=f.req("snapshot_id", lambda v, p: as_int(v, p, lo=1)),
        )


@dataclass(frozen=True, slots=True)
class AdminRewardsPending:
    op: ClassVar[str] = "admin.rewards.pending"
    limit: int = 100

    @classmethod
    def parse(cls, f: Fields) -> Self:
        limit = f.opt("limit", lambda v, p: as_int(v, p, lo=1, hi=1000))
        return cls() if limit is None else cls(limit=limit)


def _as_reward_ids(value: object, path: str) -> tuple[int, ...]:
    items = as_list(value, path)
    return tuple(as_int(item, f"{path}[{i}]", lo=0) for i, item in enumerate(items))


@dataclass(frozen=True, slots=True)
class AdminRewardsAck:
    op: ClassVar[str] = "admin.rewards.ack"
    ids: tuple[int, ...]

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(ids=f.req("ids", _as_reward_ids))


# --- the op table ---------------------------------------------------------------------

AdminRequest = (
    AdminRaidCreate
    | AdminRaidEnd
    | AdminRosterGrant
    | AdminSnapshot
    | AdminRaidRestore
    | AdminRewardsPending
    | AdminRewardsAck
)
Request = (
    Hello
    | Ping
    | RaidHub
    | RaidSubscribe
    | RaidUnsubscribe
    | TeamOptions
    | Strike
    | RewardsList
    | RewardsClaim
    | AdminRequest
)

_PLAYER_PARSERS: dict[str, Callable[[Fields], Request]] = {
    Hello.op: Hello.parse,
    Ping.op: Ping.parse,
    RaidHub.op: RaidHub.parse,
    RaidSubscribe.op: RaidSubscribe.parse,
    RaidUnsubscribe.op: RaidUnsubscribe.parse,
    TeamOptions.op: TeamOptions.parse,
    Strike.op: Strike.parse,
    RewardsList.op: RewardsList.parse,
    RewardsClaim.op: RewardsClaim.parse,
}
_ADMIN_PARSERS: dict[str, Callable[[Fields], Request]] = {
    AdminRaidCreate.op: AdminRaidCreate.parse,
    AdminRaidEnd.op: AdminRaidEnd.parse,
    AdminRosterGrant.op: AdminRosterGrant.parse,
    AdminSnapshot.op: AdminSnapshot.parse,
    AdminRaidRestore.op: AdminRaidRestore.parse,
    AdminRewardsPending.op: AdminRewardsPending.parse,
    AdminRewardsAck.op: AdminRewardsAck.parse,
}

PARSERS: Mapping[str, Callable[[Fields], Request]] = MappingProxyType(
    _PLAYER_PARSERS | _ADMIN_PARSERS
)
"""op name -> parser of that op's fields."""

ADMIN_OPS: frozenset[str] = frozenset(_ADMIN_PARSERS)
"""Ops that need a token with role ``admin``."""


def _as_rid(value: object, path: str) -> Rid:
    if isinstance(value, str):
        return as_id(value, path)
    if isinstance(value, int) and not isinstance(value, bool):
        return as_int(value, path)
    raise _bad(path, f"must be an integer or a string of 1-{MAX_ID_LEN} characters")


def peek_rid(msg: Mapping[str, Any]) -> Rid | None:
    """The request id if it is well-formed, so an error reply can still carry it."""
    try:
        return _as_rid(msg.get("rid"), "rid")
    except ProtocolError:
        return None


def parse_request(msg: Mapping[str, Any]) -> tuple[Rid, Request]:
    """Turn a decoded frame into ``(rid, request)`` or raise ``ProtocolError``."""
    op = msg.get("op")
    if not isinstance(op, str):
        raise _bad("op", "is required and must be a string")
    f = Fields(msg)
    rid = f.req("rid", _as_rid)
    parser = PARSERS.get(op)
    if parser is None:
        shown = op if len(op) <= MAX_ID_LEN else op[:MAX_ID_LEN] + "..."
        raise ProtocolError(ErrorCode.UNKNOWN_OP, f"unknown op {shown!a}")
    return rid, parser(f)
