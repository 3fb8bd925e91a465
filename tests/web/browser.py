"""Real Chromium for the browser-client tests: Debian's build, driven by Playwright.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (``apt-get install
chromium``; ``make test`` and ``.ci/run`` install it when missing). Screenshots of every screen
go to ``tmp/artifacts/`` (ignored by git).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect
from websockets.sync.client import ClientConnection, connect

from tests.e2e.harness import ROOT, ServerProcess, token
from tests.timeouts import TIMEOUT

CHROMIUM = os.environ.get("RAID_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tmp" / "artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = TIMEOUT * 1000


def chromium_path() -> str:
    """The browser binary; a clear failure when it is not installed."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        raise RuntimeError(f"{CHROMIUM} not found: apt-get install -y chromium")
    return CHROMIUM


def screenshot(target: Page | Locator, name: str) -> Path:
    """Save a screenshot of a page (whole) or one element as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if isinstance(target, Page):
        target.screenshot(path=str(path), full_page=True)
    else:
        target.screenshot(path=str(path))
    return path


def open_client(page: Page, server: ServerProcess, user: str, role: str = "player") -> None:
    """Load the page logged in through ``#token=`` and wait until the hub is drawn."""
    page.goto(f"http://127.0.0.1:{server.port}/#token={token(user, role)}")
    expect(page.get_by_role("status").first).to_contain_text(f"Connected as {user}")


def hp_bar(page: Page) -> Locator:
    return page.get_by_role("progressbar", name="Boss HP")


def announcements(page: Page) -> Locator:
    return page.get_by_role("log", name="Announcements")


class WsPlayer:
    """Another player, on a plain (sync) websocket client speaking JSON text frames."""

    def __init__(self, server: ServerProcess, user: str, role: str = "player") -> None:
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(server.ws_url, open_timeout=TIMEOUT)
        )
        self.rid = 0
        self.events: list[dict[str, Any]] = []
        self.ok("hello", token=token(user, role))

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        self.rid += 1
        self.ws.send(json.dumps({"op": op, "rid": self.rid, **fields}))
        while True:
            msg: dict[str, Any] = json.loads(self.ws.recv(timeout=TIMEOUT))
            if msg.get("op") == "event":
                self.events.append(msg)
            elif msg.get("rid") == self.rid:
                return msg

    def ok(self, op: str, **fields: Any) -> dict[str, Any]:
        reply = self.request(op, **fields)
        assert reply["op"] == f"{op}.ok", reply
        return reply

    def close(self) -> None:
        self._stack.close()


def players(server: ServerProcess, *users: str) -> Iterator[WsPlayer]:
    for user in users:
        yield WsPlayer(server, user)


def number_in(text: str) -> int:
    match = re.search(r"-?\d[\d,]*", text)
    assert match, text
    return int(match.group().replace(",", ""))


CONTRAST_JS = (Path(__file__).parent / "contrast.js").read_text(encoding="utf-8")


def assert_contrast_aa(page: Page) -> None:
    """Every visible text on the page meets WCAG AA contrast against its background."""
    result: dict[str, Any] = page.evaluate(CONTRAST_JS)
    assert result["checked"] > 10, result
    assert result["failures"] == [], result["failures"]
