"""One WebSocket connection: requests matched to replies by ``rid``, events to a callback.

This layer does not reconnect; ``RaidClient`` (client.py) builds reconnection on top. When
the socket closes, every request still waiting fails with ``ConnectionLost`` and
``closed`` is set, so the owner can tell a dropped connection from a refused request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from raidclient.errors import ConnectionLost, ProtocolViolation, RequestTimeout
from raidclient.wire import Format, decode, encode

logger = logging.getLogger("raidclient")

EventHandler = Callable[[dict[str, Any]], None]

DEFAULT_OPEN_TIMEOUT_S = 10.0


class Connection:
    """A protocol connection over one websocket (no reconnection)."""

    def __init__(
        self, websocket: ClientConnection, fmt: Format, on_event: EventHandler | None
    ) -> None:
        self.websocket = websocket  # the open websockets client connection
        self.format = fmt  # how requests are encoded (replies come back the same way)
        self._on_event = on_event  # called with every {"op": "event"} map, in order
        self._rids = itertools.count(1)  # request ids, unique on this connection
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}  # rid -> its reply
        self.closed = asyncio.Event()  # set once the socket is closed and the reader stopped
        self.close_reason = ""  # why it closed, for error messages
        self._reader = asyncio.create_task(self._read(), name="raidclient-reader")

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        fmt: Format = Format.MSGPACK,
        on_event: EventHandler | None = None,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT_S,
    ) -> Connection:
        """Connect to ``url`` (``ws://HOST:PORT/ws``); ``ConnectionLost`` if it cannot."""
        try:
            websocket = await websockets.connect(
                url, max_size=None, open_timeout=open_timeout, compression=None
            )
        except InvalidURI as exc:
            raise ValueError(f"not a WebSocket URL: {url!r}") from exc
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise ConnectionLost(f"cannot connect to {url}: {exc or type(exc).__name__}") from exc
        return cls(websocket, fmt, on_event)

    @property
    def is_open(self) -> bool:
        return not self.closed.is_set()

    async def request(
        self, op: str, fields: Mapping[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """Send one request and return its reply map (``{"op": "error"}`` included)."""
        if self.closed.is_set():
            raise ConnectionLost(self.close_reason or "connection closed")
        rid = next(self._rids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        try:
            await self.websocket.send(encode({"op": op, "rid": rid, **fields}, self.format))
            async with asyncio.timeout(timeout):
                return await future
        except ConnectionClosed as exc:
            raise ConnectionLost(f"connection closed ({exc})") from None
        except TimeoutError:
            raise RequestTimeout(f"no reply to {op} within {timeout} s") from None
        finally:
            self._waiting.pop(rid, None)

    async def close(self) -> None:
        await self.websocket.close()
        await self._reader

    async def _read(self) -> None:
        reason = "connection closed"
        try:
            async for data in self.websocket:
                self._dispatch(data)
        except ConnectionClosed as exc:
            reason = f"connection closed ({exc})"
        except ProtocolViolation as exc:
            reason = str(exc)
            await self.websocket.close(1002, "protocol violation")
        finally:
            self.close_reason = reason
            self.closed.set()
            waiting, self._waiting = self._waiting, {}
            for future in waiting.values():
                if not future.done():
                    future.set_exception(ConnectionLost(reason))

    def _dispatch(self, data: bytes | str) -> None:
        msg = decode(data)
        if msg.get("op") == "event":
            if self._on_event is not None:
                self._on_event(msg)
            return
        rid = msg.get("rid")
        future = self._waiting.pop(rid, None) if isinstance(rid, int) else None
        if future is None:
            logger.warning("reply to no pending request: %r", {"op": msg.get("op"), "rid": rid})
        elif not future.done():
            future.set_result(msg)
