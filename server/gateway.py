"""The WebSocket connection handler: frames in, typed requests to the service, replies out.

For each frame, in arrival order: rate limit, decode, parse, authorise, then dispatch.

Concurrency choice: a strike, the hot path, is handed to the service with a callback that
pushes its reply once the strike is committed (no task, coroutine or future per strike);
every other request except ``hello`` runs as its own task, started in arrival order, and its
reply is pushed when it completes. A strike waits for its journal commit (milliseconds to
seconds); running anything inline would hold back every later frame of the connection,
``ping`` included. Clients match replies by ``rid``, so replies may come
out of order; requests that must be ordered are ordered where their state lives (a
player's strikes by its PlayerActor). ``hello`` runs inline because every later frame
depends on the identity it establishes.

A binary strike frame that arrives while the handler is idle is taken as soon as websockets
has parsed it (``_inline_frame``, server/inline_frames.py) instead of waking the handler
task for it: the handler's checks (the rate-limit token taken last, so a declined frame costs
none), without the task switch per frame.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets.asyncio.server
from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
from websockets.frames import CloseCode
from websockets.server import ServerProtocol

from actors.api import RaidApi
from actors.deadlines import CURRENT_CALLER, Caller
from raid.config import ServerConfig, shipped_defaults
from raid.errors import ErrorCode, Overloaded, ProtocolError, RaidError
from server.address_gate import AddressGate
from server.admin import run_admin
from server.admission import Admission, AdmissionLimits, Place
from server.connection_limits import TooManyConnections, UserConnections
from server.fanout import SessionFanout
from server.frames import Format, decode_frame, encode_frame
from server.front_door import FrontDoor, listening_sockets
from server.http import HttpHandler, log_access
from server.inline_frames import GatewayConnection
from server.metrics import Metrics
from server.ratelimit import TokenBucket
from server.requests import (
    ADMIN_OPS,
    Hello,
    Ping,
    RaidHub,
    RaidSubscribe,
    RaidUnsubscribe,
    Request,
    RewardsClaim,
    RewardsList,
    Rid,
    Strike,
    TeamOptions,
    parse_request,
    peek_rid,
)
from server.session import Session
from server.tokens import verify_token

logger = logging.getLogger("raid.gateway")

REQUEST_GRACE_S = 5.0
"""After a disconnect, how long requests still running may finish (their replies are
dropped) before they are cancelled. Letting them finish keeps the service's bookkeeping
after an ``await`` intact; the actors finish the work either way."""


_SHIPPED = shipped_defaults().server  # defaults are defined once: raid/default_config.toml


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The ``[server]`` keys the gateway uses (config.example.toml), plus the token secret."""

    secret: str
    max_frame_bytes: int = _SHIPPED.max_frame_bytes  # larger frames close with 1009
    messages_per_s: float = _SHIPPED.messages_per_s  # token bucket rate per connection
    message_burst: int = _SHIPPED.message_burst  # token bucket capacity
    max_pending_bytes: int = _SHIPPED.max_pending_bytes  # outbox cap: past it, close with 1013
    ping_interval_s: float = _SHIPPED.ping_interval_s  # keepalive ping period; 0 disables it
    ping_timeout_s: float = _SHIPPED.ping_timeout_s  # a ping unanswered this long drops the peer
    compression: bool = _SHIPPED.compression  # permessage-deflate
    hello_timeout_s: float = _SHIPPED.hello_timeout_s  # no successful hello by then: closed
    # Overload protection (server/admission.py, server/connection_limits.py):
    max_connections_per_user: int = _SHIPPED.max_connections_per_user
    connections_per_address_per_s: float = _SHIPPED.connections_per_address_per_s
    connection_burst_per_address: int = _SHIPPED.connection_burst_per_address
    address_table: int = _SHIPPED.address_table
    max_in_flight: int = _SHIPPED.max_in_flight
    max_in_flight_per_raid: int = _SHIPPED.max_in_flight_per_raid
    max_in_flight_per_connection: int = _SHIPPED.max_in_flight_per_connection
    max_tasks_per_connection: int = _SHIPPED.max_tasks_per_connection
    reply_bytes_per_message: int = _SHIPPED.reply_bytes_per_message
    socket_send_buffer: int = _SHIPPED.socket_send_buffer
    overload_retry_after_s: float = _SHIPPED.overload_retry_after_s

    @classmethod
    def of(cls, config: ServerConfig, secret: str) -> GatewayConfig:
        """The gateway's keys of a validated ``[server]`` section (one mapping for every
        process that serves WebSockets: ``serve`` and the cluster's gateways)."""
        return cls(
            secret=secret,
            max_frame_bytes=config.max_frame_bytes,
            messages_per_s=config.messages_per_s,
            message_burst=config.message_burst,
            max_pending_bytes=config.max_pending_bytes,
            ping_interval_s=config.ping_interval_s,
            ping_timeout_s=config.ping_timeout_s,
            compression=config.compression,
            hello_timeout_s=config.hello_timeout_s,
            max_connections_per_user=config.max_connections_per_user,
            connections_per_address_per_s=config.connections_per_address_per_s,
            connection_burst_per_address=config.connection_burst_per_address,
            address_table=config.address_table,
            max_in_flight=config.max_in_flight,
            max_in_flight_per_raid=config.max_in_flight_per_raid,
            max_in_flight_per_connection=config.max_in_flight_per_connection,
            max_tasks_per_connection=config.max_tasks_per_connection,
            reply_bytes_per_message=config.reply_bytes_per_message,
            socket_send_buffer=config.socket_send_buffer,
            overload_retry_after_s=config.overload_retry_after_s,
        )


STALL_LIMIT_S = 20.0
"""How long a client may take none of its output before it is closed with 1013, when the
keepalive is off (``ping_timeout_s = 0``); otherwise ``ping_timeout_s``."""

RaidServiceProtocol = RaidApi
"""What the gateway needs from the raids: the plain-data interface of actors/api.py."""


def _internal_error() -> RaidError:
    return RaidError(ErrorCode.INTERNAL, "internal error")


class Gateway:
    """Serves one WebSocket connection per ``handle`` call."""

    def __init__(
        self,
        service: RaidServiceProtocol,
        config: GatewayConfig,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service  # the raids, through their plain-data interface
        self.fanout = SessionFanout()  # delivers the raids' events to our sessions
        service.attach(self.fanout)
        self.config = config
        self.metrics = metrics
        self._clock = clock  # wall clock: server_time and token expiry
        self._sessions: set[Session] = set()  # open sessions, for close_all
        self._closing: set[asyncio.Task[None]] = set()  # closes started by timers
        self.admission = Admission(  # sheds requests past the in-flight limits
            AdmissionLimits(
                config.max_in_flight,
                config.max_in_flight_per_raid,
                config.max_in_flight_per_connection,
                config.overload_retry_after_s,
            ),
            metrics.count_shed,
        )
        self.user_connections = UserConnections(
            config.max_connections_per_user, lambda: metrics.count_shed("max_connections_per_user")
        )

    @property
    def sessions(self) -> frozenset[Session]:
        return frozenset(self._sessions)

    async def handle(self, connection: ServerConnection) -> None:
        """The websockets connection handler: runs until the connection closes."""
        cfg = self.config
        bucket = TokenBucket(cfg.messages_per_s, cfg.message_burst, time.monotonic())
        session = Session(
            connection,
            bucket=bucket,
            max_pending_bytes=cfg.max_pending_bytes,
            metrics=self.metrics,
            # A client that takes none of its output for as long as a ping may go unanswered
            # is as gone as one that does not answer pings.
            stall_limit_s=cfg.ping_timeout_s if cfg.ping_timeout_s > 0 else STALL_LIMIT_S,
        )
        session.start()
        self._sessions.add(session)
        self.fanout.add(session)
        self.metrics.connections.inc()
        logger.debug("connected", extra=session.log_extra)  # the access line says it at INFO
        in_flight: set[asyncio.Task[None]] = set()
        reads_ahead = cfg.max_tasks_per_connection
        loop = asyncio.get_running_loop()
        unauthenticated = loop.call_later(cfg.hello_timeout_s, self._hello_overdue, session)
        caller = Caller()  # every request task of this connection inherits it (deadlines.py)
        CURRENT_CALLER.set(caller)
        if isinstance(connection, GatewayConnection):
            # Strikes are then taken as they are parsed, in this handler's context.
            context = contextvars.copy_context()

            def inline(data: bytes) -> bool:
                return context.run(self._inline_frame, session, in_flight, data)

            connection.inline = inline
        try:
            async for data in connection:
                if session.backed_up:
                    # Backpressure: a client that does not read its replies gets no more
                    # work done for it; its requests wait in its own TCP buffer.
                    await session.until_drained()
                if session.closing:
                    break  # closed by us (1008, 1013, shutdown): no reply would be sent
                if len(in_flight) >= reads_ahead:
                    # Requests answered by a task (all but strikes) may be large: at most
                    # this many run per connection, so a burst of them cannot bury the
                    # socket before backpressure sees the first reply.
                    await asyncio.wait(set(in_flight), return_when=asyncio.FIRST_COMPLETED)
                task = await self._on_frame(session, data)
                if task is not None:
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
        except ConnectionClosed:
            pass  # abnormal closes (1009, 1011, lost TCP) end the session like normal ones
        finally:
            if isinstance(connection, GatewayConnection):
                connection.inline = None
            unauthenticated.cancel()
            caller.gone = True  # what the raids have not picked up yet is dropped
            await self._finish(session, in_flight)

    def _hello_overdue(self, session: Session) -> None:
        """Close a connection that never authenticated: it holds a socket for nothing."""
        if not session.authenticated and not session.closing:
            logger.info("no hello in time: closing with 1008", extra=session.log_extra)
            self._close_soon(session, "hello expected first")

    def _close_soon(self, session: Session, reason: str) -> None:
        """Close with 1008 once the frames already queued (the refusal) are sent."""
        task = asyncio.ensure_future(session.close(CloseCode.POLICY_VIOLATION, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_all(self, code: int = CloseCode.GOING_AWAY, reason: str = "") -> None:
        """Close every session gracefully: queued frames are sent, then the close frame."""
        sessions = list(self._sessions)
        if sessions:
            await asyncio.gather(*(session.close(code, reason) for session in sessions))

    async def _finish(self, session: Session, in_flight: set[asyncio.Task[None]]) -> None:
        if in_flight:
            _, late = await asyncio.wait(set(in_flight), timeout=REQUEST_GRACE_S)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        self._sessions.discard(session)
        self.fanout.remove(session)
        if session.user_id is not None:
            self.user_connections.release(session.user_id)
        try:
            self.service.subscriber_gone(session.session_id)
        except Exception:
            logger.exception("subscriber_gone failed", extra=session.log_extra)
        await session.aclose()
        self.metrics.connections.dec()
        logger.info("disconnected", extra=session.log_extra)

    async def _on_frame(self, session: Session, data: bytes | str) -> asyncio.Task[None] | None:
        """Check one frame; returns the task answering it, if one was started."""
        session.format = Format.JSON if isinstance(data, str) else Format.MSGPACK
        retry_after = session.bucket.take(time.monotonic())
        rid: Rid | None = None
        try:
            msg, _ = decode_frame(data, self.config.max_frame_bytes)
            rid = peek_rid(msg)
            if retry_after is not None:
                raise RaidError(
                    ErrorCode.RATE_LIMITED, "too many messages", retry_after=retry_after
                )
            rid, req = parse_request(msg)
            self._authorize(session, req)
            place = None if isinstance(req, Hello | Ping) else self._admit(session, req)
        except RaidError as exc:
            self._push_error(session, rid, exc, op=None)
            if retry_after is not None:
                # Read nothing more from this connection until a token is back: a flood then
                # waits in its own TCP buffers instead of costing the loop a reply per frame.
                await asyncio.sleep(retry_after)
            return None
        self.metrics.count_request(req.op)
        if type(req) is Strike:
            assert place is not None  # every request but hello and ping takes a place
            self._strike_now(session, rid, req, place)
            return None
        if isinstance(req, Hello):
            await self._answer(session, rid, req)
            return None
        task = asyncio.create_task(self._answer(session, rid, req), name=f"{req.op}-{rid}")
        if place is not None:
            task.add_done_callback(place.release)
        return task

    def _inline_frame(
        self, session: Session, in_flight: set[asyncio.Task[None]], data: bytes
    ) -> bool:
        """A strike taken as its frame is parsed (server/inline_frames.py), when the handler
        would take it at once: True once it is handled. Anything else, and anything the
        handler would refuse or wait over (an error, a rate limit, backpressure, the tasks of
        this connection at their limit), is declined before it changed anything, and the
        handler takes it the usual way."""
        if (
            not session.authenticated
            or session.closing
            or session.backed_up
            or len(in_flight) >= self.config.max_tasks_per_connection
        ):
            return False
        try:
            msg, _ = decode_frame(data, self.config.max_frame_bytes)
            if msg.get("op") != "strike":
                return False
            rid, req = parse_request(msg)
            self._authorize(session, req)
        except RaidError:
            return False
        if type(req) is not Strike or session.bucket.take(time.monotonic()) is not None:
            return False
        session.format = Format.MSGPACK
        try:
            place = self._admit(session, req)
        except RaidError as exc:
            self._push_error(session, rid, exc, op=None)
            return True
        self.metrics.count_request(req.op)
        self._strike_now(session, rid, req, place)
        return True

    def _admit(self, session: Session, req: Request) -> Place:
        """A place among the requests in flight, or ``Overloaded`` (server/admission.py)."""
        raid_id = getattr(req, "raid_id", None)
        raid = raid_id if isinstance(raid_id, str) else None
        return self.admission.enter(raid, session.session_id)

    @staticmethod
    def _authorize(session: Session, req: Request) -> None:
        if isinstance(req, Hello):
            if session.authenticated:
                raise ProtocolError(ErrorCode.BAD_REQUEST, "hello was already accepted")
        elif not session.authenticated:
            raise RaidError(ErrorCode.UNAUTHENTICATED, "send hello with a token first")
        elif req.op in ADMIN_OPS and session.role != "admin":
            raise RaidError(ErrorCode.FORBIDDEN, f"{req.op} needs an admin token")

    async def _answer(self, session: Session, rid: Rid, req: Request) -> None:
        """Run one request and push its reply; never raises (except on cancellation)."""
        try:
            fields = await self._dispatch(session, rid, req)
            if fields is not None:
                frame = encode_frame({"op": f"{req.op}.ok", "rid": rid, **fields}, session.format)
                session.push(frame)
                # A large reply costs the rate limit one message per reply_bytes_per_message:
                # replies, not requests, are what a client can make expensive.
                extra = len(frame) // self.config.reply_bytes_per_message
                if extra:
                    session.bucket.charge(extra, time.monotonic())
        except RaidError as exc:
            self._push_error(session, rid, exc, op=req.op, raid=getattr(req, "raid_id", None))
            if isinstance(exc, TooManyConnections):
                self._close_soon(session, "too many connections for this user")
        except Exception:
            raid = getattr(req, "raid_id", None)
            logger.exception(
                "request failed", extra={**session.log_extra, "op": req.op, "raid": raid}
            )
            self._push_error(session, rid, _internal_error(), op=req.op, raid=raid)

    async def _dispatch(self, session: Session, rid: Rid, req: Request) -> dict[str, Any] | None:
        """The reply fields, or None when the service pushed the reply itself."""
        if isinstance(req, Hello):
            return await self._hello(session, req)
        user_id = session.user_id
        if user_id is None:  # _authorize let nothing else through before hello
            raise RaidError(ErrorCode.UNAUTHENTICATED, "send hello with a token first")
        service = self.service
        match req:
            case Ping():
                return {"server_time": self._clock()}
            case RaidHub():
                return await service.hub(user_id, req.raid_id)
            case RaidSubscribe():
                await service.subscribe(session.session_id, req.raid_id, req.since_seq, rid)
                return None
            case RaidUnsubscribe():
                await service.unsubscribe(session.session_id, req.raid_id)
                return {}
            case TeamOptions():
                return await service.team_options(user_id, req.raid_id)
            case Strike():
                raise AssertionError("strikes are answered by _strike_now, without a task")
            case RewardsList():
                return await service.rewards_list(user_id, req.raid_id)
            case RewardsClaim():
                return await service.rewards_claim(user_id, req.raid_id, req.key)
            case _:
                return await run_admin(service, user_id, req)

    async def _hello(self, session: Session, req: Hello) -> dict[str, Any]:
        claims = verify_token(self.config.secret, req.token, self._clock())
        self.user_connections.admit(claims.user_id)  # TooManyConnections: refused, closed
        try:
            result = await self.service.hello(claims.user_id, claims.role)
        except BaseException:
            self.user_connections.release(claims.user_id)
            raise
        # Only a fully successful hello authenticates the session.
        session.user_id, session.role = claims.user_id, claims.role
        logger.info("hello", extra={**session.log_extra, "role": claims.role})
        return {
            "user_id": claims.user_id,
            "role": claims.role,
            "server_time": self._clock(),
            **result,
        }

    def _strike_now(self, session: Session, rid: Rid, req: Strike, place: Place) -> None:
        """The hot path: no task per strike; the service calls back once it is committed."""
        user_id = session.user_id
        assert user_id is not None  # _authorize let nothing else through before hello
        started = time.monotonic()

        def done(report: dict[str, Any] | None, error: BaseException | None) -> None:
            place.release()
            if report is not None:
                self.metrics.count_strike("ok", time.monotonic() - started)
                session.push({"op": "strike.ok", "rid": rid, **report})
                return
            if not isinstance(error, RaidError):
                logger.error(
                    "request failed",
                    exc_info=error,
                    extra={**session.log_extra, "op": "strike", "raid": req.raid_id},
                )
                error = _internal_error()
            self.metrics.count_strike(error.code.value, time.monotonic() - started)
            self._push_error(session, rid, error, op="strike", raid=req.raid_id)

        try:
            self.service.strike_nowait(
                user_id, req.raid_id, req.action, req.team, req.strike_id, done
            )
        except Exception as exc:  # noqa: BLE001 - a refusal, or a bug that done() logs
            # and answers internal: the connection lives on, and a strike taken inline
            # (_inline_frame) never raises into websockets' data_received.
            done(None, exc)

    def _push_error(
        self,
        session: Session,
        rid: Rid | None,
        exc: RaidError,
        op: str | None,
        raid: str | None = None,
    ) -> None:
        extra = {**session.log_extra, "op": op, "code": exc.code.value}
        if raid is not None:
            extra["raid"] = raid
        if isinstance(exc, Overloaded | TooManyConnections) or session.closing:
            # Shed load, or a reply nobody reads: counted (requests_shed_total), and an
            # overload must not flood the log too.
            logger.debug("request refused: %s", exc.message, extra=extra)
        elif not exc.code.is_client_fault:
            logger.error("request failed: %s", exc.message, extra=extra)
        elif exc.code is ErrorCode.RATE_LIMITED:
            logger.debug("rate limited", extra=extra)  # a flood must not flood the log too
        else:
            logger.info("request refused: %s", exc.message, extra=extra)
        try:
            session.push(exc.to_reply(rid))
        except (TypeError, ValueError, OverflowError):
            # The error's extra fields could not be encoded: answer without them.
            logger.exception("error reply not encodable", extra=extra)
            session.push(_internal_error().to_reply(rid))


async def serve(
    gateway: Gateway,
    host: str | None,
    port: int | None,
    http_handler: HttpHandler,
    *,
    sock: socket.socket | None = None,
) -> Server:
    """Start listening: WebSocket on ``/ws``, plain HTTP elsewhere via ``http_handler``.

    Port 0 picks a free port; or pass a bound ``sock`` (and no host or port), e.g. one
    shared with ``SO_REUSEPORT``. Connections are accepted by the front door
    (``server/front_door.py``: past the per-address gate an HTTP 429, on its own thread)
    and admitted ones served by websockets. Stop with ``gateway.close_all()`` (graceful,
    per session) and then ``server.close(); await server.wait_closed()``.
    """
    cfg = gateway.config
    loop = asyncio.get_running_loop()
    sockets = [sock] if sock is not None else await listening_sockets(host, port or 0)
    gate = AddressGate(
        cfg.connections_per_address_per_s,
        cfg.connection_burst_per_address,
        cfg.address_table,
        on_refused=gateway.metrics.requests_shed.labels(limit="connections_per_address").inc,
    )
    # websockets' Server, not awaited: the front door below stands in for the
    # asyncio.Server it would create, so it never accepts a connection itself.
    server = websockets.asyncio.server.serve(
        gateway.handle,
        process_request=http_handler,
        process_response=log_access,
    )
    connection = websocket_connection(server, cfg)
    starting: set[asyncio.Task[Any]] = set()

    def admit(accepted: socket.socket) -> None:
        task = loop.create_task(_connect(loop, connection, accepted))
        starting.add(task)
        task.add_done_callback(starting.discard)

    door = FrontDoor(sockets, gate, loop, admit, send_buffer=cfg.socket_send_buffer)
    server.server = door  # type: ignore[assignment]
    door.start()
    return server


def websocket_connection(server: Server, cfg: GatewayConfig) -> Callable[[], ServerConnection]:
    """The protocol factory of an admitted connection: what websockets' ``serve`` builds
    for each connection, with our limits (its own defaults for the rest)."""
    defaults = inspect.signature(websockets.asyncio.server.serve).parameters
    extensions = enable_server_permessage_deflate(None) if cfg.compression else None

    def connection() -> ServerConnection:
        protocol = ServerProtocol(
            extensions=extensions,
            max_size=cfg.max_frame_bytes,  # websockets closes with 1009 past this
            logger=server.logger,
        )
        return GatewayConnection(
            protocol,
            server,
            # A silent peer is dropped at most ping_interval + ping_timeout after it went quiet.
            ping_interval=cfg.ping_interval_s if cfg.ping_interval_s > 0 else None,
            ping_timeout=cfg.ping_timeout_s if cfg.ping_timeout_s > 0 else None,
            close_timeout=defaults["close_timeout"].default,
            max_queue=defaults["max_queue"].default,
            write_limit=defaults["write_limit"].default,
        )

    return connection


async def _connect(
    loop: asyncio.AbstractEventLoop,
    connection: Callable[[], ServerConnection],
    accepted: socket.socket,
) -> None:
    """An admitted socket to websockets: its handshake and handler start from here."""
    try:
        await loop.connect_accepted_socket(connection, accepted)
    except OSError as exc:  # the client left in the meantime
        logger.debug("admitted connection lost before it started: %s", exc)
        accepted.close()
