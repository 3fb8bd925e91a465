"""``--demo``: the login offers the demo players and the operator; the operator's view works."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.harness import ServerProcess, start_server
from tests.web.browser import announcements, assert_contrast_aa, screenshot


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[ServerProcess]:
    handle = start_server(tmp_path, demo=True)
    try:
        yield handle
    finally:
        handle.stop()


def log_in_as(page: Page, account: str) -> None:
    page.get_by_label("Demo account").select_option(label=account)
    page.get_by_role("button", name="Play as this account").click()


def test_demo_picker_player_then_operator(page: Page, demo: ServerProcess) -> None:
    page.goto(f"http://127.0.0.1:{demo.port}/")
    picker = page.get_by_label("Demo account")
    expect(picker.locator("option")).to_have_count(21)  # 20 players and the operator
    screenshot(page.locator("#login"), "login-demo")

    log_in_as(page, "player01")
    expect(page.locator("#conn")).to_have_text("Connected as player01")
    boxes = page.get_by_role("region", name="Team").get_by_role("checkbox")
    expect(boxes.first).to_be_enabled()
    assert 12 <= boxes.count() <= 20
    boxes.first.check()
    boxes.nth(1).check()
    expect(page.locator("#preview-damage")).not_to_be_empty()
    screenshot(page.locator("#hub"), "hub-demo")
    screenshot(page.locator("#team"), "team-demo")
    page.get_by_role("button", name="Fight", exact=True).click()
    expect(page.get_by_role("region", name="After-action report")).to_contain_text("damage")

    page.get_by_role("button", name="Log out").click()
    log_in_as(page, "Operator (admin)")
    expect(page.locator("#conn")).to_have_text("Connected as admin (operator)")
    operator = page.get_by_role("region", name="Operator")
    message = operator.get_by_role("status")

    operator.get_by_role("button", name="Take snapshot").click()
    expect(message).to_contain_text("taken at strike 1.")
    operator.get_by_role("button", name="Refresh pending rewards").click()
    expect(operator.get_by_role("table")).to_contain_text("player01")
    expect(operator.get_by_role("table").locator("tbody tr")).to_have_count(1)
    screenshot(operator, "operator")
    assert_contrast_aa(page)
    operator.get_by_role("button", name="Acknowledge these").click()
    expect(message).to_have_text("1 reward acknowledged.")

    operator.get_by_label("Boss template").fill("nope")
    operator.get_by_role("button", name="Create raid").click()
    expect(message).to_contain_text("The server could not read that request: ")
    expect(message).to_contain_text("dummy")  # the refusal names the known templates
    operator.get_by_label("Boss template").fill("dummy")
    operator.get_by_label("Raid id (optional)").fill("second")
    operator.get_by_role("button", name="Create raid").click()
    expect(message).to_have_text("Raid second created.")
    raids = page.get_by_role("navigation", name="Raids")
    expect(raids.get_by_role("button", name=re.compile("^Training Dummy active"))).to_be_visible()
    expect(page.get_by_role("heading", name="Training Dummy", level=2)).to_be_visible()

    operator.get_by_role("button", name="End raid").click()
    operator.get_by_role("button", name="Yes, end it").click()
    expect(message).to_have_text("The raid is now ended.")
    expect(announcements(page)).to_contain_text("ended")
    expect(operator.get_by_role("button", name="End raid")).to_be_disabled()
