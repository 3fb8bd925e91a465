"""The demo world of ``serve --demo``: a running raid and ~20 players with varied rosters.

Deterministic (a fixed seed), so every ``make run`` shows the same players and characters.
"""

from __future__ import annotations

import random
import time

import orjson

from actors.raids import CharacterGrant
from actors.service import RaidService
from raid.models import RaidStatus
from server.errors import StartupError
from server.tokens import issue_token

DEMO_PLAYERS = 20
DEMO_SEED = 20261125
_NAMES = (
    "Aria", "Bram", "Cinder", "Dax", "Elowen", "Fen", "Gale", "Hollis", "Ivo", "Juno",
    "Kestrel", "Lumen", "Mira", "Nox", "Orin", "Pike", "Quill", "Rook", "Sable", "Tarn",
)  # fmt: skip


def demo_user(index: int) -> str:
    return f"player{index + 1:02d}"


async def seed_demo(service: RaidService) -> str:
    """Make sure a demo raid is running and the demo players have rosters; returns its id."""
    config = service.config
    rng = random.Random(DEMO_SEED)
    for index in range(DEMO_PLAYERS):
        user = demo_user(index)
        if await service.db.get_user_characters(user):
            continue
        grants = []
        for number in range(rng.randint(12, 20)):
            grants.append(
                CharacterGrant(
                    character_id=f"{user}-c{number + 1:02d}",
                    name=f"{rng.choice(_NAMES)} {rng.choice(_NAMES)}",
                    rarity=rng.randint(1, 5),
                    stats={s: rng.randint(20, 200) for s in config.rules.stats},
                    tags=(rng.choice(config.rules.elements), rng.choice(config.rules.roles)),
                )
            )
        await service.grant_roster(user, grants)
    for raid_id, status in service.statuses.items():
        if status is RaidStatus.ACTIVE:
            return raid_id
    if not config.bosses:
        raise StartupError(f"{config.source}: bosses: --demo needs at least one boss template")
    boss = next(iter(config.bosses))
    return await service.create_raid(boss)


def demo_tokens_json(secret: str, raid_id: str, ttl_s: float = 86400) -> bytes:
    """``GET /demo/tokens``: fresh tokens for every demo player and the operator.

    Issued per request, so a demo server that runs for days still hands out valid tokens.
    """
    now = time.time()
    accounts = [
        {
            "user_id": demo_user(i),
            "role": "player",
            "token": issue_token(secret, demo_user(i), "player", ttl_s, now),
        }
        for i in range(DEMO_PLAYERS)
    ]
    accounts.append(
        {
            "user_id": "admin",
            "role": "admin",
            "token": issue_token(secret, "admin", "admin", ttl_s, now),
        }
    )
    return orjson.dumps({"raid_id": raid_id, "accounts": accounts})
