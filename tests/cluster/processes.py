"""``serve --workers N`` as a real process tree, and its children found through /proc."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.harness import ROOT, SECRET, log_lines, stop_process, write_config
from tests.timeouts import TIMEOUT

_ADDRESS = re.compile(r"World-Threat Raid server on 127\.0\.0\.1:(\d+)")


@dataclass
class ClusterProcess:
    process: subprocess.Popen[bytes]
    port: int
    db_path: Path
    log_path: Path
    out_path: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def children(self) -> dict[int, str]:
        """pid -> command line of the supervisor's live children."""
        found: dict[int, str] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                found[int(entry.name)] = cmdline
        return found

    def pids(self, role: str) -> list[int]:
        """Children whose command is ``role`` (gateway, host) or the nats-server."""
        if role == "nats":
            return [pid for pid, cmd in self.children().items() if "nats-server" in cmd]
        return [pid for pid, cmd in self.children().items() if f"run_server.py {role} " in cmd]

    def connections(self, pid: int) -> int:
        """Established client connections to our port held by process ``pid``."""
        established: set[str] = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == self.port and fields[3] == "01":
                established.add(fields[9])  # the socket's inode
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            held += target.startswith("socket:[") and target[8:-1] in established
        return held

    def wait_for_log(self, pattern: str, count: int = 1) -> None:
        """Until ``pattern`` occurs ``count`` times in the log (children's lines included)."""
        deadline = time.monotonic() + TIMEOUT * 3
        while time.monotonic() < deadline:
            if self.log_path.read_text(errors="replace").count(pattern) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} x{count} not in the log: {self.log_tail()}")

    def log_lines(self) -> list[dict[str, Any]]:
        return log_lines(self.log_path)

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the supervisor; every child it started must be gone afterwards."""
        children = list(self.children())
        stop_process(self.process, sig, TIMEOUT * 6)
        for pid in children:  # never leave a process behind, whatever happened
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        return self.process.returncode


def start_cluster(directory: Path, workers: int = 2, **config: Any) -> ClusterProcess:
    config_path = write_config(directory, **config)
    db_path = directory / "raid.db"
    log_path = directory / "cluster.log"
    out_path = directory / "cluster.out"
    env = {**os.environ, "RAID_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        str(ROOT / "run_server.py"),
        "serve",
        "--workers",
        str(workers),
        "--config",
        str(config_path),
        "--db",
        str(db_path),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--log-format",
        "json",
    ]
    with log_path.open("wb") as log_file, out_path.open("wb") as out_file:
        process = subprocess.Popen(
            command, stdout=out_file, stderr=log_file, cwd=directory, env=env
        )
    handle = ClusterProcess(process, 0, db_path, log_path, out_path)
    deadline = time.monotonic() + TIMEOUT * 6
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cluster exited with {process.returncode}: {handle.log_tail()}")
        found = _ADDRESS.search(out_path.read_text(errors="replace"))
        if found:
            handle.port = int(found.group(1))
            return handle
        time.sleep(0.05)
    handle.stop(signal.SIGKILL)
    raise RuntimeError(f"cluster did not become ready: {handle.log_tail()}")
