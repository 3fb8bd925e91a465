"""390 px wide, played with the keyboard only: reachable controls, visible focus, no sideways
scrolling."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.harness import ServerProcess, token
from tests.web.browser import PHONE, assert_contrast_aa, hp_bar, screenshot


@pytest.fixture
def viewport() -> dict[str, int]:
    return PHONE


def tab_to(page: Page, predicate: str, limit: int = 80) -> None:
    """Press Tab until ``predicate`` (a JS expression on ``el``) holds for the focused element."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {predicate}; }})()"):
            return
    raise AssertionError(f"Tab never reached {predicate}")


def focus_ring(page: Page) -> tuple[str, float]:
    style: dict[str, str] = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return { style: s.outlineStyle, width: s.outlineWidth }; })()"
    )
    return style["style"], float(style["width"].removesuffix("px"))


def test_play_at_390px_with_the_keyboard(page: Page, server: ServerProcess, raid: str) -> None:
    page.goto(f"http://127.0.0.1:{server.port}/")
    screenshot(page, "login")
    tab_to(page, "el.id === 'token'")
    page.keyboard.type(token("alice"))
    page.keyboard.press("Enter")
    expect(page.locator("#conn")).to_have_text("Connected as alice")
    expect(hp_bar(page)).to_have_attribute("aria-valuenow", "1000")

    tab_to(page, "el.type === 'checkbox' && el.labels[0].textContent === 'Hero 5'")
    assert focus_ring(page)[0] != "none" and focus_ring(page)[1] >= 2
    page.keyboard.press("Space")
    expect(page.get_by_role("checkbox", name="Hero 5", exact=True)).to_be_checked()
    expect(page.locator("#preview-damage")).to_have_text("15")
    tab_to(page, "el.textContent === 'Fight'")
    assert focus_ring(page)[0] != "none"
    page.keyboard.press("Enter")

    report = page.get_by_role("region", name="After-action report")
    expect(report).to_contain_text("15 damage")
    expect(hp_bar(page)).to_have_attribute("aria-valuenow", "985")
    expect(page.get_by_role("checkbox", name="Hero 5", exact=True)).to_be_disabled()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width} px"
    assert_contrast_aa(page)
    screenshot(page, "phone")
    screenshot(report, "phone-report")
