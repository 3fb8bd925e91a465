"""Playing a raid in the browser: hub, team, Fight, report, live hp, announcements, rewards."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.harness import ServerProcess
from tests.web.browser import (
    WsPlayer,
    announcements,
    assert_contrast_aa,
    hp_bar,
    number_in,
    open_client,
    screenshot,
)


def settle(page: Page) -> None:
    """Wait until no reload of the raid is due or under way."""
    expect(page.locator("body")).not_to_have_attribute("data-loading", "")


def test_fight_report_live_hp_breakthrough_and_rewards(
    page: Page, server: ServerProcess, raid: str
) -> None:
    open_client(page, server, "alice")
    bar = hp_bar(page)
    expect(bar).to_have_attribute("aria-valuemax", "1000")
    expect(bar).to_have_attribute("aria-valuenow", "1000")
    expect(page.get_by_role("progressbar", name="Analysis")).to_have_attribute(
        "aria-valuemax", "10"
    )
    expect(page.get_by_role("heading", name="Training Dummy", exact=True)).to_be_visible()
    screenshot(page.locator("#hub"), "hub")

    # Team selection: the preview is the server's exact arithmetic.
    fight = page.get_by_role("button", name="Fight", exact=True)
    expect(fight).to_be_disabled()
    page.get_by_role("checkbox", name="Hero 0", exact=True).check()
    page.get_by_role("checkbox", name="Hero 1", exact=True).check()
    expect(page.locator("#preview-damage")).to_have_text("21")  # (100 + 110) // 10
    preview = int(page.locator("#preview-damage").inner_text())
    screenshot(page.locator("#team"), "team")
    fight.click()

    report = page.get_by_role("region", name="After-action report")
    expect(report).to_contain_text(f"{preview} damage")
    expect(report).to_contain_text("base 210 \u00d7 multiplier 1 = score 210")
    expect(bar).to_have_attribute("aria-valuenow", str(1000 - preview))
    expect(page.get_by_role("checkbox", name="Hero 0", exact=True)).to_be_disabled()
    screenshot(report, "report")

    # Another player's strikes, on a plain websocket: a breakthrough, then hp and a curse.
    bob = WsPlayer(server, "bob")
    try:
        bob.ok("strike", raid_id=raid, action="analyze", team=["bob-c0"], strike_id="b1")
        log = announcements(page)
        expect(log).to_contain_text("Breakthrough 1! The boss is now weak to")
        expect(page.get_by_role("progressbar", name="Analysis")).to_have_attribute(
            "aria-valuenow", "10"
        )
        hit = bob.ok("strike", raid_id=raid, action="fight", team=["bob-c5"], strike_id="b2")
        expect(bar).to_have_attribute("aria-valuenow", str(hit["boss_hp"]))
        assert hit["boss_hp"] == 1000 - preview - hit["damage"]
        bob.ok("strike", raid_id=raid, action="fight", team=["bob-c4"], strike_id="b3")
        expect(log).to_contain_text("The boss retaliates")
        expect(page.locator("#hub .curses li")).to_have_count(1)
    finally:
        bob.close()
    screenshot(page.locator("#feed-card"), "announcements")
    screenshot(page, "desktop")

    # Rewards: claim one milestone; the other is claimed elsewhere meanwhile.
    settle(page)
    rewards = page.get_by_role("region", name="Rewards")
    claims = rewards.get_by_role("button", name="Claim", exact=True)
    expect(claims).to_have_count(2)
    rewards.locator("li", has_text="Deal 10 damage").get_by_role("button", name="Claim").click()
    expect(rewards.get_by_role("status")).to_have_text("Claimed: damage:10 (5 gems).")
    expect(claims).to_have_count(1)
    other_tab = WsPlayer(server, "alice")
    try:
        other_tab.ok("rewards.claim", raid_id=raid, key="damage:20")
    finally:
        other_tab.close()
    rewards.locator("li", has_text="Deal 20 damage").get_by_role("button", name="Claim").click()
    expect(rewards.get_by_role("status")).to_have_text("You have already claimed this reward.")
    expect(claims).to_have_count(0)
    expect(rewards).to_contain_text("Deal 20 damage: 10 gems")
    screenshot(rewards, "rewards")
    assert_contrast_aa(page)
    assert number_in(page.locator("#my-damage").inner_text()) == preview
