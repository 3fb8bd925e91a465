"""``serve --workers N``: one address, an ordered stop, one-line refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from raidclient import connect
from tests.cluster.processes import start_cluster
from tests.e2e.harness import ROOT, SECRET, character, token
from tests.timeouts import TIMEOUT


async def test_sigterm_stops_gateways_then_the_host_then_nats(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path, workers=2)
    try:
        children = cluster.children()
        assert len(cluster.pids("gateway")) == 2
        assert len(cluster.pids("host")) == 1
        assert len(cluster.pids("nats")) == 1
        admin = await connect(cluster.ws_url, token("ops", "admin"))
        await admin.grant_roster("alice", [character("alice", 0)])
        await admin.create_raid("dummy", raid_id="r1")
        await admin.close()
        alice = await connect(cluster.ws_url, token("alice"))
        await alice.strike("r1", "analyze", ["alice-c0"], "s1")
        await alice.close()
        second = _serve(tmp_path, "--workers", "2", "--port", str(cluster.port))
        assert second.returncode == 1
        assert "already in use" in second.stderr  # never two servers sharing a port
    finally:
        code = cluster.stop()
    assert code == 0
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    messages = [line.get("msg", "") for line in cluster.log_lines()]
    gateways = [i for i, m in enumerate(messages) if m == "gateway stopped"]
    host = messages.index("raid host stopped")
    assert len(gateways) == 2
    assert max(gateways) < host < messages.index("stopped")
    out = cluster.out_path.read_text()
    assert out.count("ws://127.0.0.1:") == 1  # one address, whatever the number of gateways


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _serve(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_server.py"), "serve", "--host", "127.0.0.1", *args],
        capture_output=True,
        text=True,
        cwd=directory,
        env={**os.environ, "RAID_SECRET": SECRET},
        timeout=TIMEOUT * 3,
        check=False,
    )


def test_demo_needs_one_process(tmp_path: Path) -> None:
    done = _serve(tmp_path, "--workers", "2", "--demo")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "raid-server: --demo runs in one process: drop --workers (or use --workers 1)"
    ]
