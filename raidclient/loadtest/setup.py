"""Set-up with an admin token: a raid, synthetic players, their tokens and rosters.

Players log in with tokens signed by the server secret (``--secret`` / ``RAID_SECRET``),
or with the tokens of existing players (``--tokens FILE``, one per line). Either way the
tool grants each of them ``--roster`` characters of its own (ids starting with the run
id, so runs never collide) whose only stats are the boss's dominant stats at
``STAT_POINTS`` each: small, so a long run does not kill the boss, but never zero, so
the hp audit has damage to check.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import raidclient
from raidclient.loadtest.plan import Player
from server.tokens import issue_token

STAT_POINTS = 10
GRANT_CONNECTIONS = 8  # admin connections granting rosters in parallel
# Characters per admin.roster.grant: 1,000 (the list limit) make a ~79 KB frame, over the
# server's 64 KiB message limit.
MAX_GRANT = 500
_PROBE_BOSS = "raid-loadtest-no-such-boss"
_KNOWN = re.compile(r"\(known: ([^)]*)\)")


class SetupError(Exception):
    """Set-up failed; the message is the one-line reason (exit status 2)."""


@dataclass(frozen=True, slots=True)
class Baseline:
    """The raid as the load starts: the audit compares the end against it."""

    strike_count: int
    current_hp: int
    total_hp: int
    analysis_points: int

    @classmethod
    def of(cls, hub: raidclient.Hub) -> Baseline:
        raid = hub.raid
        return cls(raid.strike_count, raid.current_hp, raid.total_hp, raid.analysis_points)


@dataclass(frozen=True, slots=True)
class Prepared:
    raid_id: str
    created: bool  # the tool created the raid
    players: tuple[Player, ...]
    dominant_stats: tuple[str, ...]


def token_subject(token: str) -> str:
    """The ``sub`` of a token's payload (not verified: the server does that at hello)."""
    payload_part = token.partition(".")[0]
    try:
        payload = json.loads(
            base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4))
        )
    except (ValueError, binascii.Error):
        raise ValueError("not a token (its payload is not base64url JSON)") from None
    sub = payload.get("sub") if isinstance(payload, dict) else None
    if not isinstance(sub, str) or not sub:
        raise ValueError("not a token (its payload has no subject)")
    return sub


def read_tokens(path: Path) -> list[tuple[str, str]]:
    """(user_id, token) per non-empty, non-comment line of ``path``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SetupError(f"cannot read --tokens {path}: {exc.strerror or exc}") from None
    found = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            found.append((token_subject(text), text))
        except ValueError as exc:
            raise SetupError(f"{path}:{number}: {exc}") from None
    if not found:
        raise SetupError(f"{path}: no tokens in the file")
    return found


def make_run_id() -> str:
    return "lt" + uuid.uuid4().hex[:6]


def player_logins(
    run_id: str, clients: int, secret: str | None, tokens: list[tuple[str, str]] | None, ttl: float
) -> list[tuple[str, str]]:
    """(user_id, token) of every client."""
    if tokens is not None:
        if len(tokens) < clients:
            raise SetupError(
                f"--clients {clients} needs {clients} tokens, the file has {len(tokens)}"
            )
        return tokens[:clients]
    if not secret:
        raise SetupError(
            "the synthetic players need tokens: pass --secret (or set RAID_SECRET) or --tokens FILE"
        )
    now = time.time()
    return [
        (user, issue_token(secret, user, "player", ttl, now))
        for user in (f"{run_id}-p{i:05d}" for i in range(clients))
    ]


async def discover_boss(admin: raidclient.RaidClient) -> str:
    """The server's first boss template, read from the refusal of an unknown one.

    The protocol has no op that lists boss templates; ``admin.raid.create`` with an
    unknown boss answers ``bad_request`` naming the known ones (and creates nothing).
    """
    try:
        await admin.create_raid(_PROBE_BOSS)
    except raidclient.BadRequest as exc:
        found = _KNOWN.search(exc.message)
        names = [n.strip() for n in found.group(1).split(",")] if found else []
        if names and names[0]:
            return names[0]
        raise SetupError(
            f"pass --boss: the server did not list its boss templates ({exc.message})"
        ) from None
    raise SetupError(f"pass --boss: the server accepted boss {_PROBE_BOSS!r}")


async def prepare(
    url: str,
    admin_token: str,
    *,
    run_id: str,
    logins: list[tuple[str, str]],
    raid_id: str | None,
    boss: str | None,
    roster: int,
    fmt: str,
    on_granted: Callable[[int], None] | None = None,
) -> Prepared:
    """Create (or check) the raid and grant every player its characters."""
    async with await raidclient.connect(url, admin_token, fmt=fmt, reconnect=False) as admin:
        if admin.hello is None or admin.hello.role != "admin":
            raise SetupError("--admin-token is not an admin token")
        created = raid_id is None
        if raid_id is None:
            boss = boss or await discover_boss(admin)
            raid_id = await admin.create_raid(boss)
        hub = await admin.hub(raid_id)
        if hub.raid.status != "active":
            raise SetupError(f"raid {raid_id} is {hub.raid.status}, not active")
        stats = hub.raid.dominant_stats
    characters = [
        tuple(f"{run_id}-{index}-{k}" for k in range(roster)) for index in range(len(logins))
    ]
    await _grant_all(url, admin_token, fmt, logins, characters, stats, on_granted)
    players = tuple(
        Player(index, user, token, characters[index]) for index, (user, token) in enumerate(logins)
    )
    return Prepared(raid_id, created, players, stats)


async def _grant_all(
    url: str,
    admin_token: str,
    fmt: str,
    logins: list[tuple[str, str]],
    characters: list[tuple[str, ...]],
    stats: tuple[str, ...],
    on_granted: Callable[[int], None] | None,
) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(logins)):
        queue.put_nowait(index)

    async def granter() -> None:
        async with await raidclient.connect(url, admin_token, fmt=fmt) as admin:
            while not queue.empty():
                index = queue.get_nowait()
                ids = characters[index]
                user = logins[index][0]
                for start in range(0, len(ids), MAX_GRANT):
                    specs = [_character(cid, stats) for cid in ids[start : start + MAX_GRANT]]
                    await _patiently(partial(admin.grant_roster, user, specs))
                if on_granted is not None:
                    on_granted(1)

    await asyncio.gather(*(granter() for _ in range(min(GRANT_CONNECTIONS, len(logins)))))


def _character(character_id: str, stats: tuple[str, ...]) -> dict[str, Any]:
    return {
        "character_id": character_id,
        "name": "Load tester",
        "rarity": 1,
        "stats": {stat: STAT_POINTS for stat in stats},
    }


async def _patiently(call: Callable[[], Any]) -> Any:
    """Retry a call refused with ``rate_limited`` after the delay the server asks for."""
    while True:
        try:
            return await call()
        except raidclient.RateLimited as exc:
            await asyncio.sleep(exc.retry_after or 0.05)


async def read_baseline(
    url: str,
    admin_token: str,
    raid_id: str,
    fmt: str,
    patience_s: float | None = None,
) -> Baseline:
    """The raid's counters now. After a load pass ``patience_s``: a server still working
    through a backlog of strikes may not answer (or even read ``hello``) for a while, so
    the read is tried again, on a new connection, until it succeeds or that long passed."""
    deadline = time.monotonic() + (patience_s or 0.0)
    while True:
        try:
            async with await raidclient.connect(
                url, admin_token, fmt=fmt, reconnect=False
            ) as admin:
                return Baseline.of(await _patiently(lambda: admin.hub(raid_id)))
        except (raidclient.ConnectionLost, raidclient.RequestTimeout):
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(1.0)
