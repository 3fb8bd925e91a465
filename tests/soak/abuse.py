"""Abuse from outside against a real server while honest players keep striking: a flood of
messages on one connection, 1,000 connections for one user, clients that stop reading, and
connections dropped in the middle of the WebSocket handshake.

For each: the server stays up (``/healthz``), the honest players are served (every strike
acknowledged), memory stays bounded (RSS from /proc before and after), and, measured not
asserted in ``make test``, the honest players' p99 latency against an unloaded run on the
same server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import msgpack
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from raidclient import RaidClient, connect
from tests.e2e.harness import ROOT, ServerProcess, character, start_server, token, write_config
from tests.soak.probes import Acknowledged, ScenarioResult, audit, rss_kib
from tests.timeouts import TIMEOUT

RAID = "abuse"
CAP = 16  # [server] max_connections_per_user (the shipped default)
HONEST_ROSTER = 100  # characters per honest player, used in turn (they rest 1 s)
THINK_S = 0.02  # an honest player strikes again 20 ms after each answer
SLOW_RAID = "slow"  # the slow readers' raid: their big requests do not queue in RAID
ROUNDS = 3  # each abuse is measured this many times (baseline, then attack): median ratio


def attacker_address(n: int) -> tuple[str, int]:
    """The ``n``-th attack's own address (Linux routes all of 127/8 to loopback): an attacker
    has an address of its own, as it would on the internet, so the server's per-address
    limits can tell it from the honest players (127.0.0.1) and from earlier attacks."""
    return (f"127.0.{1 + n // 250}.{2 + n % 250}", 0)


def p99_note(measured: list[tuple[float, float]], pooled: tuple[float, float]) -> str:
    """The rounds' honest p99 under attack against unloaded, their median ratio, and the
    ratio of the p99s of all rounds' latencies pooled (three times the samples, so less of
    the run-to-run noise of a p99 of a few hundred strikes)."""
    ratios = [loaded / unloaded for loaded, unloaded in measured]
    rounds = ", ".join(f"{a * 1000:.0f}/{b * 1000:.0f} ms" for a, b in measured)
    loaded, unloaded = pooled
    return (
        f"others' p99 under attack/unloaded per round {rounds}: median "
        f"{statistics.median(ratios):.1f}x; rounds pooled {loaded * 1000:.0f}/"
        f"{unloaded * 1000:.0f} ms: {loaded / unloaded:.1f}x"
    )


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Honest:
    """Players striking one at a time, timing each acknowledgement."""

    def __init__(self, clients: list[tuple[str, RaidClient]], acked: Acknowledged) -> None:
        self.clients = clients
        self.acked = acked
        self.next = dict.fromkeys((user for user, _ in clients), 0)  # next character per player

    async def play(self, strikes: int, until: asyncio.Future[str] | None = None) -> list[float]:
        """At least ``strikes`` sequential strikes per player, and on until ``until`` is
        done (the attack lasts); every one must be acknowledged. Returns the latencies."""

        async def one(user: str, client: RaidClient) -> list[float]:
            times: list[float] = []
            while len(times) < strikes or (until is not None and not until.done()):
                n = self.next[user]
                self.next[user] += 1
                team = [f"{user}-c{n % HONEST_ROSTER}"]  # rested: 100 strikes x 20 ms > 1 s
                started = time.perf_counter()
                report = await client.strike(RAID, "fight", team, f"h{n}")
                times.append(time.perf_counter() - started)
                await asyncio.sleep(THINK_S)
                self.acked.strikes[(RAID, user, f"h{n}")] = (report.damage, 0)
            return times

        per_player = await asyncio.gather(*(one(u, c) for u, c in self.clients))
        return [t for times in per_player for t in times]


async def flood(server: ServerProcess, messages: int, address: tuple[str, int]) -> str:
    """One connection sends ``messages`` frames as fast as it can: pings, garbage, strikes
    with other players' characters, oversized rids; it reads whatever comes back."""
    rng = random.Random(1)
    async with websockets.connect(server.ws_url, max_size=None, local_addr=address) as ws:
        await ws.send(msgpack.packb({"op": "hello", "rid": 0, "token": token("flooder")}))
        await ws.recv()
        answers: dict[str, int] = {}

        async def read() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for data in ws:
                    reply = msgpack.unpackb(data) if isinstance(data, bytes) else json.loads(data)
                    key = reply.get("code", reply.get("op"))
                    answers[key] = answers.get(key, 0) + 1

        reader = asyncio.create_task(read())
        frames: list[bytes | str] = [
            msgpack.packb({"op": "ping", "rid": 1}),
            b"\xc1\xff garbage",
            '{"op": "strike", "rid": 2, "raid_id": "abuse", "action": "fight", '
            '"team": ["h00-c0"], "strike_id": "x"}',
            msgpack.packb({"op": "raid.hub", "rid": 10**400 % 2**62, "raid_id": "abuse"}),
            '{"op": "hello", "rid": 1e400}',
        ]
        sent = 0
        ending = "then cut"
        try:
            for _ in range(messages):
                # The server stops reading a rate-limited connection: once its buffers are
                # full a send waits. Waiting a second on one send ends the flood.
                await asyncio.wait_for(ws.send(rng.choice(frames)), 1.0)
                sent += 1
        except TimeoutError:
            pass
        except ConnectionClosed:
            # Our pongs wait behind the flood the server is not reading: its keepalive
            # drops the connection (1011), which is a fine end for a flooder.
            ending = f"dropped by the server ({ws.close_code})"
        await asyncio.sleep(0.5)  # let the answers in flight arrive (nothing is timed)
        ws.transport.abort()  # no closing handshake: it would wait behind the flood
        await reader
    top = sorted(answers.items(), key=lambda kv: -kv[1])[:3]
    answered = sum(answers.values())
    return f"{sent:,} sent, {answered:,} read and answered ({ending}); most: " + ", ".join(
        f"{n} {k}" for k, n in top
    )


async def many_connections(server: ServerProcess, count: int, address: tuple[str, int]) -> str:
    """``count`` connections for one user at once: at most CAP are accepted, the others are
    refused (unavailable, then closed with 1008), and the server keeps serving."""
    hello = msgpack.packb({"op": "hello", "rid": 1, "token": token("hoarder")})
    accepted: list[websockets.ClientConnection] = []
    refused = gated = failed = 0

    async def one() -> None:
        nonlocal refused, gated, failed
        try:
            ws = await websockets.connect(
                server.ws_url, open_timeout=TIMEOUT * 3, local_addr=address
            )
        except InvalidStatus as exc:
            assert exc.response.status_code == 429, exc.response.status_code
            gated += 1  # past the address's connection burst: refused before the handshake
            return
        except (OSError, InvalidHandshake, TimeoutError):
            failed += 1  # the listen backlog overflowed: refused by the kernel, not us
            return
        await ws.send(hello)
        reply = msgpack.unpackb(await ws.recv())
        if reply["op"] == "hello.ok":
            accepted.append(ws)
            return
        assert reply["code"] == "unavailable", reply
        refused += 1
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT * 3)
        assert ws.close_code == 1008, ws.close_code
        await ws.close()

    for start in range(0, count, 200):  # 200 at a time: the client's own fd limit
        await asyncio.gather(*(one() for _ in range(min(200, count - start))))
    assert len(accepted) == CAP, (len(accepted), refused, gated, failed)
    for ws in accepted:
        await ws.close()
    return (
        f"{len(accepted)} accepted, {refused} refused at hello (1008), {gated} refused before "
        f"the handshake (429), {failed} not connected"
    )


async def slow_readers(server: ServerProcess, readers: int, address: tuple[str, int]) -> str:
    """Clients that ask for large replies and never read: each reply costs the rate limit
    by its size (``reply_bytes_per_message``), the server stops reading a client whose output
    waits (backpressure), runs at most ``max_tasks_per_connection`` of its requests at once,
    and closes it with 1013 once it has taken no output for ``ping_timeout_s`` (its pongs
    would wait behind that output), without hurting anyone."""
    closed: list[int | None] = []
    message = "disconnected"
    cut = [_logged(server, SLOW, f"slow{n}") for n in range(readers)]  # earlier rounds'

    async def one(n: int) -> None:
        user = f"slow{n}"
        earlier = _logged(server, message, user)  # disconnections of earlier rounds
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a reader on a slow link
        sock.bind(address)
        sock.connect(("127.0.0.1", server.port))
        ws = await websockets.connect(server.ws_url, sock=sock, max_size=None, max_queue=1)
        await ws.send(msgpack.packb({"op": "hello", "rid": 0, "token": token(user)}))
        await ws.recv()
        ask = msgpack.packb({"op": "team.options", "rid": 1, "raid_id": SLOW_RAID})
        deadline = time.monotonic() + TIMEOUT * 6
        # Ask (about 60 KB per reply) at the rate limit, read nothing, until the server
        # says it closed us: the client cannot see its own slowness without reading.
        while _logged(server, message, user) == earlier:  # the log is read 4 times a second
            assert time.monotonic() < deadline, f"{user} was never disconnected"
            for _ in range(10):
                with contextlib.suppress(ConnectionClosed, TimeoutError):
                    await asyncio.wait_for(ws.send(ask), 0.025)
        # Now read: what was sent before the close arrives, then the close itself.
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(TIMEOUT * 3):
                async for _ in ws:
                    pass
        closed.append(ws.close_code)

    await asyncio.gather(*(one(n) for n in range(readers)))
    assert len(closed) == readers
    too_slow = sum(_logged(server, SLOW, f"slow{n}") - cut[n] for n in range(readers))
    return f"{readers} disconnected ({too_slow} with 1013: no output taken for ping_timeout_s)"


SLOW = "client is not reading: closing with 1013"  # the server's log message


def _logged(server: ServerProcess, message: str, user: str) -> int:
    """How many times ``message`` was logged for ``user`` (rounds reuse the users)."""
    return sum(
        1 for line in server.log_lines() if line.get("msg") == message and line.get("user") == user
    )


async def half_handshakes(server: ServerProcess, count: int, address: tuple[str, int]) -> str:
    """Connections that stop in the middle of the opening handshake: after part of the HTTP
    upgrade request, or right after connecting. The server drops them (open timeout)."""
    request = (
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    )
    for start in range(0, count, 200):
        writers = []
        for n in range(start, min(start + 200, count)):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(
                    "127.0.0.1", server.port, local_addr=address
                )
                writer.write(request[: n % len(request)])
                writers.append(writer)
        await asyncio.sleep(0)
        for writer in writers:
            writer.transport.abort()  # dropped mid-handshake: no FIN, an RST
    status, _, _ = server.http_get("/healthz")
    assert status == 200
    return f"{count} dropped; /healthz still 200"


ABUSES: dict[str, Callable[[ServerProcess, int, tuple[str, int]], Coroutine[Any, Any, str]]] = {
    "flood of messages on one connection": flood,
    "connections for one user": many_connections,
    "slow readers": slow_readers,
    "connections dropped mid-handshake": half_handshakes,
}


async def _attack(server: ServerProcess, name: str, size: int, address: tuple[str, int]) -> str:
    """Run one abuse in its own process: the honest players' latencies are measured in this
    one, and an attacker sharing their event loop would delay them itself. The attacker
    runs at the lowest CPU priority (``nice 19``): it stands for a machine of its own, and on
    a small box it would otherwise take the CPU the server and the honest players share."""
    process = await asyncio.create_subprocess_exec(
        "nice",
        "-n",
        "19",
        sys.executable,
        "-m",
        "tests.soak.abuse",
        name,
        str(size),
        str(server.port),
        str(server.log_path),
        address[0],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise AssertionError(f"{name}: {err.decode(errors='replace')[-2000:]}")
    return out.decode().strip()


def _main() -> None:
    """``python -m tests.soak.abuse NAME SIZE PORT LOG ADDRESS``: one attack from ADDRESS,
    its outcome printed."""
    name, size, port, log_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    target = ServerProcess(None, port, Path(), Path(), Path(log_path), Path())  # type: ignore[arg-type]
    print(asyncio.run(ABUSES[name](target, size, (sys.argv[5], 0))))


async def abuse(
    directory: Path,
    sizes: dict[str, int],
    *,
    honest: int = 5,
    strikes: int = 20,
    max_pending_bytes: int | None = None,
    rounds: int = ROUNDS,
) -> list[ScenarioResult]:
    """Each abuse of ``sizes`` (name -> how many) in turn against one server, ``rounds``
    times, while ``honest`` players strike ``strikes`` times each; before each attack an
    unloaded run, for the p99 it is compared with (the median ratio is what counts: one
    p99 of a few hundred strikes on a shared box moves by 2x from run to run)."""
    config = write_config(directory, messages_per_s=50)  # the protocol's rate limit
    text = config.read_text().replace('character_rest = "event"', "character_rest = 1")
    text = text.replace("total_hp = 1000\n", "total_hp = 1000000000\n")
    # The shipped per-address connection limit (the harness turns it off for its many
    # clients from 127.0.0.1): the attackers come from addresses of their own.
    text = text.replace("connections_per_address_per_s = 0\n", "")
    if max_pending_bytes is not None:  # a smaller outbox: slow readers are cut sooner
        text = text.replace("[server]\n", f"[server]\nmax_pending_bytes = {max_pending_bytes}\n")
    config.write_text(text)
    server = start_server(directory, config_path=config)
    acked = Acknowledged()
    results: list[ScenarioResult] = []
    clients: list[tuple[str, RaidClient]] = []
    try:
        users = [f"h{i:02d}" for i in range(honest)]
        admin = await connect(server.ws_url, token("ops", "admin"), reconnect=False)
        slow = [f"slow{n}" for n in range(sizes.get("slow readers", 0))]
        for user in [*users, *slow]:
            # A slow reader's roster makes each team.options reply about 60 KB.
            count = 300 if user in slow else HONEST_ROSTER
            roster = [character(user, n, power=1) for n in range(count)]
            for part in range(0, len(roster), 300):  # 300 fit in one 64 KiB frame
                await admin.grant_roster(user, roster[part : part + 300])
            acked.grants.update({c["character_id"]: user for c in roster})
        for raid_id in (RAID, SLOW_RAID):
            acked.raids.add(await admin.create_raid("dummy", raid_id=raid_id))
        await admin.close()
        clients = [(u, await connect(server.ws_url, token(u), reconnect=False)) for u in users]
        players = Honest(clients, acked)
        attacks = 0
        for name, size in sizes.items():
            started = time.monotonic()
            result = ScenarioResult(f"abuse: {size:,} {name}", runs=1, faults=size * rounds)
            result.rss_before_kib = rss_kib(server.process.pid)
            before = len(acked)
            measured: list[tuple[float, float]] = []  # (loaded p99, unloaded p99) per round
            attacked: list[float] = []  # every round's latencies under attack
            unattacked: list[float] = []  # and unloaded
            for _ in range(rounds):
                # Unloaded, right before the attack: the box's own load drifts (other jobs).
                unloaded = await players.play(strikes)
                unattacked.extend(unloaded)
                baseline = p99(unloaded)
                address = attacker_address(attacks)
                attacks += 1
                attack = asyncio.ensure_future(_attack(server, name, size, address))
                latencies = await players.play(strikes, until=attack)
                outcome = await attack
                assert server.process.poll() is None, "the server died"
                assert server.http_get("/healthz")[0] == 200
                measured.append((p99(latencies), baseline))
                attacked.extend(latencies)
            result.rss_after_kib = rss_kib(server.process.pid)
            result.operations = len(acked) - before
            result.notes.append(outcome)  # the last round's
            result.notes.append(p99_note(measured, (p99(attacked), p99(unattacked))))
            result.seconds = time.monotonic() - started
            results.append(result)
    finally:
        for _, client in clients:
            await client.close()
        server.stop()
    lost = await audit(directory / "raid.db", acked)
    for result in results:
        result.lost = lost
    return results


if __name__ == "__main__":
    _main()
