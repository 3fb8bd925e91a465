"""One worker process: an asyncio loop driving many connections.

The measured phase is the load generator's hot path and is kept lean, so that the tool
measures the server rather than itself (budget: 40 µs of the tool's CPU per strike, the
cost of the load generator the echo ceiling is judged by). Per strike: one frame
assembled from pre-encoded pieces (strike_frames.py) and written straight to the
transport, one reply decoded in the connection's ``data_received`` callback
(connection.py, frames.py), one HDR record; no task, future or queue per strike.

- Closed loop: each client sends its next strike from the handler of the previous
  reply (or from a timer while it waits out a cooldown or a character's rest).
- Open loop: one scheduler per worker sends every client's strikes at their intended
  times whatever happens to earlier strikes, and latency is measured from the intended
  time, so a stalled server shows up as latency instead of hiding behind fewer sends
  (coordinated omission).

Set-up (``hello``, ``raid.subscribe``) and the post-load checks use the same connections
through a plain request/future path; strikes left unanswered by the drain are resolved
through the typed client (``raidclient``). The worker also sends the parent a heartbeat
every ``HEARTBEAT_S`` from its loop, whatever phase it is in: the parent's watchdog judges
a worker hung by silence, not by how long a phase takes on a busy box.

Every time in this module is ``time.monotonic()``, which is one system-wide clock on
Linux, so the parent's start and end times mean the same in every worker; the worker runs
the standard asyncio loop, whose ``loop.time()`` is that clock too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import hashlib
import heapq
import json
import multiprocessing.queues
import random
import resource
import time
from array import array
from collections.abc import Callable
from typing import Any

import msgpack
import uvloop
from websockets.exceptions import InvalidHandshake

import raidclient
from raidclient.loadtest.connection import LeanConnection, open_connection
from raidclient.loadtest.frames import CLOSE_PROTOCOL_ERROR, MaskSource
from raidclient.loadtest.plan import (
    CheckSummary,
    LoadSummary,
    Player,
    SubscriberResult,
    WorkerSpec,
)
from raidclient.loadtest.stats import (
    HIGHEST_US,
    LOWEST_US,
    WINDOW_S,
    Window,
    clamp_us,
    new_histogram,
)
from raidclient.loadtest.strike_frames import StrikeEncoder

CONNECT_CONCURRENCY = 50  # handshakes in flight per worker while setting up
SETUP_TIMEOUT_S = 30.0  # one handshake, hello or subscribe during set-up
HEARTBEAT_S = 1.0  # the worker tells the parent it is alive this often
RESOLVE_CONCURRENCY = 50  # players whose unanswered strikes are resent at once
RESOLVE_MIN_S = 30.0  # resending unanswered strikes may take max(this, 3 x drain timeout)
DRAIN_CAP = 10  # the drain lasts at most this many drain timeouts, progress or not
ROSTER_EXHAUSTED = "roster_exhausted"  # client-side: no rested character left
CONNECTION_CLOSED = "connection_closed"  # client-side: the server dropped the connection
MALFORMED_REPLY = "malformed_reply"  # client-side: a frame that is not a protocol message
_KEEP_CHARACTER = frozenset({"character_exhausted", "character_not_owned"})
_RETRY_AFTER = frozenset({"on_cooldown", "rate_limited"})

_unpackb = msgpack.unpackb
_monotonic = time.monotonic


class LoadClient:
    """One connection of one synthetic player."""

    def __init__(self, worker: Worker, player: Player, conn: LeanConnection) -> None:
        spec = worker.spec
        self.worker = worker
        self.player = player
        self.conn = conn
        self.is_text = spec.fmt == "json"  # JSON in text frames, MessagePack in binary ones
        self.prefix = f"{spec.run_id}-{player.index}-"  # strike id = prefix + strike number
        self.encoder = StrikeEncoder(spec.fmt, spec.raid_id, spec.actions, self.prefix)
        self.strikes: dict[int, tuple[float, str]] = {}  # rid -> (intended time, character)
        self.requests: dict[int, asyncio.Future[dict[str, Any]]] = {}  # rid < 0 -> waiter
        self.next_n = 0  # the next strike number (also the strike's rid)
        self.next_other_rid = -1  # non-strike requests use negative rids
        self.available = collections.deque(player.characters)  # rested characters
        self.resting: list[tuple[float, str]] = []  # heap of (rested at, server time; id)
        self.cooldown_until = 0.0  # server time
        self.clock_offset = 0.0  # server time - local time, from hello
        self.rewarded = array("q")  # strike numbers whose report carries a strike reward
        self.alive = True
        self.raid_over = False  # the server answered raid_not_active: stop striking
        self.timer: asyncio.TimerHandle | None = None  # a closed-loop client's next wake-up
        # subscriber state
        self.start_seq: int | None = None
        self.last_seq: int | None = None
        self.events = 0
        self.anomalies = 0
        self.first_anomaly = ""
        self.event_counts: collections.Counter[str] = collections.Counter()
        self.digest = hashlib.blake2b(digest_size=16)
        self.last_hp_count: int | None = None
        conn.set_handlers(self.on_message, self.lost)

    # -- sending ----------------------------------------------------------------------

    def _encode(self, msg: dict[str, Any]) -> bytes:
        if self.is_text:
            return json.dumps(msg, separators=(",", ":")).encode()
        packed: bytes = msgpack.packb(msg)
        return packed

    async def request(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A non-strike request (set-up and checks); raises ConnectionError if it is lost."""
        rid = self.next_other_rid
        self.next_other_rid -= 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.requests[rid] = future
        try:
            if not self.conn.send(self._encode({"op": op, "rid": rid, **fields}), self.is_text):
                raise ConnectionError("connection closed")
            async with asyncio.timeout(SETUP_TIMEOUT_S):
                return await future
        finally:
            self.requests.pop(rid, None)

    def send_strike(self, character: str, intended: float) -> None:
        """Send the next strike; its latency will count from ``intended``."""
        n = self.next_n
        self.next_n = n + 1
        self.strikes[n] = (intended, character)
        if self.conn.send(self.encoder.encode(n, character), self.is_text):
            worker = self.worker
            worker.in_flight += 1
            worker.sent += 1
        else:  # never sent: the connection is gone (lost() has counted that)
            del self.strikes[n]
            self.available.append(character)

    def next_strike(self) -> None:
        """Closed loop: strike now if this client may, else wake up when it may."""
        self.timer = None
        if not self.alive or self.raid_over:
            return
        now = _monotonic()
        t_end = self.worker.t_end
        if now >= t_end:
            return
        wait = self.cooldown_until - time.time() - self.clock_offset
        if wait > 0:
            self._wake(min(now + wait, t_end))
            return
        character = self.take_character()
        if character is None:
            rest = self.wait_for_character()
            if rest is None:
                self.worker.count_error(ROSTER_EXHAUSTED)
                return
            self._wake(min(now + max(rest, 0.001), t_end))
            return
        self.send_strike(character, now)

    def _wake(self, at: float) -> None:
        self.timer = asyncio.get_running_loop().call_at(at, self.next_strike)

    # -- characters and cooldown -------------------------------------------------------

    def server_now(self) -> float:
        return time.time() + self.clock_offset

    def take_character(self) -> str | None:
        resting = self.resting
        if resting:
            now = self.server_now()
            while resting and resting[0][0] <= now:
                self.available.append(heapq.heappop(resting)[1])
        return self.available.popleft() if self.available else None

    def wait_for_character(self) -> float | None:
        """Seconds until a character is rested again; None if none ever will be."""
        if not self.resting:
            return None
        return max(0.0, self.resting[0][0] - self.server_now())

    # -- receiving ----------------------------------------------------------------------

    def on_message(self, payload: bytes, is_text: bool) -> None:
        """Every message of the connection, from its ``data_received``."""
        try:
            msg = json.loads(payload) if is_text else _unpackb(payload)
            rid = msg.get("rid")
            if rid is None:
                if msg["op"] == "event":
                    self._on_event(msg, payload)
                return
            if rid >= 0:
                entry = self.strikes.pop(rid, None)
                if entry is None:
                    return
                worker = self.worker
                worker.in_flight -= 1
                worker.answered_at = now = _monotonic()
                worker.on_strike_reply(self, msg, now, entry[0], rid, entry[1])
                if worker.closed_loop:
                    self.next_strike()
                return
            future = self.requests.pop(rid, None)
            if future is not None and not future.done():
                future.set_result(msg)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # Not a protocol message: the server is broken; count it and drop the connection.
            self.worker.count_error(MALFORMED_REPLY)
            self.conn.fail(CLOSE_PROTOCOL_ERROR, f"malformed message ({type(exc).__name__})")

    def lost(self) -> None:
        """The connection is gone: wake everyone waiting; strikes stay pending (in doubt)."""
        if not self.alive:
            return
        self.alive = False
        worker = self.worker
        if worker.loading:
            worker.count_error(CONNECTION_CLOSED)
        # Its strikes can no longer be answered here: the drain stops waiting for them.
        worker.in_flight -= len(self.strikes)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for future in self.requests.values():
            if not future.done():
                future.set_exception(ConnectionError("connection closed"))
                future.exception()  # the request's own wait may have timed out already

    def _on_event(self, msg: dict[str, Any], payload: bytes) -> None:
        seq = msg["seq"]
        last = self.last_seq
        if last is not None and seq != last + 1:
            self.anomalies += 1
            if not self.first_anomaly:
                self.first_anomaly = f"after seq {last} came seq {seq}"
        self.last_seq = seq
        self.events += 1
        kind = msg["type"]
        if kind == "hp":
            count = msg["strike_count"]
            if self.last_hp_count is None or count > self.last_hp_count:
                self.last_hp_count = count
            return
        self.event_counts[kind] += 1
        self.digest.update(payload)

    def subscriber_result(self) -> SubscriberResult:
        return SubscriberResult(
            start_seq=self.start_seq if self.start_seq is not None else -1,
            last_seq=self.last_seq,
            events=self.events,
            anomalies=self.anomalies,
            first_anomaly=self.first_anomaly,
            counts=dict(self.event_counts),
            digest=self.digest.hexdigest(),
            last_hp_strike_count=self.last_hp_count,
        )


class Worker:
    """Drives its share of the clients and reports to the parent through queues."""

    def __init__(
        self,
        spec: WorkerSpec,
        to_parent: multiprocessing.queues.Queue[Any],
        from_parent: multiprocessing.queues.Queue[Any],
    ) -> None:
        self.spec = spec
        self.to_parent = to_parent
        self.from_parent = from_parent
        self.clients: list[LoadClient] = []
        self.masks = MaskSource()  # WebSocket mask keys for every connection of the worker
        self.closed_loop = spec.mode == "closed"
        self.loading = False  # True while the load runs (connection losses count as errors)
        self.t_end = 0.0  # no strike is sent at or after this time
        self.sent = 0
        self.ok = 0
        self.in_flight = 0  # strikes sent on live connections and not yet answered
        self.answered_at = 0.0  # when the last strike reply (of any kind) came
        self.errors: collections.Counter[str] = collections.Counter()
        self.window = new_histogram()
        self.summary = LoadSummary(worker_id=spec.worker_id)
        self.sample: list[tuple[LoadClient, dict[str, Any]]] = []  # reservoir of reports
        self.seen = 0  # acknowledged strikes offered to the reservoir
        self.rng = random.Random(spec.worker_id)
        self._shipped = (0, 0)  # (ok, sent) already shipped
        self._shipped_errors: collections.Counter[str] = collections.Counter()
        self._open_timer: asyncio.TimerHandle | None = None  # the open-loop scheduler's
        self._sending_done: asyncio.Future[None] | None = None  # open loop: all sent
        self._open_next = 0  # open loop: the worker's next strike (see _open_tick)
        self._t0 = 0.0  # the load's start

    # -- parent communication -----------------------------------------------------------

    def send(self, *message: Any) -> None:
        self.to_parent.put(message)

    async def receive(self) -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        message: tuple[Any, ...] = await loop.run_in_executor(None, self.from_parent.get)
        return message

    async def _heartbeat(self) -> None:
        while True:
            self.send("alive", self.spec.worker_id)
            await asyncio.sleep(HEARTBEAT_S)

    # -- hot path -----------------------------------------------------------------------

    def count_error(self, code: str) -> None:
        self.errors[code] += 1

    def on_strike_reply(
        self,
        client: LoadClient,
        msg: dict[str, Any],
        now: float,
        intended: float,
        n: int,
        character: str,
    ) -> None:
        """Account for one strike's answer, received at ``now``, intended at ``intended``."""
        op = msg["op"]
        if op != "strike.ok":
            if op != "error":
                self.errors["unexpected_reply"] += 1
                return
            code = msg.get("code")
            self.errors[str(code)] += 1
            if code == "raid_not_active":
                client.raid_over = True
            elif code in _RETRY_AFTER:
                retry = msg.get("retry_after")
                if isinstance(retry, int | float):
                    client.cooldown_until = client.server_now() + retry
            if code not in _KEEP_CHARACTER:
                client.available.append(character)
            return
        self.ok += 1
        micros = int((now - intended) * 1_000_000)  # clamp_us, inlined
        self.window.record_value(
            micros if LOWEST_US <= micros <= HIGHEST_US else clamp_us(now - intended)
        )
        summary = self.summary
        summary.last_reply_at = now
        if self.spec.echo:
            client.available.append(character)
            return
        summary.acked += 1
        summary.sum_damage += msg["damage"]
        summary.sum_analysis += msg["analysis_points"]
        summary.strike_counts.append(msg["strike_count"])
        if msg["breakthroughs"]:
            summary.breakthroughs += len(msg["breakthroughs"])
        if msg["retaliations"]:
            summary.retaliations += len(msg["retaliations"])
        if msg["victory"]:
            summary.victories += 1
        for reward in msg["rewards"]:
            if reward["bundle"]:
                client.rewarded.append(n)
                summary.rewarded += 1
                break
        rest = msg["exhausted_until"]
        if rest is not None:
            heapq.heappush(client.resting, (rest, character))
        client.cooldown_until = msg["cooldown_until"]
        self.seen += 1
        sample_size = self.spec.sample_size
        if len(self.sample) < sample_size:
            self.sample.append((client, msg))
        else:
            slot = self.rng.randrange(self.seen)
            if slot < sample_size:
                self.sample[slot] = (client, msg)

    def _open_tick(self, order: list[LoadClient], phases: list[float], interval: float) -> None:
        """Open loop: send every strike whose intended time has come, then sleep until the
        next one. Strike j of the worker is client ``order[j % m]``'s ``j // m``-th."""
        self._open_timer = None
        now = _monotonic()
        t0, t_end = self._t0, self.t_end
        m = len(order)
        j = self._open_next
        while True:
            k, i = divmod(j, m)
            intended = t0 + phases[i] + k * interval
            if intended >= t_end:
                if self._sending_done is not None and not self._sending_done.done():
                    self._sending_done.set_result(None)
                break
            if intended > now:
                self._open_timer = asyncio.get_running_loop().call_at(
                    intended, self._open_tick, order, phases, interval
                )
                break
            j += 1
            client = order[i]
            if client.alive and not client.raid_over:
                character = client.take_character()
                if character is None:
                    self.errors[ROSTER_EXHAUSTED] += 1
                else:
                    client.send_strike(character, intended)
        self._open_next = j

    # -- phases -------------------------------------------------------------------------

    async def run(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(), name="heartbeat")
        try:
            await self._phases()
        finally:
            heartbeat.cancel()

    async def _phases(self) -> None:
        try:
            await self.connect_all()
        except (OSError, InvalidHandshake, TimeoutError, ValueError) as exc:
            self.send("fatal", self.spec.worker_id, str(exc) or type(exc).__name__)
            await self.close_all()
            return
        self.send("ready", self.spec.worker_id)
        command = await self.receive()
        if command[0] != "start":
            await self.close_all()
            return
        _, t0, t_end = command
        await self.load(t0, t_end)
        command = await self.receive()
        if command[0] == "check":
            _, base_count, final_count = command
            self.send("checked", self.spec.worker_id, await self.check(base_count, final_count))
        await self.close_all()

    async def connect_all(self) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(player: Player) -> None:
            async with gate:
                conn = await open_connection(self.spec.url, self.masks, SETUP_TIMEOUT_S)
                client = LoadClient(self, player, conn)
                self.clients.append(client)
                if not self.spec.echo:
                    await self._login(client)

        await asyncio.gather(*(one(player) for player in self.spec.players))

    async def _login(self, client: LoadClient) -> None:
        sent_at = time.time()
        reply = await client.request("hello", {"token": client.player.token})
        if reply.get("op") != "hello.ok":
            raise ConnectionError(
                f"hello refused for {client.player.user_id}: {reply.get('message')}"
            )
        client.clock_offset = float(reply["server_time"]) - (sent_at + time.time()) / 2
        if self.spec.subscribe:
            reply = await client.request("raid.subscribe", {"raid_id": self.spec.raid_id})
            if reply.get("op") != "raid.subscribe.ok":
                raise ConnectionError(f"raid.subscribe refused: {reply.get('message')}")
            client.start_seq = client.last_seq = int(reply["seq"])

    async def load(self, t0: float, t_end: float) -> None:
        loop = asyncio.get_running_loop()
        self._t0, self.t_end = t0, t_end
        self.loading = True
        # The hot path makes no reference cycles (decoded replies, tuples): the collector
        # would only rescan the long-lived clients, ~5-10 % of the worker in profiles.
        gc.freeze()
        gc.disable()
        cpu_before = _cpu_seconds()
        reporter = asyncio.create_task(self._report_windows(t0))
        deadline = t_end + DRAIN_CAP * self.spec.drain_timeout_s
        if self.closed_loop:
            for client in self.clients:
                client.timer = loop.call_at(t0, client.next_strike)
            await asyncio.sleep(max(0.0, t_end - _monotonic()))
        else:
            rate = self.spec.rate_per_client or 1.0
            interval = 1.0 / rate
            total = self.spec.clients_total
            order = sorted(self.clients, key=lambda c: c.player.index)
            phases = [interval * c.player.index / total for c in order]
            self._open_next = 0
            self._sending_done = loop.create_future()
            if order:
                self._open_timer = loop.call_at(t0, self._open_tick, order, phases, interval)
            else:
                self._sending_done.set_result(None)
            # A starved loop may still be sending the last intended strikes after t_end.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.shield(self._sending_done), max(0.0, deadline - _monotonic())
                )
        await self._drain(self.spec.drain_timeout_s, deadline)
        self._stop_sending()
        self.loading = False
        self.summary.cpu_s = _cpu_seconds() - cpu_before
        gc.enable()
        reporter.cancel()
        if not self.spec.echo:
            await self._resolve_in_doubt(
                _monotonic() + max(RESOLVE_MIN_S, 3 * self.spec.drain_timeout_s)
            )
        self._ship(max(0, int((_monotonic() - t0) / WINDOW_S)))
        self.send("loaded", self.spec.worker_id, self.summary)

    def _stop_sending(self) -> None:
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        for client in self.clients:
            if client.timer is not None:
                client.timer.cancel()
                client.timer = None

    async def _drain(self, idle_s: float, deadline: float) -> None:
        """Until every strike sent on a live connection is answered, or no answer came for
        ``idle_s`` seconds (a server still working through a backlog is waited for), or
        the deadline."""
        while self.in_flight > 0:
            now = _monotonic()
            if now >= deadline or now - max(self.answered_at, self.t_end) >= idle_s:
                return
            await asyncio.sleep(0.01)

    async def _report_windows(self, t0: float) -> None:
        index = 0
        while True:
            await asyncio.sleep(max(0.0, t0 + (index + 1) * WINDOW_S - _monotonic()))
            self._ship(index)
            index += 1

    def _ship(self, index: int) -> None:
        ok, sent = self._shipped
        errors = self.errors - self._shipped_errors
        window = Window(
            index=index,
            ok=self.ok - ok,
            sent=self.sent - sent,
            errors=dict(errors),
            histogram=self.window.encode() if self.ok - ok else b"",
        )
        self.window = new_histogram()  # cheaper than reset(), which zeroes in Python
        self._shipped = (self.ok, self.sent)
        self._shipped_errors = collections.Counter(self.errors)
        self.send("window", self.spec.worker_id, window)

    async def _resolve_in_doubt(self, deadline: float) -> None:
        """Strikes unanswered at the drain deadline are sent again with their strike_id
        over a new connection: the answer tells whether they were applied. Their latency
        counts up to that answer, so a stalled server cannot hide its slowest strikes.
        Players are resolved side by side; what is still unknown at ``deadline`` stays in
        doubt (and fails the audit's ``no_strike_in_doubt``)."""
        gate = asyncio.Semaphore(RESOLVE_CONCURRENCY)
        doubtful = [(client, sorted(client.strikes.items())) for client in self.clients]
        for client in self.clients:
            client.strikes = {}
        await asyncio.gather(
            *(
                self._resolve_client(c, strikes, gate, deadline)
                for c, strikes in doubtful
                if strikes
            )
        )

    async def _resolve_client(
        self,
        client: LoadClient,
        doubtful: list[tuple[int, tuple[float, str]]],
        gate: asyncio.Semaphore,
        deadline: float,
    ) -> None:
        spec = self.spec
        left = len(doubtful)
        try:
            async with (
                gate,
                asyncio.timeout_at(_loop_time_at(deadline)),
                await raidclient.connect(
                    spec.url, client.player.token, fmt=spec.fmt, reconnect_timeout=10
                ) as fresh,
            ):
                for n, (intended, character) in doubtful:
                    try:
                        report = await fresh.strike(
                            spec.raid_id,
                            spec.actions[n % len(spec.actions)],
                            [character],
                            strike_id=client.encoder.strike_id(n),
                        )
                    except raidclient.ServerError:
                        left -= 1
                        continue  # refused: it was not applied
                    # Its latency: until the client knew it was applied.
                    self.on_strike_reply(
                        client, dict(report.raw), _monotonic(), intended, n, character
                    )
                    self.summary.resolved += 1
                    left -= 1
        except (raidclient.RaidClientError, TimeoutError):
            self.summary.in_doubt += left

    async def check(self, base_count: int, final_count: int) -> CheckSummary:
        result = CheckSummary(worker_id=self.spec.worker_id)
        if self.spec.subscribe:
            await self._wait_for_events(base_count, final_count)
            result.subscribers = [c.subscriber_result() for c in self.clients]
        await self._resend_sample(result)
        if self.summary.rewarded:
            await asyncio.gather(*(self._check_rewards(c, result) for c in self.clients))
        return result

    async def _wait_for_events(self, base_count: int, final_count: int) -> None:
        """Until every subscriber has seen the hp event of the final strike count."""
        if final_count == base_count:
            return
        deadline = _monotonic() + self.spec.drain_timeout_s

        def behind() -> bool:
            return any(
                c.alive and (c.last_hp_count is None or c.last_hp_count < final_count)
                for c in self.clients
            )

        while behind() and _monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _resend_sample(self, result: CheckSummary) -> None:
        async def one(client: LoadClient, original: dict[str, Any]) -> None:
            fields = {
                "raid_id": self.spec.raid_id,
                "action": original["action"],
                "team": original["team"],
                "strike_id": original["strike_id"],
            }
            try:
                again = await _retry_rate_limited(lambda: client.request("strike", fields))
            except (ConnectionError, TimeoutError) as exc:
                result.errors.append(f"resend of {original['strike_id']}: {exc}")
                return
            result.resent += 1
            same = _without_envelope(again) == _without_envelope(original)
            if not same:
                result.resend_mismatches.append(
                    f"strike {original['strike_id']} resent: {_difference(original, again)}"
                )

        live = [(c, msg) for c, msg in self.sample if c.alive]
        await asyncio.gather(*(one(c, msg) for c, msg in live))

    async def _check_rewards(self, client: LoadClient, result: CheckSummary) -> None:
        if not client.alive:
            return
        try:
            reply = await _retry_rate_limited(
                lambda: client.request("rewards.list", {"raid_id": self.spec.raid_id})
            )
        except (ConnectionError, TimeoutError) as exc:
            result.errors.append(f"rewards.list for {client.player.user_id}: {exc}")
            return
        if reply.get("op") != "rewards.list.ok":
            result.rewards_problems.append(
                f"{client.player.user_id}: rewards.list refused: {reply.get('message')}"
            )
            return
        result.rewards_checked += 1
        ours = "strike:" + client.prefix
        keys = collections.Counter(
            str(r["key"]) for r in reply["claimed"] if str(r["key"]).startswith(ours)
        )
        expected = {ours + str(n) for n in client.rewarded}
        doubled = sorted(k for k, count in keys.items() if count > 1)
        missing = sorted(expected - set(keys))
        extra = sorted(set(keys) - expected)
        for label, found in (("twice", doubled), ("missing", missing), ("unexpected", extra)):
            if found:
                result.rewards_problems.append(
                    f"{client.player.user_id}: {len(found)} strike reward(s) {label}, "
                    f"e.g. {found[0]}"
                )

    async def close_all(self) -> None:
        self._stop_sending()
        for client in self.clients:
            client.alive = False
        await asyncio.gather(*(c.conn.close() for c in self.clients))


async def _retry_rate_limited(call: Callable[[], Any], attempts: int = 20) -> dict[str, Any]:
    """A check request, waiting out ``rate_limited`` answers (the bucket refills)."""
    for _ in range(attempts):
        reply: dict[str, Any] = await call()
        if reply.get("op") != "error" or reply.get("code") != "rate_limited":
            return reply
        await asyncio.sleep(float(reply.get("retry_after") or 0.05))
    return reply


def _loop_time_at(monotonic_deadline: float) -> float:
    """A ``time.monotonic()`` deadline on the running loop's clock (the same clock for
    the standard loop; converted anyway, so that another loop could not break it)."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - _monotonic())


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _without_envelope(msg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in msg.items() if k not in ("op", "rid")}


def _difference(original: dict[str, Any], again: dict[str, Any]) -> str:
    if again.get("op") == "error":
        return f"answered {again.get('code')}: {again.get('message')}"
    for key in sorted((set(original) | set(again)) - {"op", "rid"}):
        if original.get(key) != again.get(key):
            return f"{key} was {original.get(key)!r}, now {again.get(key)!r}"
    return "different"


def worker_main(
    spec: WorkerSpec,
    to_parent: multiprocessing.queues.Queue[Any],
    from_parent: multiprocessing.queues.Queue[Any],
) -> None:
    """Entry point of a worker process."""
    # uvloop: its reads land in one preallocated buffer and its writes are C; with the
    # standard loop each read allocated (and the kernel mapped and unmapped) 256 KiB.
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        runner.run(Worker(spec, to_parent, from_parent).run())
