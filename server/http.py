"""Plain HTTP on the WebSocket port, answered from websockets' ``process_request`` hook.

``GET /healthz``, ``GET /metrics``, ``GET /`` and the browser client's files get an HTTP
response and the connection ends; ``/ws`` returns None so websockets goes on with the
WebSocket handshake. In ``--demo`` mode ``GET /demo/tokens`` hands the demo players' tokens to
clients on the loopback interface only.
"""

from __future__ import annotations

import email.utils
import http
import importlib.resources
import ipaddress
import logging
from collections.abc import Callable, Mapping

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

WS_PATH = "/ws"
DEMO_TOKENS_PATH = "/demo/tokens"

CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
"""The kinds of file the browser client ships; anything else in static/ is not served."""

PAGE_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
"""The client loads nothing but its own files and talks only to this server."""

Asset = tuple[bytes, str]
"""A static file's body and content type."""

access = logging.getLogger("raid.access")

HttpHandler = Callable[[ServerConnection, Request], Response | None]
"""The ``process_request`` signature websockets' ``serve`` accepts."""


def load_index_html() -> bytes:
    """The browser client shipped in ``server/static/index.html``."""
    return (importlib.resources.files("server") / "static" / "index.html").read_bytes()


def load_assets() -> dict[str, Asset]:
    """The client's other files (modules, styles) by URL path, read once at start-up."""
    assets: dict[str, Asset] = {}
    for entry in (importlib.resources.files("server") / "static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in CONTENT_TYPES:
            assets[f"/{entry.name}"] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return assets


def respond(
    status: http.HTTPStatus,
    body: bytes,
    content_type: str,
    extra: tuple[tuple[str, str], ...] = (),
) -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),  # websockets ends the connection after this response
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
            *extra,
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def _is_loopback(connection: ServerConnection) -> bool:
    try:
        host = connection.remote_address[0]
        return ipaddress.ip_address(host).is_loopback
    except (TypeError, IndexError, ValueError):
        return False


def _text(status: http.HTTPStatus, text: str) -> Response:
    return respond(status, text.encode(), "text/plain; charset=utf-8")


def make_http_handler(
    is_ready: Callable[[], bool],
    index_html: bytes,
    render_metrics: Callable[[], tuple[bytes, str]],
    *,
    assets: Mapping[str, Asset] | None = None,
    demo_tokens: Callable[[], bytes] | None = None,
) -> HttpHandler:
    """A ``process_request`` hook; ``render_metrics`` is ``Metrics.render``.

    ``assets`` are the client's files by path (``load_assets``); ``demo_tokens`` (``--demo``
    only) renders the JSON of ``GET /demo/tokens``, answered to loopback peers only so that a
    demo server bound to a public address does not hand out its tokens.
    """
    files = dict(assets or {})

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        if path == WS_PATH:
            return None
        if path == "/healthz":
            if is_ready():
                return _text(http.HTTPStatus.OK, "ok\n")
            return _text(http.HTTPStatus.SERVICE_UNAVAILABLE, "not ready\n")
        if path == "/metrics":
            body, content_type = render_metrics()
            return respond(http.HTTPStatus.OK, body, content_type)
        if path in ("/", "/index.html"):
            return respond(http.HTTPStatus.OK, index_html, "text/html; charset=utf-8", PAGE_HEADERS)
        if path in files:
            body, content_type = files[path]
            return respond(http.HTTPStatus.OK, body, content_type, PAGE_HEADERS)
        if path == DEMO_TOKENS_PATH and demo_tokens is not None and _is_loopback(connection):
            return respond(http.HTTPStatus.OK, demo_tokens(), "application/json")
        return _text(http.HTTPStatus.NOT_FOUND, "not found\n")

    return process_request


def short_id(connection: ServerConnection) -> str:
    """The connection id in logs: 8 hex digits are enough to follow one connection."""
    return connection.id.hex[:8]


def log_access(connection: ServerConnection, request: Request, response: Response) -> None:
    """websockets' ``process_response`` hook: one access line per HTTP request.

    ``GET /healthz 200``, ``GET /ws 101`` (a WebSocket opened; ``conn`` follows it in the
    gateway's lines), ``GET /nope 404``. websockets only accepts GET.
    """
    remote = connection.remote_address
    access.info(
        "GET %s %d",
        request.path,
        response.status_code,
        extra={
            "conn": short_id(connection),
            "remote": f"{remote[0]}:{remote[1]}" if remote else None,
            "status": response.status_code,
            "bytes": len(response.body),
            "agent": request.headers.get("User-Agent"),
        },
    )
