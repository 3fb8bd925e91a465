"""Plain HTTP on the WebSocket port, answered from websockets' ``process_request`` hook.

``GET /healthz``, ``GET /metrics`` and ``GET /`` get an HTTP response and the connection
ends; ``/ws`` returns None so websockets goes on with the WebSocket handshake.
"""

from __future__ import annotations

import email.utils
import http
import importlib.resources
import logging
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

WS_PATH = "/ws"

access = logging.getLogger("raid.access")

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
