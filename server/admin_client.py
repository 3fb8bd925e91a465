"""The CLI's way into a running server: one WebSocket, an admin token, one op at a time.

Used by ``import-roster --url`` and ``restore --url``: work that must go through the running
server, whose memory would otherwise disagree with the database.
"""

from __future__ import annotations

import json
import time
from types import TracebackType
from typing import Any

from websockets.exceptions import InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from server.tokens import issue_token

CLI_USER = "raid-server-cli"
TOKEN_TTL_S = 300.0


class AdminClientError(Exception):
    """The server could not be reached, or refused; the message is one line."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code  # the wire error code when the server refused

    @property
    def client_fault(self) -> bool:
        """The request was wrong (fix the command), not the server unable to serve it."""
        return self.code in ("bad_request", "unknown_raid")


class AdminClient:
    def __init__(self, url: str, connection: ClientConnection, timeout_s: float) -> None:
        self.url = url  # ws://host:port/ws, for messages
        self._connection = connection  # an authenticated admin connection
        self._timeout_s = timeout_s  # per request
        self._rid = 0  # last request id used

    @classmethod
    def open(cls, url: str, secret: str, timeout_s: float = 60.0) -> AdminClient:
        """Connect and authenticate as an admin with a short-lived token signed by ``secret``."""
        try:
            connection = connect(url, open_timeout=10, max_size=None)
        except (OSError, TimeoutError, InvalidURI, WebSocketException) as exc:
            raise AdminClientError(f"cannot reach the server at {url}: {exc}") from None
        client = cls(url, connection, timeout_s)
        try:
            client.request(
                "hello", token=issue_token(secret, CLI_USER, "admin", TOKEN_TTL_S, time.time())
            )
        except AdminClientError:
            connection.close()
            raise
        return client

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and return its ``<op>.ok`` reply (an error reply raises)."""
        self._rid += 1
        rid = self._rid
        try:
            self._connection.send(json.dumps({"op": op, "rid": rid, **fields}))
            deadline = time.monotonic() + self._timeout_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AdminClientError(
                        f"{self.url}: no answer to {op} in {self._timeout_s:g} s"
                    )
                raw = self._connection.recv(timeout=left)
                reply = json.loads(raw)
                if isinstance(reply, dict) and reply.get("rid") == rid:
                    break  # events and other frames are not for us
        except TimeoutError:
            raise AdminClientError(
                f"{self.url}: no answer to {op} in {self._timeout_s:g} s"
            ) from None
        except (OSError, WebSocketException) as exc:
            raise AdminClientError(f"{self.url}: connection lost during {op}: {exc}") from None
        if reply.get("op") == "error":
            code = str(reply.get("code"))
            hint = " (is RAID_SECRET the server's?)" if op == "hello" else ""
            raise AdminClientError(f"the server refused {op}: {reply.get('message')}{hint}", code)
        return dict(reply)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
