"""The client survives a server restart (reconnect with back-off, resume or reload) and turns
every error code into words."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, WebSocketRoute, expect

from raid.errors import ErrorCode
from tests.e2e.harness import ServerProcess, start_server, token
from tests.web.browser import WsPlayer, announcements, hp_bar, open_client, screenshot


def test_reconnects_and_resumes_after_a_server_restart(
    page: Page, server: ServerProcess, raid: str, tmp_path: Path
) -> None:
    open_client(page, server, "alice")
    bar = hp_bar(page)
    expect(bar).to_have_attribute("aria-valuenow", "1000")
    bob = WsPlayer(server, "bob")
    first = bob.ok("strike", raid_id=raid, action="fight", team=["bob-c0"], strike_id="b1")
    bob.close()
    expect(bar).to_have_attribute("aria-valuenow", str(first["boss_hp"]))

    server.stop()
    status = page.locator("#conn")
    expect(status).to_contain_text("reconnecting")
    screenshot(page, "reconnecting")
    restarted = start_server(
        tmp_path, config_path=server.config_path, db_path=server.db_path, port=server.port
    )
    try:
        expect(status).to_have_text("Connected as alice")
        # Event numbers restart with the server: the client is told to resync and reloads.
        expect(announcements(page)).to_contain_text("Reconnected; the raid was reloaded.")
        expect(bar).to_have_attribute("aria-valuenow", str(first["boss_hp"]))
        bob = WsPlayer(restarted, "bob")
        second = bob.ok("strike", raid_id=raid, action="fight", team=["bob-c1"], strike_id="b2")
        bob.close()
        expect(bar).to_have_attribute("aria-valuenow", str(second["boss_hp"]))  # live again
        assert second["boss_hp"] < first["boss_hp"]
    finally:
        restarted.stop()


def test_every_error_code_has_words(page: Page, server: ServerProcess) -> None:
    """One server for both checks: a server start costs more than the checks."""
    page.goto(f"http://127.0.0.1:{server.port}/")
    texts: dict[str, str] = page.evaluate(
        """async (codes) => {
            const { errorText } = await import("/format.js");
            const error = (code) => ({ code, message: "team: must be a list", retry_after: 1.5,
                                       character_ids: ["x"] });
            return Object.fromEntries(codes.map((c) => [c, errorText(error(c))]));
        }""",
        [code.value for code in ErrorCode],
    )
    for code, text in texts.items():
        assert text and "The server refused" not in text and code not in text, (code, text)
    assert texts["on_cooldown"].endswith("Try again in 2 s.")
    assert texts["bad_request"].endswith(": team: must be a list.")

    # A refusal from the server, in words, where it happened: an expired token at the login.
    page.get_by_label("Token", exact=True).fill(token("alice", ttl=-5))  # expired
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(
        "That token was not accepted: it is malformed, expired or signed with another secret."
    )
    expect(page.get_by_label("Token", exact=True)).to_be_visible()


class Cable:
    """The page's WebSocket, routed by Playwright to the real server, so a test can cut it.

    While cut, the page's reconnect attempts are closed at once (it backs off and retries).
    """

    def __init__(self, page: Page) -> None:
        self.cut = False  # refuse the page's connections
        self.routes: list[WebSocketRoute] = []  # connections that are up
        page.route_web_socket("**/ws", self._connect)

    def _connect(self, route: WebSocketRoute) -> None:
        if self.cut:
            route.close(code=4000, reason="cable cut")
            return
        route.connect_to_server()
        self.routes.append(route)

    def unplug(self) -> None:
        self.cut = True
        for route in self.routes:
            route.close(code=4000, reason="cable cut")
        self.routes.clear()

    def plug(self) -> None:
        self.cut = False


def test_a_dropped_connection_resumes_with_the_missed_events(
    page: Page, server: ServerProcess, raid: str
) -> None:
    cable = Cable(page)
    open_client(page, server, "alice")
    bar = hp_bar(page)
    expect(bar).to_have_attribute("aria-valuenow", "1000")
    cable.unplug()
    status = page.locator("#conn")
    expect(status).to_contain_text("reconnecting")
    expect(page.get_by_role("button", name="Fight", exact=True)).to_be_disabled()
    bob = WsPlayer(server, "bob")
    try:  # while alice is away: a breakthrough, and hp going down
        bob.ok("strike", raid_id=raid, action="analyze", team=["bob-c0"], strike_id="b1")
        hit = bob.ok("strike", raid_id=raid, action="fight", team=["bob-c1"], strike_id="b2")
    finally:
        bob.close()
    expect(bar).to_have_attribute("aria-valuenow", "1000")  # nothing arrives while cut
    cable.plug()
    expect(status).to_have_text("Connected as alice")
    log = announcements(page)
    expect(log).to_contain_text("Breakthrough 1!")  # replayed after since_seq
    expect(bar).to_have_attribute("aria-valuenow", str(hit["boss_hp"]))
    expect(log).not_to_contain_text("the raid was reloaded")  # no resync was needed
