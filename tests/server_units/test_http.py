from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from server.http import load_index_html
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


def test_shipped_index_page_connects_to_ws_and_pings() -> None:
    page = load_index_html().decode()
    assert "/ws" in page and '"ping"' in page and "server_time" in page
