"""A small lying raid server: enough of the protocol for raid-loadtest, with chosen lies.

It is not a double of our server (the smoke test drives the real one): it exists to
prove that the audit catches a server that acknowledges strikes it does not apply, or
that numbers its events out of order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgpack
import websockets
from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed

from raidclient.loadtest.setup import token_subject

TOTAL_HP = 1_000_000
DAMAGE = 7


@dataclass
class FakeRaidServer:
    apply_damage: bool = True  # False: acknowledge strikes but leave hp alone
    reorder_seq: bool = False  # True: every few strikes, send two events out of order
    hp: int = TOTAL_HP
    strike_count: int = 0
    seq: int = 1000
    reports: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    subscribers: set[ServerConnection] = field(default_factory=set)
    server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/ws"

    async def start(self) -> None:
        self.server = await websockets.serve(self._handle, "127.0.0.1", 0, max_size=None)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        user = ""
        try:
            async for data in ws:
                msg = msgpack.unpackb(data)
                op, rid = msg["op"], msg["rid"]
                if op == "hello":
                    user = token_subject(msg["token"])
                fields = self._answer(ws, user, op, msg)
                new_strike = fields.pop("_new", False)
                await ws.send(msgpack.packb({"op": f"{op}.ok", "rid": rid, **fields}))
                if new_strike:
                    await self._publish()
        except ConnectionClosed:
            pass
        finally:
            self.subscribers.discard(ws)

    def _answer(self, ws: ServerConnection, user: str, op: str, msg: dict[str, Any]) -> Any:
        now = time.time()
        if op == "hello":
            return {"user_id": user, "role": "admin", "server_time": now, "raids": []}
        if op == "admin.raid.create":
            return {"raid_id": "fake"}
        if op == "admin.roster.grant":
            return {"character_ids": [c["character_id"] for c in msg["characters"]]}
        if op == "raid.hub":
            return {
                "raid": self._raid_view(),
                "me": {
                    "user_id": user,
                    "cooldown_until": 0.0,
                    "personal_damage": 0,
                    "personal_analysis": 0,
                    "strikes": 0,
                    "exhausted_characters": {},
                    "rewards_claimed": [],
                    "rank_damage": None,
                    "rank_analysis": None,
                },
                "leaderboard": {"damage": [], "analysis": []},
            }
        if op == "raid.subscribe":
            self.subscribers.add(ws)
            return {"seq": self.seq}
        if op == "rewards.list":
            return {"claimable": [], "claimed": []}
        if op == "strike":
            return self._strike(user, msg, now)
        return {}

    def _strike(self, user: str, msg: dict[str, Any], now: float) -> dict[str, Any]:
        key = (user, msg["strike_id"])
        if key in self.reports:
            return dict(self.reports[key])
        self.strike_count += 1
        if self.apply_damage:
            self.hp -= DAMAGE
        report = {
            "strike_id": msg["strike_id"],
            "action": msg["action"],
            "team": msg["team"],
            "base": 10.0,
            "multiplier": 1.0,
            "score": 70,
            "damage": DAMAGE,
            "analysis_points": 0,
            "boss_hp": self.hp,
            "analysis_total": 0,
            "strike_count": self.strike_count,
            "breakthroughs": [],
            "retaliations": [],
            "victory": False,
            "rewards": [],
            "cooldown_until": now,
            "exhausted": msg["team"],
            "exhausted_until": now,
        }
        self.reports[key] = report
        return {**report, "_new": True}

    async def _publish(self) -> None:
        frames = []
        for kind, fields in (
            ("announcement", {"text": f"strike {self.strike_count}"}),
            ("hp", {"current_hp": self.hp, "total_hp": TOTAL_HP, "strike_count": self.strike_count,
                    "analysis_points": 0}),
        ):  # fmt: skip
            self.seq += 1
            event = {"op": "event", "type": kind, "raid_id": "fake", "seq": self.seq, **fields}
            frames.append(msgpack.packb(event))
        if self.reorder_seq and self.strike_count % 5 == 0:
            frames.reverse()
        for ws in list(self.subscribers):
            for frame in frames:
                try:
                    await ws.send(frame)
                except ConnectionClosed:
                    self.subscribers.discard(ws)

    def _raid_view(self) -> dict[str, Any]:
        return {
            "raid_id": "fake",
            "boss_id": "fake",
            "name": "Fake",
            "total_hp": TOTAL_HP,
            "current_hp": self.hp,
            "dominant_stats": ["power"],
            "weaknesses": [],
            "resistances": [],
            "active_curses": [],
            "curse_limit": 3,
            "analysis_points": 0,
            "next_analysis_threshold": None,
            "event_start": 0.0,
            "event_end": 2e9,
            "strike_count": self.strike_count,
            "status": "active",
            "final_blow_user": None,
        }
