from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from persistence.database import Database
from tests.persistence.helpers import raid_row


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "raid.db"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(db_path)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def raid_id(db: Database) -> str:
    """A raid that exists, for the tables that reference boss_raids."""
    return (await db.create_boss_raid(raid_row("raid-1"))).raid_id
