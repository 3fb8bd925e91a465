"""A real RaidService (real actors, a real SQLite file) running in the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pykka
import pytest

from actors.raids import CharacterGrant
from actors.service import RaidService
from persistence.database import Database
from raid.config import Action, Config, load_config
from server.metrics import Metrics
from tests.e2e.harness import TEST_CONFIG


@pytest.fixture(autouse=True)
def _stop_all_actors() -> object:
    """Whatever a test leaves running is stopped, so tests never leak threads."""
    yield None
    pykka.ActorRegistry.stop_all()


def make_config(directory: Path, extra: str = "", cooldown_s: int = 0) -> Config:
    path = directory / "config.toml"
    text = TEST_CONFIG.replace("strike_cooldown_s = 0", f"strike_cooldown_s = {cooldown_s}")
    path.write_text(text + extra, encoding="utf-8")
    return load_config(path)


class Harness:
    def __init__(self, service: RaidService, db: Database, directory: Path) -> None:
        self.service = service
        self.db = db
        self.directory = directory

    async def grant(self, user_id: str, count: int = 6, power: int = 100) -> list[str]:
        grants = [
            CharacterGrant(f"{user_id}-c{i}", f"Hero {i}", 3, {"power": power}, ("fire", "striker"))
            for i in range(count)
        ]
        return await self.service.grant_roster(user_id, grants)

    async def strike(
        self,
        user_id: str,
        raid_id: str,
        team: list[str],
        strike_id: str,
        action: Action = Action.FIGHT,
    ) -> dict[str, object]:
        return await self.service.strike(user_id, raid_id, action, team, strike_id)


async def open_harness(
    directory: Path, extra: str = "", cooldown_s: int = 0
) -> tuple[Harness, RaidService, Database]:
    config = make_config(directory, extra, cooldown_s)
    db = await Database.open(directory / "raid.db")
    service = RaidService(config, db, Metrics())
    await service.start()
    return Harness(service, db, directory), service, db


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h, service, db = await open_harness(tmp_path)
    try:
        yield h
    finally:
        await service.stop()
        await db.close()
