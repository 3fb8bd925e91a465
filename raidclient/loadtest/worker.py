"""One worker process: an asyncio loop driving many connections.

The hot path is kept small on purpose so the tool is not the bottleneck: one frame built
and sent per strike, one frame decoded per reply, no task per strike. Closed loop: each
client awaits its reply before the next strike. Open loop: each client sends at its
intended times whatever happens to earlier strikes, and latency is measured from the
intended send time, so a stalled server shows up as latency instead of hiding behind
fewer sends (coordinated omission).

Every time in this module is ``time.monotonic()``, which is one system-wide clock on
Linux, so the parent's start and end times mean the same in every worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import heapq
import json
import multiprocessing.queues
import random
import time
from collections.abc import Callable
from typing import Any

import msgpack
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

import raidclient
from raidclient.loadtest.plan import (
    CheckSummary,
    LoadSummary,
    Player,
    SubscriberResult,
    WorkerSpec,
)
from raidclient.loadtest.stats import WINDOW_S, Window, clamp_us, new_histogram

CONNECT_CONCURRENCY = 50  # handshakes in flight per worker while setting up
SETUP_TIMEOUT_S = 30.0  # one hello or subscribe during set-up
ROSTER_EXHAUSTED = "roster_exhausted"  # client-side: no rested character left
CONNECTION_CLOSED = "connection_closed"  # client-side: the server dropped the connection

_STRIKE = 0  # pending entry kinds
_OTHER = 1

Pending = tuple[int, float, int, str, "asyncio.Future[dict[str, Any]] | None"]
"""(kind, intended send time, strike number, character, future or None)."""


class LoadClient:
    """One connection of one synthetic player."""

    def __init__(self, worker: Worker, player: Player, websocket: ClientConnection) -> None:
        self.worker = worker
        self.player = player
        self.ws = websocket
        self.json = worker.spec.fmt == "json"
        self.prefix = f"{worker.spec.run_id}-{player.index}-"  # strike id = prefix + number
        self.pending: dict[int, Pending] = {}  # rid -> what it was for
        self.next_n = 0  # the next strike number (also the strike's rid)
        self.next_other_rid = -1  # non-strike requests use negative rids
        self.available = collections.deque(player.characters)  # rested characters
        self.resting: list[tuple[float, str]] = []  # heap of (rested at, server time; id)
        self.cooldown_until = 0.0  # server time
        self.clock_offset = 0.0  # server time - local time, from hello
        self.acked: list[int] = []  # strike numbers acknowledged
        self.rewarded: list[int] = []  # ... of which the report carries a strike reward
        self.alive = True
        # subscriber state
        self.start_seq: int | None = None
        self.last_seq: int | None = None
        self.events = 0
        self.anomalies = 0
        self.first_anomaly = ""
        self.event_counts: collections.Counter[str] = collections.Counter()
        self.digest = hashlib.blake2b(digest_size=16)
        self.last_hp_count: int | None = None
        self.reader = asyncio.create_task(self._read(), name=f"reader-{player.index}")

    # -- sending ----------------------------------------------------------------------

    def _encode(self, msg: dict[str, Any]) -> bytes | str:
        if self.json:
            return json.dumps(msg, separators=(",", ":"))
        packed: bytes = msgpack.packb(msg)
        return packed

    async def request(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A non-strike request (set-up and checks); raises ConnectionError if it is lost."""
        rid = self.next_other_rid
        self.next_other_rid -= 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[rid] = (_OTHER, 0.0, 0, "", future)
        try:
            await self.ws.send(self._encode({"op": op, "rid": rid, **fields}))
            async with asyncio.timeout(SETUP_TIMEOUT_S):
                return await future
        except ConnectionClosed as exc:
            raise ConnectionError(f"connection closed ({exc})") from None
        finally:
            self.pending.pop(rid, None)

    async def send_strike(
        self, character: str, intended: float, want_reply: bool
    ) -> asyncio.Future[dict[str, Any]] | None:
        n = self.next_n
        self.next_n = n + 1
        spec = self.worker.spec
        future: asyncio.Future[dict[str, Any]] | None = None
        if want_reply:
            future = asyncio.get_running_loop().create_future()
        self.pending[n] = (_STRIKE, intended, n, character, future)
        actions = spec.actions
        frame = self._encode(
            {
                "op": "strike",
                "rid": n,
                "raid_id": spec.raid_id,
                "action": actions[n % len(actions)],
                "team": [character],
                "strike_id": self.prefix + str(n),
            }
        )
        self.worker.sent += 1
        try:
            await self.ws.send(frame)
        except ConnectionClosed:
            self.lost()
        return future

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

    def cooldown_wait(self) -> float:
        return max(0.0, self.cooldown_until - self.server_now())

    # -- receiving ----------------------------------------------------------------------

    async def _read(self) -> None:
        worker = self.worker
        try:
            async for data in self.ws:
                msg = json.loads(data) if isinstance(data, str) else msgpack.unpackb(data)
                if msg["op"] == "event":
                    self._on_event(msg, data)
                    continue
                entry = self.pending.pop(msg.get("rid"), None)
                if entry is None:
                    continue
                kind, intended, n, character, future = entry
                if kind == _STRIKE:
                    worker.on_strike_reply(self, msg, time.monotonic() - intended, n, character)
                if future is not None and not future.done():
                    future.set_result(msg)
        except ConnectionClosed:
            pass
        finally:
            self.lost()

    def lost(self) -> None:
        """The connection is gone: wake everyone waiting; strikes stay pending (in doubt)."""
        if not self.alive:
            return
        self.alive = False
        if self.worker.loading:
            self.worker.count_error(CONNECTION_CLOSED)
        for entry in self.pending.values():
            future = entry[4]
            if future is not None and not future.done():
                future.set_exception(ConnectionError("connection closed"))

    def _on_event(self, msg: dict[str, Any], data: bytes | str) -> None:
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
        self.digest.update(data.encode() if isinstance(data, str) else data)

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
        self.loading = False  # True while the load runs (connection losses count as errors)
        self.sent = 0
        self.ok = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.window = new_histogram()
        self.summary = LoadSummary(worker_id=spec.worker_id)
        self.sample: list[tuple[LoadClient, dict[str, Any]]] = []  # reservoir of reports
        self.seen = 0  # acknowledged strikes offered to the reservoir
        self.rng = random.Random(spec.worker_id)
        self._shipped = (0, 0)  # (ok, sent) already shipped
        self._shipped_errors: collections.Counter[str] = collections.Counter()

    # -- parent communication -----------------------------------------------------------

    def send(self, *message: Any) -> None:
        self.to_parent.put(message)

    async def receive(self) -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        message: tuple[Any, ...] = await loop.run_in_executor(None, self.from_parent.get)
        return message

    # -- hot path -----------------------------------------------------------------------

    def count_error(self, code: str) -> None:
        self.errors[code] += 1

    def on_strike_reply(
        self,
        client: LoadClient,
        msg: dict[str, Any],
        elapsed: float | None,
        n: int,
        character: str,
    ) -> None:
        """Account for one strike's answer; ``elapsed`` None: a late answer to a resend
        after the load, which counts for the audit but not for throughput or latency."""
        op = msg["op"]
        if op == "error":
            self.errors[str(msg.get("code"))] += 1
            code = msg.get("code")
            if code in {"on_cooldown", "rate_limited"}:
                retry = msg.get("retry_after")
                if isinstance(retry, int | float):
                    client.cooldown_until = client.server_now() + retry
            if code not in {"character_exhausted", "character_not_owned"}:
                client.available.append(character)
            return
        if op != "strike.ok":
            self.errors["unexpected_reply"] += 1
            return
        summary = self.summary
        if elapsed is not None:
            self.ok += 1
            self.window.record_value(clamp_us(elapsed))
            summary.last_reply_at = time.monotonic()
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
        client.acked.append(n)
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
        if len(self.sample) < self.spec.sample_size:
            self.sample.append((client, msg))
        else:
            slot = self.rng.randrange(self.seen)
            if slot < self.spec.sample_size:
                self.sample[slot] = (client, msg)

    # -- phases -------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.connect_all()
        except (ConnectionError, OSError, InvalidHandshake, TimeoutError) as exc:
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

        async def one(player: Player) -> LoadClient:
            async with gate:
                websocket = await websockets.connect(
                    self.spec.url, max_size=None, compression=None, open_timeout=SETUP_TIMEOUT_S
                )
                client = LoadClient(self, player, websocket)
                self.clients.append(client)
                if not self.spec.echo:
                    await self._login(client)
                return client

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
        self.loading = True
        reporter = asyncio.create_task(self._report_windows(t0))
        if self.spec.mode == "closed":
            loops = [self._closed_loop(c, t_end) for c in self.clients]
        else:
            rate = self.spec.rate_per_client or 1.0
            interval = 1.0 / rate
            total = self.spec.clients_total
            loops = [
                self._open_loop(c, t0, t_end, interval, interval * c.player.index / total)
                for c in self.clients
            ]
        tasks = [asyncio.create_task(loop) for loop in loops]
        deadline = t_end + self.spec.drain_timeout_s
        await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        for task in tasks:
            task.cancel()  # a closed-loop client still waiting: its strike stays in doubt
        await asyncio.wait(tasks)
        await self._drain(deadline)
        self.loading = False
        reporter.cancel()
        self._ship(max(0, int((time.monotonic() - t0) / WINDOW_S)))
        if not self.spec.echo:
            await self._resolve_in_doubt()
        self.send("loaded", self.spec.worker_id, self.summary)

    async def _closed_loop(self, client: LoadClient, t_end: float) -> None:
        while client.alive:
            now = time.monotonic()
            if now >= t_end:
                return
            wait = client.cooldown_wait()
            if wait > 0:
                await asyncio.sleep(min(wait, t_end - now))
                continue
            character = client.take_character()
            if character is None:
                rest = client.wait_for_character()
                if rest is None:
                    self.count_error(ROSTER_EXHAUSTED)
                    return
                await asyncio.sleep(min(max(rest, 0.001), t_end - now))
                continue
            future = await client.send_strike(character, time.monotonic(), True)
            if future is None:
                return
            try:
                await future
            except ConnectionError:
                return

    async def _open_loop(
        self, client: LoadClient, t0: float, t_end: float, interval: float, phase: float
    ) -> None:
        k = 0
        while client.alive:
            intended = t0 + phase + k * interval
            if intended >= t_end:
                return
            k += 1
            delay = intended - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            character = client.take_character()
            if character is None:
                self.count_error(ROSTER_EXHAUSTED)
                continue
            await client.send_strike(character, intended, False)

    async def _drain(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if not any(
                c.alive and any(e[0] == _STRIKE for e in c.pending.values()) for c in self.clients
            ):
                return
            await asyncio.sleep(0.01)

    async def _report_windows(self, t0: float) -> None:
        index = 0
        while True:
            await asyncio.sleep(max(0.0, t0 + (index + 1) * WINDOW_S - time.monotonic()))
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
        self.window.reset()
        self._shipped = (self.ok, self.sent)
        self._shipped_errors = collections.Counter(self.errors)
        self.send("window", self.spec.worker_id, window)

    async def _resolve_in_doubt(self) -> None:
        """Strikes never answered are sent again with their strike_id (over a new
        connection if needed): the answer tells whether they were applied."""
        for client in self.clients:
            doubtful = [e for e in client.pending.values() if e[0] == _STRIKE]
            client.pending = {rid: e for rid, e in client.pending.items() if e[0] != _STRIKE}
            if not doubtful:
                continue
            try:
                async with await raidclient.connect(
                    self.spec.url, client.player.token, fmt=self.spec.fmt, reconnect_timeout=10
                ) as fresh:
                    for _, _, n, character, _ in doubtful:
                        actions = self.spec.actions
                        try:
                            report = await fresh.strike(
                                self.spec.raid_id,
                                actions[n % len(actions)],
                                [character],
                                strike_id=client.prefix + str(n),
                            )
                        except raidclient.ServerError:
                            continue  # refused: it was not applied
                        self.on_strike_reply(client, dict(report.raw), None, n, character)
            except raidclient.RaidClientError:
                self.summary.in_doubt += len(doubtful)

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
        deadline = time.monotonic() + self.spec.drain_timeout_s

        def behind() -> bool:
            return any(
                c.alive and (c.last_hp_count is None or c.last_hp_count < final_count)
                for c in self.clients
            )

        while behind() and time.monotonic() < deadline:
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
        for client in self.clients:
            client.alive = False
        await asyncio.gather(*(c.ws.close() for c in self.clients), return_exceptions=True)
        for client in self.clients:
            client.reader.cancel()


async def _retry_rate_limited(call: Callable[[], Any], attempts: int = 20) -> dict[str, Any]:
    """A check request, waiting out ``rate_limited`` answers (the bucket refills)."""
    for _ in range(attempts):
        reply: dict[str, Any] = await call()
        if reply.get("op") != "error" or reply.get("code") != "rate_limited":
            return reply
        await asyncio.sleep(float(reply.get("retry_after") or 0.05))
    return reply


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
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Worker(spec, to_parent, from_parent).run())
