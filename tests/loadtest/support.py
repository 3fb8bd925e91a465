"""Running raid-loadtest as a user does: a subprocess, its exit status, its JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.titan import TITAN_BOSS
from tests.e2e.harness import SECRET, write_config
from tests.timeouts import TIMEOUT

LOADTEST = [sys.executable, "-m", "raidclient.loadtest"]


def tool_env() -> dict[str, str]:
    """The environment of a user: no asyncio debug mode (make test sets it for pytest)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    result: dict[str, Any] | None  # the --json file, when it was written


def loadtest_config(directory: Path, extra: str = "") -> Path:
    """The e2e test config with a boss that cannot die and characters that rest 0.01 s,
    so a few clients can strike back to back with small rosters."""
    path = write_config(directory, extra=TITAN_BOSS + extra)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('character_rest = "event"', "character_rest = 0.01"))
    return path


async def run_loadtest(url: str, directory: Path, *args: str, secret: str = SECRET) -> Outcome:
    """Run ``python -m raidclient.loadtest`` against ``url`` and collect what it left."""
    json_path = directory / f"result-{len(list(directory.glob('result-*.json')))}.json"
    process = await asyncio.create_subprocess_exec(
        *LOADTEST,
        "--url",
        url,
        "--secret",
        secret,
        "--quiet",
        "--json",
        str(json_path),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=tool_env(),
    )
    try:
        async with asyncio.timeout(TIMEOUT * 9):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    result = json.loads(json_path.read_text()) if json_path.exists() else None
    assert process.returncode is not None
    return Outcome(process.returncode, stdout.decode(), stderr.decode(), result)
