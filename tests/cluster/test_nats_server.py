"""The embedded nats-server starts from the package's binary and carries messages."""

from __future__ import annotations

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from server.nats_process import NatsServer
from tests.timeouts import TIMEOUT


async def test_request_reply_through_the_packaged_server(
    nats_server: NatsServer, nats_client: NATS
) -> None:
    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data[::-1])

    await nats_client.subscribe("echo", cb=echo)
    reply = await nats_client.request("echo", b"abc", timeout=TIMEOUT)
    assert reply.data == b"cba"
    assert nats_server.port > 0


def test_stop_ends_the_process(nats_server: NatsServer) -> None:
    assert nats_server.process.poll() is None
    nats_server.stop()
    assert nats_server.process.poll() is not None
