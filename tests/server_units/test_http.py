from __future__ import annotations

import re
from typing import cast

from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from server.http import HttpHandler, load_assets, load_index_html, make_http_handler
from tests.server_units.support import INDEX_HTML, http_get, run_server


async def test_healthz_follows_readiness() -> None:
    async with run_server() as srv:
        status, headers, body = await http_get(srv.port, "/healthz")
        assert (status, body) == (200, b"ok\n")
        assert headers["content-type"].startswith("text/plain")
        srv.ready[0] = False
        status, _, _ = await http_get(srv.port, "/healthz")
        assert status == 503


async def test_metrics_are_prometheus_text() -> None:
    async with run_server() as srv:
        status, headers, body = await http_get(srv.port, "/metrics")
        assert status == 200
        assert headers["content-type"] == srv.metrics.render()[1]
        assert int(headers["content-length"]) == len(body)
        names = {family.name for family in text_string_to_metric_families(body.decode())}
        assert {"strikes", "connections", "live_actors"} <= names


async def test_root_serves_the_browser_client() -> None:
    async with run_server() as srv:
        status, headers, body = await http_get(srv.port, "/")
        assert (status, body) == (200, INDEX_HTML)
        assert headers["content-type"] == "text/html; charset=utf-8"


async def test_unknown_paths_are_404() -> None:
    async with run_server() as srv:
        for path in ("/nope", "/ws/extra", "/metrics/x"):
            status, _, _ = await http_get(srv.port, path)
            assert status == 404, path


async def test_plain_get_on_ws_path_is_refused_by_the_handshake() -> None:
    async with run_server() as srv:
        status, _, _ = await http_get(srv.port, "/ws")
        assert status == 426  # Upgrade Required: /ws is only for WebSocket


def test_shipped_client_is_complete() -> None:
    """index.html loads app.js and app.css, and every module a module imports is shipped."""
    page = load_index_html().decode()
    assets = load_assets()
    assert 'src="/app.js"' in page and 'href="/app.css"' in page
    assert {"/app.js", "/app.css", "/connection.js"} <= set(assets)
    for path, (body, content_type) in assets.items():
        if path.endswith(".js"):
            assert content_type == "text/javascript; charset=utf-8"
            for imported in re.findall(r'from "\./([\w.-]+)"', body.decode()):
                assert f"/{imported}" in assets, (path, imported)
    assert "/ws" in assets["/connection.js"][0].decode()


class Peer:
    """Stands in for websockets' ServerConnection: the handler reads only remote_address."""

    def __init__(self, host: str) -> None:
        self.remote_address = (host, 50000)


def get(handler: HttpHandler, path: str, host: str = "127.0.0.1") -> Response:
    response = handler(cast(ServerConnection, Peer(host)), Request(path, Headers()))
    assert response is not None
    return response


def handler(demo: bool) -> HttpHandler:
    tokens = (lambda: b'{"accounts": []}') if demo else None
    return make_http_handler(
        lambda: True, b"<!doctype html>", lambda: (b"", "text/plain"),
        assets=load_assets(), demo_tokens=tokens,
    )  # fmt: skip


def test_client_files_carry_a_strict_content_security_policy() -> None:
    for path in ("/", "/app.js", "/app.css"):
        response = get(handler(demo=False), path)
        assert response.status_code == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert get(handler(demo=False), "/nothing.js").status_code == 404


def test_demo_tokens_only_in_demo_mode_and_only_to_loopback_peers() -> None:
    assert get(handler(demo=True), "/demo/tokens").body == b'{"accounts": []}'
    assert get(handler(demo=True), "/demo/tokens", "::1").status_code == 200
    assert get(handler(demo=True), "/demo/tokens", "10.1.2.3").status_code == 404
    assert get(handler(demo=True), "/demo/tokens", "192.168.0.9").status_code == 404
    assert get(handler(demo=False), "/demo/tokens").status_code == 404
