"""The demo world of ``serve --demo``: a running raid and ~20 players with varied rosters.

Deterministic (a fixed seed), so every ``make run`` shows the same players and characters.
"""

from __future__ import annotations

import random

from actors.raids import CharacterGrant
from actors.service import RaidService
from raid.models import RaidStatus
from server.errors import StartupError

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
