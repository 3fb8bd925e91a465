"""Plain HTTP on the WebSocket port, answered from websockets' ``process_request`` hook.

``GET /healthz``, ``GET /metrics`` and ``GET /`` get an HTTP response and the connection
ends; ``/ws`` returns None so websockets goes on with the WebSocket handshake.
"""

from __future__ import annotations

import email.utils
import http
import importlib.resources
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

WS_PATH = "/ws"

HttpHandler = Callable[[ServerConnection, Request], Response | None]
"""The ``process_request`` signature websockets' ``serve`` accepts."""


def load_index_html() -> bytes:
    """The browser client shipped in ``server/static/index.html``."""
    return (importlib.resources.files("server") / "static" / "index.html").read_bytes()


def respond(status: http.HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),  # websockets ends the connection after this response
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def _text(status: http.HTTPStatus, text: str) -> Response:
    return respond(status, text.encode(), "text/plain; charset=utf-8")


def make_http_handler(
    is_ready: Callable[[], bool],
    index_html: bytes,
    render_metrics: Callable[[], tuple[bytes, str]],
) -> HttpHandler:
    """A ``process_request`` hook; ``render_metrics`` is ``Metrics.render``."""

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
            return respond(http.HTTPStatus.OK, index_html, "text/html; charset=utf-8")
        return _text(http.HTTPStatus.NOT_FOUND, "not found\n")

    return process_request
