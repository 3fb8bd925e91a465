"""One Chromium for the browser tests; a fresh page (own context) per test; a real server each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.e2e.harness import ServerProcess, character, start_server, write_config
from tests.web.browser import CHROMIUM_ARGS, DESKTOP, TIMEOUT_MS, WsPlayer, chromium_path

MILESTONES = """
[[milestones.damage]]
threshold = 10
reward = { gems = 5 }

[[milestones.damage]]
threshold = 20
reward = { gems = 10 }
"""


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for all the browser tests.

    Package scope, not session: sync Playwright keeps its own event loop marked as running
    on this thread, so it must be gone before any asyncio test elsewhere runs.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        expect.set_options(timeout=TIMEOUT_MS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def viewport() -> dict[str, int]:
    return DESKTOP


@pytest.fixture
def page(browser: Browser, viewport: dict[str, int]) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not _expected_network_error(message):
            errors.append(f"{message.text} ({message.location})")

    page.on("console", on_console)
    try:
        yield page
        assert errors == [], errors  # the client logs nothing to the console, errors included
    finally:
        context.close()


def _expected_network_error(message: ConsoleMessage) -> bool:
    """Chromium's own notes on a refused reconnect or on /demo/tokens off demo mode."""
    text, url = message.text, message.location.get("url", "")
    return text.startswith("WebSocket connection to") or (
        text.startswith("Failed to load resource") and url.endswith("/demo/tokens")
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    handle = start_server(tmp_path, config_path=write_config(tmp_path, extra=MILESTONES))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def raid(server: ServerProcess) -> str:
    """Raid r1 of the test boss; alice and bob own six characters each ("Hero 0".."Hero 5")."""
    admin = WsPlayer(server, "ops", "admin")
    try:
        for user in ("alice", "bob"):
            admin.ok(
                "admin.roster.grant",
                user_id=user,
                characters=[character(user, i, power=100 + 10 * i) for i in range(6)],
            )
        admin.ok("admin.raid.create", boss="dummy", raid_id="r1")
    finally:
        admin.close()
    return "r1"
