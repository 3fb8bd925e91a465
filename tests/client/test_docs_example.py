"""The complete example of docs/client.md runs as written against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import raidclient
from tests.e2e.harness import ROOT, ServerProcess, token
from tests.timeouts import TIMEOUT


def _first_python_block(markdown: str) -> str:
    found = re.search(r"```python\n(.*?)```", markdown, re.DOTALL)
    assert found is not None
    return found.group(1)


async def test_the_complete_example_runs(
    server: ServerProcess, admin: raidclient.RaidClient, tmp_path: Path
) -> None:
    raid = await admin.create_raid("dummy")
    script = tmp_path / "example.py"
    script.write_text(_first_python_block((ROOT / "docs" / "client.md").read_text()))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    env |= {"RAID_URL": server.ws_url, "ADMIN_TOKEN": token("ops", "admin"),
            "PLAYER_TOKEN": token("reader")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True, text=True, timeout=TIMEOUT * 3, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "reader joins Training Dummy: 1000 hp"
    assert re.fullmatch(r"strike #1: \d+ damage, boss at \d+ hp, reward \{'raid_tokens': 10\}",
                        lines[1])  # fmt: skip
    hub = await admin.hub(raid)
    assert lines[-1] == f"hp {hub.raid.current_hp}/1000"
    assert hub.raid.strike_count == 1
