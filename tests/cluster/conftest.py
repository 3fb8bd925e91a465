"""Fixtures: a real nats-server (the package's binary) on a free port, stopped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pykka
import pytest
from nats.aio.client import Client as NATS

from server.nats_process import NatsServer


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    """Whatever a test leaves running is stopped, so tests never leak threads."""
    yield None
    pykka.ActorRegistry.stop_all()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer.start(log_path=tmp_path / "nats-server.log")
    try:
        yield server
    finally:
        server.stop()


async def connect(url: str) -> NATS:
    return await nats.connect(url, name="test", max_reconnect_attempts=-1, reconnect_time_wait=0.1)


@pytest.fixture
async def nats_client(nats_server: NatsServer) -> AsyncIterator[NATS]:
    nc = await connect(nats_server.url)
    try:
        yield nc
    finally:
        await nc.close()
