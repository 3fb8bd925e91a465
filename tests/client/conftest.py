"""A real server per test and raidclient connections to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import raidclient
from tests.e2e.harness import ServerProcess, character, start_server, token, write_config


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    handle = start_server(tmp_path, config_path=write_config(tmp_path))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
async def admin(server: ServerProcess) -> AsyncIterator[raidclient.RaidClient]:
    async with await raidclient.connect(server.ws_url, token("ops", "admin")) as client:
        yield client


@pytest.fixture
async def raid_id(admin: raidclient.RaidClient) -> str:
    """A raid of the test boss with players alice and bob (6 characters each)."""
    for user in ("alice", "bob"):
        await admin.grant_roster(user, [character(user, i, power=100 + i) for i in range(6)])
    return await admin.create_raid("dummy", raid_id="r1")


@pytest.fixture
async def alice(server: ServerProcess, raid_id: str) -> AsyncIterator[raidclient.RaidClient]:
    async with await raidclient.connect(server.ws_url, token("alice")) as client:
        yield client
