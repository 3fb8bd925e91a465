"""examples/bot.py against a real server: it strikes with its best teams and prints
the announcements its strikes cause."""

from __future__ import annotations

import os
import subprocess
import sys

import raidclient
from tests.e2e.harness import ROOT, ServerProcess, character, token
from tests.timeouts import TIMEOUT


async def test_bot_strikes_and_prints_announcements(
    server: ServerProcess, admin: raidclient.RaidClient
) -> None:
    await admin.grant_roster("botty", [character("botty", i, power=10 + i) for i in range(14)])
    raid = await admin.create_raid("dummy", raid_id="bots")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "bot.py"), "--url", server.ws_url,
         "--token", token("botty")],
        capture_output=True, text=True, timeout=TIMEOUT * 3, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "botty joins Training Dummy (1,000 hp left)"
    strikes = [line for line in lines if line.startswith("strike ")]
    # 14 characters, teams of the best 6: 6 + 6 + 2, then everyone rests for the raid
    assert [s.split(" with ")[1].split(":")[0] for s in strikes] == ["6", "6", "2"]
    assert "  >> The boss retaliates" in "\n".join(lines)  # retaliation_every = 3
    own = [line for line in lines if not line.startswith("  >> ")]  # announcements interleave
    assert own[-1] == "every character rests until the raid ends"
    hub = await admin.hub(raid)
    assert hub.raid.strike_count == 3
