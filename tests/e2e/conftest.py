"""Fixtures: a real server process per test, and connected, authenticated clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Client, ServerProcess, character, start_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    handle = start_server(tmp_path)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
async def admin(server: ServerProcess) -> AsyncIterator[Client]:
    client = await Client.connect(server)
    await client.hello("ops", "admin")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def raid_id(admin: Client) -> str:
    """A running raid of the test boss, with players alice and bob (6 characters each)."""
    for user in ("alice", "bob"):
        await admin.ok(
            "admin.roster.grant", user_id=user, characters=[character(user, i) for i in range(6)]
        )
    reply = await admin.ok("admin.raid.create", boss="dummy", raid_id="r1")
    return str(reply["raid_id"])


@pytest.fixture
async def alice(server: ServerProcess, raid_id: str) -> AsyncIterator[Client]:
    client = await Client.connect(server)
    await client.hello("alice")
    try:
        yield client
    finally:
        await client.close()
