"""Typed, immutable configuration, loaded from TOML and validated at load.

A config file may omit any key: it is merged over ``raid/default_config.toml`` (the shipped
defaults), then every value is checked. Each problem raises ``ConfigError`` naming the file,
the dotted key path and the problem, so the server refuses to start with a one-line reason.

Factors (curse factors, scoring bonuses) have at most two decimal places and are kept as exact
``Fraction`` values: no floating point ever enters score arithmetic.
"""

from __future__ import annotations

import enum
import functools
import itertools
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from raid.errors import ConfigError
from raid.limits import MAX_POINTS, MAX_TIME

Bundle = Mapping[str, int]
"""A reward bundle: currency -> amount (amounts are non-negative integers)."""

DEFAULT_CONFIG_NAME = "default_config.toml"


class CurseKind(enum.StrEnum):
    STAT_DRAIN = "stat_drain"
    TAG_SUPPRESSION = "tag_suppression"
    DAMPEN_WEAKNESS = "dampen_weakness"
    FORTIFY = "fortify"
    TEAM_CAP = "team_cap"
    COOLDOWN_SURGE = "cooldown_surge"


class Action(enum.StrEnum):
    FIGHT = "fight"
    ANALYZE = "analyze"


class Synchronous(enum.StrEnum):
    FULL = "FULL"
    NORMAL = "NORMAL"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str
    port: int
    compression: bool
    max_frame_bytes: int
    messages_per_s: float
    message_burst: int
    max_pending_bytes: int
    ping_interval_s: float
    ping_timeout_s: float
    secret: str
    token_ttl_s: float
    hello_timeout_s: float
    hello_raids: int
    """Raids ``hello`` lists at most: unfinished ones first, then the most recently created."""
    max_connections_per_user: int
    """Authenticated connections one user may hold at once; one more is refused at hello."""
    connections_per_address_per_s: float
    """New connections per second per client address (IPv6: per /64); 0 means no limit."""
    connection_burst_per_address: int
    """New connections one address may open at once; past the bucket: HTTP 429."""
    address_table: int
    """Client addresses the per-address limit tracks at most (least recently seen dropped)."""
    max_in_flight: int
    """Requests the whole server runs at once; past it requests answer ``unavailable``."""
    max_in_flight_per_raid: int
    """Requests naming one raid that run at once; past it they answer ``unavailable``."""
    max_in_flight_per_connection: int
    """Requests of one connection that run at once; past it they answer ``unavailable``."""
    max_tasks_per_connection: int
    """Requests other than strikes one connection runs at once; the next one is not read
    until one of them is answered (replies can be large: backpressure must see them)."""
    reply_bytes_per_message: int
    """A reply this large costs the rate limit one more message per this many bytes."""
    socket_send_buffer: int
    """SO_SNDBUF of each client connection (bytes); 0 keeps the system's autotuning."""
    overload_retry_after_s: float
    """The ``retry_after`` of a request shed because the server or its raid is full."""


@dataclass(frozen=True, slots=True)
class PersistenceConfig:
    synchronous: Synchronous
    snapshot_interval_s: float
    busy_timeout_ms: int
    journal_max_batch: int
    page_cache_mib: int
    """The journal writer's SQLite page cache: RSS rises by up to this as the file grows."""


@dataclass(frozen=True, slots=True)
class ActorsConfig:
    max_player_actors: int
    player_idle_s: float
    replay_buffer: int
    tick_s: float
    recent_outcomes: int
    """Accepted strikes a RaidActor keeps to answer repeated strike_ids without a read."""
    strike_id_window: int
    """A player's latest strike_ids kept in memory; older repeats are found in the journal."""
    roster_cache: int
    """Players whose roster is kept in memory."""
    raid_idle_s: float
    """A finished raid nobody sent anything for this long is unloaded (restored on demand)."""
    max_finished_raids: int
    """Finished raids loaded at most; loading one more unloads the least recently used."""
    raid_inbox: int
    """Messages queued for one RaidActor at most; past it they answer ``unavailable``."""
    player_inbox: int
    """Requests queued for one PlayerActor at most; past it they answer ``unavailable``."""
    bridge_queue: int
    """Callables actor threads may queue for the event loop; past it they wait."""
    request_timeout_s: float
    """A request not picked up by its raid by then is dropped; its caller gets ``unavailable``."""


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    weakness_bonus: Fraction
    resistance_penalty: Fraction
    multiplier_min: Fraction
    multiplier_max: Fraction
    damage_divisor: int
    analysis_divisor: int


@dataclass(frozen=True, slots=True)
class PlayerConfig:
    max_team_size: int
    strike_cooldown_s: Fraction
    character_rest_s: Fraction | None
    """Seconds a used character rests; None means for the rest of the raid ("event")."""


@dataclass(frozen=True, slots=True)
class RaidConfig:
    retaliation_every: int
    curse_limit: int
    claim_grace_s: float
    leaderboard_size: int
    hp_events_per_s: float


@dataclass(frozen=True, slots=True)
class Curse:
    curse_id: str
    name: str
    kind: CurseKind
    stat: str | None = None
    tag: str | None = None
    action: Action | None = None
    factor: Fraction = Fraction(1)
    max: int | None = None

    def params(self) -> dict[str, Any]:
        """The curse's params as the config wrote them (floats for display)."""
        out: dict[str, Any] = {}
        if self.stat is not None:
            out["stat"] = self.stat
        if self.tag is not None:
            out["tag"] = self.tag
        if self.action is not None:
            out["action"] = self.action.value
        if self.kind is CurseKind.TEAM_CAP:
            out["max"] = self.max
        else:
            out["factor"] = float(self.factor)
        return out


@dataclass(frozen=True, slots=True)
class Milestone:
    threshold: int
    reward: Bundle


@dataclass(frozen=True, slots=True)
class BossTemplate:
    boss_id: str
    name: str
    total_hp: int
    duration_s: float
    dominant_stats: tuple[str, ...]
    weaknesses: tuple[str, ...]
    resistances: tuple[str, ...]
    weakness_pool: tuple[str, ...]
    curse_pool: tuple[str, ...]
    analysis_thresholds: tuple[int, ...]
    analysis_reward_pool: tuple[Bundle, ...]
    victory_cache: Bundle
    raid: RaidConfig
    """The [raid] keys, with this boss's overrides applied."""


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything the pure rules engine needs, shared by every raid."""

    stats: tuple[str, ...]
    elements: tuple[str, ...]
    roles: tuple[str, ...]
    scoring: ScoringConfig
    player: PlayerConfig
    strike_rewards: Mapping[Action, Bundle]
    damage_milestones: tuple[Milestone, ...]
    analysis_milestones: tuple[Milestone, ...]
    curses: Mapping[str, Curse]

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(self.elements) | frozenset(self.roles)


@dataclass(frozen=True, slots=True)
class Config:
    source: str
    server: ServerConfig
    persistence: PersistenceConfig
    actors: ActorsConfig
    rules: Rules
    raid: RaidConfig
    bosses: Mapping[str, BossTemplate]


@functools.cache
def shipped_defaults() -> Config:
    """The shipped defaults (raid/default_config.toml): the one place every default lives.

    Code that needs a default value (a frame size, a rate) reads it here instead of
    repeating the number."""
    return load_config(None)


def load_config(path: str | Path | None = None) -> Config:
    """Load ``path`` merged over the shipped defaults (``None``: the defaults alone)."""
    defaults = _read_toml(_default_text(), DEFAULT_CONFIG_NAME)
    if path is None:
        return parse_config(defaults, DEFAULT_CONFIG_NAME)
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "(file)", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "(file)", f"cannot read: {exc}") from None
    return parse_config(merge_documents(defaults, _read_toml(text, file)), file)


def parse_config(data: Mapping[str, Any], source: str) -> Config:
    """Validate an already merged TOML document and build the typed config."""
    root = _Node(source, "", data)
    root.only(
        "server",
        "persistence",
        "actors",
        "stats",
        "tags",
        "scoring",
        "player",
        "raid",
        "strike_rewards",
        "milestones",
        "curses",
        "bosses",
    )
    stats = root.table("stats")
    stats.only("names")
    stat_names = stats.name_list("names", nonempty=True)
    tags = root.table("tags")
    tags.only("elements", "roles")
    elements = tags.name_list("elements", nonempty=True)
    roles = tags.name_list("roles", nonempty=True)
    overlap = set(elements) & set(roles)
    if overlap:
        raise tags.error("roles", f"{sorted(overlap)} are both elements and roles")
    all_tags = frozenset(elements) | frozenset(roles)

    root.table("raid").only(*_RAID_KEYS)
    raid = _raid_config(root.table("raid"), root.table("raid"))
    curses = _curses(root.table("curses"), frozenset(stat_names), all_tags)
    milestones = root.table("milestones")
    milestones.only("damage", "analysis")
    rules = Rules(
        stats=stat_names,
        elements=elements,
        roles=roles,
        scoring=_scoring(root.table("scoring")),
        player=_player(root.table("player")),
        strike_rewards=_strike_rewards(root.table("strike_rewards")),
        damage_milestones=_milestones(milestones, "damage"),
        analysis_milestones=_milestones(milestones, "analysis"),
        curses=MappingProxyType(curses),
    )
    bosses_node = root.table("bosses")
    bosses: dict[str, BossTemplate] = {}
    for boss_id in bosses_node.names():
        bosses[boss_id] = _boss(
            bosses_node.table(boss_id), boss_id, root.table("raid"), rules, all_tags
        )
    return Config(
        source=source,
        server=_server(root.table("server")),
        persistence=_persistence(root.table("persistence")),
        actors=_actors(root.table("actors")),
        rules=rules,
        raid=raid,
        bosses=MappingProxyType(bosses),
    )


def _default_text() -> str:
    return resources.files("raid").joinpath(DEFAULT_CONFIG_NAME).read_text(encoding="utf-8")


def _read_toml(text: str, file: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "(syntax)", str(exc)) from None


_NAMING_TABLES = frozenset({"stats", "tags"})
"""A file that renames stats or tags gets none of the shipped curses and bosses it does not
mention: those were written for the shipped names."""


def merge_documents(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a config document over another (a file over the shipped defaults): the one
    merge rule, also used by tests and benchmarks that build configs.

    Settings tables merge key by key. ``[strike_rewards]`` merges by action, each bundle taken
    whole. ``[curses]`` and ``[bosses]`` merge entry by entry: an entry the file names merges
    over the shipped entry of that name (a curse whose ``kind`` changes takes its ``params``
    whole; bundles are taken whole); shipped entries the file does not name are kept, unless
    the file defines ``[stats]`` or ``[tags]``. Arrays and every other value replace the default.
    """
    out = dict(base)
    renames = any(key in override for key in _NAMING_TABLES)
    for key, value in override.items():
        old = out.get(key)
        if not isinstance(old, dict) or not isinstance(value, dict):
            out[key] = value
        elif key in ("curses", "bosses"):
            kept = {} if renames else dict(old)
            for name, entry in value.items():
                default = old.get(name)
                if not isinstance(default, dict) or not isinstance(entry, dict):
                    kept[name] = entry
                elif key == "curses":
                    kept[name] = _merge_curse(default, entry)
                else:
                    kept[name] = {**default, **entry}
            out[key] = kept
        else:
            out[key] = {**old, **value}
    for key in ("curses", "bosses"):
        if renames and key not in override:
            out[key] = {}
    return out


def _merge_curse(default: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    merged = {**default, **entry}
    same_kind = entry.get("kind", default.get("kind")) == default.get("kind")
    params, new_params = default.get("params"), entry.get("params")
    if same_kind and isinstance(params, dict) and isinstance(new_params, dict):
        merged["params"] = {**params, **new_params}
    return merged


class _Node:
    """One TOML table being read, remembering its key path for error messages."""

    def __init__(self, file: str, path: str, data: Mapping[str, Any]) -> None:
        self.file = file  # config file name, for errors
        self.path = path  # dotted path of this table ("" at the root)
        self.data = data  # the table's raw values

    def key(self, key: str) -> str:
        # A TOML key may hold any character ("\n" included): an error stays one line.
        shown = key if key.isprintable() else json.dumps(key)
        return f"{self.path}.{shown}" if self.path else shown

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.file, self.key(key), problem)

    def names(self) -> list[str]:
        return list(self.data)

    def only(self, *allowed: str) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.error(key, f"unknown key (expected one of: {', '.join(allowed)})")

    def raw(self, key: str) -> Any:
        if key not in self.data:
            raise self.error(key, "missing")
        return self.data[key]

    def table(self, key: str) -> _Node:
        value = self.raw(key)
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table, not {_kind(value)}")
        return _Node(self.file, self.key(key), value)

    def string(self, key: str) -> str:
        value = self.raw(key)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"must be a non-empty string, not {_kind(value)}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {_kind(value)}")
        return value

    def integer(self, key: str, minimum: int = 0, maximum: int = MAX_POINTS) -> int:
        """An integer in [minimum, maximum]; no integer key may pass raid.limits.MAX_POINTS."""
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, not {_kind(value)}")
        return _in_range(self, key, value, minimum, maximum)

    def number(self, key: str, minimum: float = 0, maximum: float = MAX_TIME) -> float:
        """A finite number in [minimum, maximum] (by default at most raid.limits.MAX_TIME)."""
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, not {_kind(value)}")
        if isinstance(value, float) and math.isnan(value):
            raise self.error(key, "must be a number, not nan")
        # The range check comes first: float() of a 400-digit integer raises OverflowError.
        return float(_in_range(self, key, value, minimum, maximum))

    def seconds(self, key: str, maximum: Fraction) -> Fraction:
        """A duration in [0, maximum] seconds, kept exact; any number of decimals (exactness
        limits belong to factors, which multiply scores, not to times)."""
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number of seconds, not {_kind(value)}")
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if not exact.is_finite():
            raise self.error(key, "must be a finite number of seconds")
        result = Fraction(exact)
        if not 0 <= result <= maximum:
            raise self.error(key, f"{value} is out of range [0, {maximum}]")
        return result

    def factor(self, key: str, minimum: Fraction, maximum: Fraction, *, open_min: bool) -> Fraction:
        """An exact number with at most two decimal places."""
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, not {_kind(value)}")
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if not exact.is_finite():
            raise self.error(key, "must be a finite number")
        result = Fraction(exact)
        if (result * 100).denominator != 1:
            raise self.error(key, f"{value} has more than two decimal places")
        too_low = result <= minimum if open_min else result < minimum
        if too_low or result > maximum:
            low = "(" if open_min else "["
            raise self.error(
                key, f"{value} is out of range {low}{float(minimum)}, {float(maximum)}]"
            )
        return result

    def name_list(
        self, key: str, *, nonempty: bool = False, allowed: frozenset[str] | None = None
    ) -> tuple[str, ...]:
        value = self.raw(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, "must be a list of non-empty strings")
        if nonempty and not value:
            raise self.error(key, "must not be empty")
        if len(set(value)) != len(value):
            raise self.error(key, "has duplicate entries")
        if allowed is not None:
            unknown = [v for v in value if v not in allowed]
            if unknown:
                raise self.error(key, f"unknown name(s) {unknown}")
        return tuple(value)

    def bundle(self, key: str) -> Bundle:
        value = self.raw(key)
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table of currency = amount, not {_kind(value)}")
        return _bundle(self, key, value)


def _bundle(node: _Node, key: str, value: Mapping[str, Any]) -> Bundle:
    out: dict[str, int] = {}
    for currency, amount in value.items():
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise node.error(f"{key}.{currency}", f"must be an integer amount, not {_kind(amount)}")
        if amount < 0:
            raise node.error(f"{key}.{currency}", f"negative amount {_shown(amount)}")
        if amount > MAX_POINTS:
            raise node.error(f"{key}.{currency}", f"above the maximum amount {MAX_POINTS}")
        out[currency] = amount
    return MappingProxyType(out)


_N = TypeVar("_N", int, float)


def _in_range(node: _Node, key: str, value: _N, minimum: float, maximum: float) -> _N:
    if value < minimum:
        raise node.error(key, f"{_shown(value)} is below the minimum {minimum}")
    if value > maximum:
        raise node.error(key, f"{_shown(value)} is above the maximum {maximum}")
    return value


def _shown(value: float) -> str:
    """A number for an error message: a 400-digit integer is not worth printing whole."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"


def _kind(value: object) -> str:
    return type(value).__name__


def _ascending(node: _Node, key: str, values: list[int]) -> None:
    for before, after in itertools.pairwise(values):
        if after <= before:
            raise node.error(key, f"thresholds must be strictly ascending ({before} then {after})")


def _server(node: _Node) -> ServerConfig:
    node.only(
        "host",
        "port",
        "compression",
        "max_frame_bytes",
        "messages_per_s",
        "message_burst",
        "max_pending_bytes",
        "ping_interval_s",
        "ping_timeout_s",
        "secret",
        "token_ttl_s",
        "hello_timeout_s",
        "hello_raids",
        "max_connections_per_user",
        "connections_per_address_per_s",
        "connection_burst_per_address",
        "address_table",
        "max_in_flight",
        "max_in_flight_per_raid",
        "max_in_flight_per_connection",
        "max_tasks_per_connection",
        "reply_bytes_per_message",
        "socket_send_buffer",
        "overload_retry_after_s",
    )
    return ServerConfig(
        host=node.string("host"),
        port=node.integer("port", 0, 65535),
        compression=node.boolean("compression"),
        max_frame_bytes=node.integer("max_frame_bytes", 1024),
        messages_per_s=node.number("messages_per_s", 0.001),
        message_burst=node.integer("message_burst", 1),
        max_pending_bytes=node.integer("max_pending_bytes", 1024),
        ping_interval_s=node.number("ping_interval_s", 0.01),
        ping_timeout_s=node.number("ping_timeout_s", 0.01),
        secret=node.string("secret"),
        token_ttl_s=node.number("token_ttl_s", 1),
        hello_timeout_s=node.number("hello_timeout_s", 0.01),
        hello_raids=node.integer("hello_raids", 1, 10_000),
        max_connections_per_user=node.integer("max_connections_per_user", 1),
        connections_per_address_per_s=node.number("connections_per_address_per_s", 0),
        connection_burst_per_address=node.integer("connection_burst_per_address", 1),
        address_table=node.integer("address_table", 1),
        max_in_flight=node.integer("max_in_flight", 1),
        max_in_flight_per_raid=node.integer("max_in_flight_per_raid", 1),
        max_in_flight_per_connection=node.integer("max_in_flight_per_connection", 1),
        max_tasks_per_connection=node.integer("max_tasks_per_connection", 1),
        reply_bytes_per_message=node.integer("reply_bytes_per_message", 1024),
        socket_send_buffer=_send_buffer(node),
        overload_retry_after_s=node.number("overload_retry_after_s", 0.001, 3600),
    )


def _send_buffer(node: _Node) -> int:
    size = node.integer("socket_send_buffer", 0, 2**30)
    if 0 < size < 4096:
        raise node.error(
            "socket_send_buffer", f"must be 0 (the system's) or at least 4096, not {size}"
        )
    return size


def _persistence(node: _Node) -> PersistenceConfig:
    node.only(
        "synchronous",
        "snapshot_interval_s",
        "busy_timeout_ms",
        "journal_max_batch",
        "page_cache_mib",
    )
    sync = node.string("synchronous").upper()
    if sync not in Synchronous.__members__:
        raise node.error("synchronous", f"must be FULL or NORMAL, not {sync!r}")
    return PersistenceConfig(
        synchronous=Synchronous(sync),
        snapshot_interval_s=node.number("snapshot_interval_s", 0.01),
        busy_timeout_ms=node.integer("busy_timeout_ms", 0, 2**31 - 1),
        journal_max_batch=node.integer("journal_max_batch", 1),
        page_cache_mib=node.integer("page_cache_mib", 1, 65536),
    )


def _actors(node: _Node) -> ActorsConfig:
    node.only(
        "max_player_actors",
        "player_idle_s",
        "replay_buffer",
        "tick_s",
        "recent_outcomes",
        "strike_id_window",
        "roster_cache",
        "raid_idle_s",
        "max_finished_raids",
        "raid_inbox",
        "player_inbox",
        "bridge_queue",
        "request_timeout_s",
    )
    return ActorsConfig(
        max_player_actors=node.integer("max_player_actors", 1),
        player_idle_s=node.number("player_idle_s", 0.001),
        replay_buffer=node.integer("replay_buffer", 1),
        tick_s=node.number("tick_s", 0.001, 10),
        recent_outcomes=node.integer("recent_outcomes", 1),
        strike_id_window=node.integer("strike_id_window", 1),
        roster_cache=node.integer("roster_cache", 1),
        raid_idle_s=node.number("raid_idle_s", 0.001),
        max_finished_raids=node.integer("max_finished_raids", 1),
        raid_inbox=node.integer("raid_inbox", 1),
        player_inbox=node.integer("player_inbox", 1),
        bridge_queue=node.integer("bridge_queue", 1),
        request_timeout_s=node.number("request_timeout_s", 0.01, 3600),
    )


def _scoring(node: _Node) -> ScoringConfig:
    node.only(
        "weakness_bonus",
        "resistance_penalty",
        "multiplier_min",
        "multiplier_max",
        "damage_divisor",
        "analysis_divisor",
    )
    ten, hundred = Fraction(10), Fraction(100)
    scoring = ScoringConfig(
        weakness_bonus=node.factor("weakness_bonus", Fraction(0), ten, open_min=False),
        resistance_penalty=node.factor("resistance_penalty", Fraction(0), ten, open_min=False),
        multiplier_min=node.factor("multiplier_min", Fraction(0), hundred, open_min=True),
        multiplier_max=node.factor("multiplier_max", Fraction(0), hundred, open_min=True),
        damage_divisor=node.integer("damage_divisor", 1),
        analysis_divisor=node.integer("analysis_divisor", 1),
    )
    if scoring.multiplier_min > scoring.multiplier_max:
        raise node.error("multiplier_min", "must not exceed multiplier_max")
    return scoring


def _player(node: _Node) -> PlayerConfig:
    node.only("max_team_size", "strike_cooldown_s", "character_rest")
    rest = node.raw("character_rest")
    rest_s: Fraction | None
    if rest == "event":
        rest_s = None
    elif isinstance(rest, int | float) and not isinstance(rest, bool):
        rest_s = node.seconds("character_rest", MAX_SECONDS)  # 0: no rest at all
    else:
        shown = rest if not isinstance(rest, str) or len(rest) <= 24 else f"{rest[:24]}..."
        raise node.error("character_rest", f'must be "event" or a number of seconds, not {shown!r}')
    return PlayerConfig(
        max_team_size=node.integer("max_team_size", 1, 64),
        strike_cooldown_s=node.seconds("strike_cooldown_s", MAX_SECONDS),
        character_rest_s=rest_s,
    )


MAX_SECONDS = Fraction(10**9)
"""The longest cooldown or rest (about 31 years)."""


MAX_ACTIVE_CURSES = 64
"""At most this many curses at once: their factors (each at most 10) multiply into scores."""

_RAID_KEYS = (
    "retaliation_every",
    "curse_limit",
    "claim_grace_s",
    "leaderboard_size",
    "hp_events_per_s",
)


def _raid_config(node: _Node, defaults: _Node) -> RaidConfig:
    """[raid] keys of ``node``, falling back to ``defaults`` (a boss overriding [raid])."""

    def pick(key: str) -> _Node:
        return node if key in node.data else defaults

    return RaidConfig(
        retaliation_every=pick("retaliation_every").integer("retaliation_every", 1),
        curse_limit=pick("curse_limit").integer("curse_limit", 0, MAX_ACTIVE_CURSES),
        claim_grace_s=pick("claim_grace_s").number("claim_grace_s", 0),
        leaderboard_size=pick("leaderboard_size").integer("leaderboard_size", 1, 1000),
        hp_events_per_s=pick("hp_events_per_s").number("hp_events_per_s", 0.01),
    )


def _strike_rewards(node: _Node) -> Mapping[Action, Bundle]:
    node.only(*(a.value for a in Action))
    return MappingProxyType({action: node.bundle(action.value) for action in Action})


def _milestones(node: _Node, key: str) -> tuple[Milestone, ...]:
    raw = node.raw(key)
    if not isinstance(raw, list):
        raise node.error(key, "must be an array of tables ([[milestones.…]])")
    out: list[Milestone] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise node.error(f"{key}[{index}]", "must be a table with threshold and reward")
        item = _Node(node.file, node.key(f"{key}[{index}]"), entry)
        item.only("threshold", "reward")
        out.append(Milestone(item.integer("threshold", 1), item.bundle("reward")))
    _ascending(node, key, [m.threshold for m in out])
    return tuple(out)


_CURSE_PARAMS: Mapping[CurseKind, tuple[str, ...]] = {
    CurseKind.STAT_DRAIN: ("stat", "factor"),
    CurseKind.TAG_SUPPRESSION: ("tag", "factor"),
    CurseKind.DAMPEN_WEAKNESS: ("factor",),
    CurseKind.FORTIFY: ("action", "factor"),
    CurseKind.TEAM_CAP: ("max",),
    CurseKind.COOLDOWN_SURGE: ("factor",),
}
"""The params each curse kind takes (RULES.md, "Curse kinds")."""


def _curses(node: _Node, stats: frozenset[str], tags: frozenset[str]) -> dict[str, Curse]:
    out: dict[str, Curse] = {}
    for curse_id in node.names():
        entry = node.table(curse_id)
        entry.only("name", "kind", "params")
        kind_name = entry.string("kind")
        if kind_name not in {k.value for k in CurseKind}:
            raise entry.error("kind", f"unknown curse kind {kind_name!r}")
        kind = CurseKind(kind_name)
        params = entry.table("params")
        params.only(*_CURSE_PARAMS[kind])
        for needed in _CURSE_PARAMS[kind]:
            params.raw(needed)
        fields: dict[str, Any] = {}
        if "stat" in params.data:
            stat = params.string("stat")
            if stat not in stats:
                raise params.error("stat", f"unknown stat {stat!r}")
            fields["stat"] = stat
        if "tag" in params.data:
            tag = params.string("tag")
            if tag not in tags:
                raise params.error("tag", f"unknown tag {tag!r}")
            fields["tag"] = tag
        if "action" in params.data:
            action = params.string("action")
            if action not in {a.value for a in Action}:
                raise params.error("action", f"must be fight or analyze, not {action!r}")
            fields["action"] = Action(action)
        if "factor" in params.data:
            fields["factor"] = params.factor("factor", Fraction(0), Fraction(10), open_min=True)
        if "max" in params.data:
            fields["max"] = params.integer("max", 1, 64)
        out[curse_id] = Curse(curse_id, entry.string("name"), kind, **fields)
    return out


def _boss(
    node: _Node, boss_id: str, raid_defaults: _Node, rules: Rules, tags: frozenset[str]
) -> BossTemplate:
    node.only(
        "name",
        "total_hp",
        "duration_s",
        "dominant_stats",
        "weaknesses",
        "resistances",
        "weakness_pool",
        "curse_pool",
        "analysis_thresholds",
        "analysis_reward_pool",
        "victory_cache",
        *_RAID_KEYS,
    )
    stats = frozenset(rules.stats)
    thresholds_raw = node.raw("analysis_thresholds")
    if not isinstance(thresholds_raw, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) and 0 < t <= MAX_POINTS
        for t in thresholds_raw
    ):
        raise node.error(
            "analysis_thresholds", f"must be a list of integers from 1 to {MAX_POINTS}"
        )
    _ascending(node, "analysis_thresholds", thresholds_raw)
    pool_raw = node.raw("analysis_reward_pool")
    if not isinstance(pool_raw, list) or not all(isinstance(b, dict) for b in pool_raw):
        raise node.error("analysis_reward_pool", "must be a list of reward tables")
    if len(pool_raw) != len(thresholds_raw):
        raise node.error(
            "analysis_reward_pool",
            f"has {len(pool_raw)} rewards for {len(thresholds_raw)} analysis_thresholds",
        )
    curse_pool = node.name_list("curse_pool", allowed=frozenset(rules.curses))
    weakness_pool = node.name_list("weakness_pool", allowed=tags)
    if not curse_pool and not weakness_pool and not thresholds_raw:
        raise node.error("weakness_pool", "the boss has no weakness pool, curse pool or thresholds")
    return BossTemplate(
        boss_id=boss_id,
        name=node.string("name"),
        total_hp=node.integer("total_hp", 1),
        duration_s=node.number("duration_s", 1),
        dominant_stats=node.name_list("dominant_stats", nonempty=True, allowed=stats),
        weaknesses=node.name_list("weaknesses", allowed=tags),
        resistances=node.name_list("resistances", allowed=tags),
        weakness_pool=weakness_pool,
        curse_pool=curse_pool,
        analysis_thresholds=tuple(thresholds_raw),
        analysis_reward_pool=tuple(
            _bundle(node, f"analysis_reward_pool[{i}]", b) for i, b in enumerate(pool_raw)
        ),
        victory_cache=node.bundle("victory_cache"),
        raid=_raid_config(node, raid_defaults),
    )
