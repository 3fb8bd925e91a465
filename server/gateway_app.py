"""``raid-server gateway``: a gateway process (WebSockets in, raids over NATS, no game state).

It runs the same ``Gateway`` as the single-process server, on a ``RemoteRaids`` instead of the
in-process ``RaidService``. With ``--reuse-port`` several gateways listen on one port
(``SO_REUSEPORT``: the kernel spreads new connections over them); on several machines put a
load balancer in front instead.

``/readyz`` answers 200 while the NATS connection is up. ``/metrics`` shows this process's
metrics only (behind a shared port, one gateway's: scrape each process's own port for a whole
picture).

SIGTERM or SIGINT: stop accepting, close every session gracefully (clients reconnect to
another gateway and resume with ``since_seq``), let strike batches in flight finish, drain
NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from dataclasses import dataclass

import nats.errors

from raid.config import Config
from server.app import SHUTDOWN_GRACE_S, tune_runtime
from server.errors import StartupError
from server.gateway import Gateway, GatewayConfig, serve
from server.host_app import LinkEvents, announce_ready, connect_nats, watch_supervisor
from server.http import load_assets, load_index_html, make_http_handler
from server.metrics import Metrics
from server.remote_raids import DEFAULT_TIMEOUT_S, RemoteRaids

log = logging.getLogger("raid.gateway")


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    host: str
    port: int
    nats_url: str
    prefix: str
    secret: str
    reuse_port: bool = False
    request_timeout_s: float = DEFAULT_TIMEOUT_S


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A bound socket (``SO_REUSEPORT`` if asked); a clear ``StartupError`` if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"address {where} is already in use; stop it or pick --port"
            ) from None
        raise StartupError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return sock


async def run_gateway(config: Config, options: GatewayOptions) -> int:
    """Serve WebSockets until SIGTERM/SIGINT; the exit code."""
    tune_runtime()
    sock = listening_socket(options.host, options.port, options.reuse_port)
    events = LinkEvents()
    nc = await connect_nats(options.nats_url, f"raid-gateway {options.host}:{options.port}", events)
    remote = RemoteRaids(nc, options.prefix, timeout_s=options.request_timeout_s)
    events.on_disconnect = remote.link_lost  # requests in flight may have lost their reply
    await remote.start()
    metrics = Metrics()
    gateway = Gateway(remote, GatewayConfig.of(config.server, options.secret), metrics)
    handler = make_http_handler(
        lambda: nc.is_connected, load_index_html(), metrics.render, assets=load_assets()
    )
    try:
        server = await serve(gateway, None, None, handler, sock=sock)
        port = sock.getsockname()[1]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        orphan = watch_supervisor(stop)
        log.info("listening", extra={"host": options.host, "port": port})
        announce_ready({"ready": "gateway", "port": port})
        await stop.wait()
        orphan.cancel()
        log.info("gateway draining: closing %d connections", len(gateway.sessions))
        server.close(close_connections=False)
        await gateway.close_all()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), SHUTDOWN_GRACE_S)
        await remote.close()
    finally:
        with contextlib.suppress(nats.errors.Error):
            await nc.drain()
        sock.close()
    log.info("gateway stopped")
    return 0
