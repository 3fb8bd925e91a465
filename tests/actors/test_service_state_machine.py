"""A hypothesis state machine drives RaidService through its public API (issue 9, "Stateful
property test"): strikes from several players (new and repeated strike_ids, characters not
granted yet), roster grants while the raid runs, claims, snapshots taken and abandoned (a
cancelled save, a capture never saved), server restarts, raid restarts, unloading a finished
raid, and time passing, against a simple model; the invariants are checked after every step.

Real actors and a real SQLite file; the service runs on its own event loop, each step runs
the loop until its call is answered. Small by default (``make test``, a few seconds); set
RAID_FUZZ_EXAMPLES (e.g. 5000, as ``make soak`` does) for a longer run with longer
sequences.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from actors.raid_actor import RaidActor
from actors.raids import CharacterGrant
from actors.service import RaidService
from actors.snapshotter import Capture, SnapshotData
from persistence.database import Database
from raid.config import Action, Config, load_config
from raid.errors import ErrorCode, RaidError
from server.metrics import Metrics
from tests.e2e.harness import TEST_CONFIG
from tests.timeouts import TIMEOUT

FUZZ = int(os.environ.get("RAID_FUZZ_EXAMPLES", "150"))
PLAYERS = ("p0", "p1", "p2", "p3")
CHARACTERS = 3  # granted at the start
GRANTABLE = 2  # granted later, one at a time, by the ``grant`` rule
START = 1_900_000_000.0
REST_S = 5  # a used character rests 5 s; time passes in the machine


@dataclass
class Model:
    """What the service must show: the raid's counters and each player's."""

    strike_count: int = 0
    hp: int = 1000
    analysis: int = 0
    damage: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PLAYERS, 0))
    strikes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PLAYERS, 0))
    reports: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    rested_until: dict[str, float] = field(default_factory=dict)  # character -> time
    claimed: dict[str, set[str]] = field(default_factory=lambda: {p: set() for p in PLAYERS})
    granted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PLAYERS, CHARACTERS))


class RaidServiceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="raid-sm-"))
        self.now = START
        self.loop = asyncio.new_event_loop()
        path = self.directory / "config.toml"
        path.write_text(
            TEST_CONFIG.replace('character_rest = "event"', f"character_rest = {REST_S}")
        )
        self.config: Config = load_config(path)
        self.model = Model()
        self.service, self.db = self.run(self._open())
        self.raid_id = self.run(self.service.create_raid("dummy", start=START - 1))
        self.power = 400  # of the weakest character; set by ``rosters``

    @initialize(power=st.sampled_from([400, 4000]))
    def rosters(self, power: int) -> None:
        """Weak characters (a long fight) or strong ones (the boss falls in a few strikes and
        the rest of the run plays on a finished raid: claims, unloading)."""
        self.power = power
        for user in PLAYERS:
            grants = [_character(user, i, power) for i in range(CHARACTERS)]
            self.run(self.service.grant_roster(user, grants))

    # -- plumbing -------------------------------------------------------------------------

    def clock(self) -> float:
        return self.now

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    async def _open(self) -> tuple[RaidService, Database]:
        db = await Database.open(self.directory / "raid.db")
        service = RaidService(self.config, db, Metrics(), clock=self.clock)
        await service.start()
        return service, db

    async def _close(self) -> None:
        await self.service.stop()
        await self.db.close()

    def teardown(self) -> None:
        try:
            self.run(self._close())
        finally:
            pykka.ActorRegistry.stop_all()
            self.loop.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- rules ----------------------------------------------------------------------------

    @rule(
        user=st.sampled_from(PLAYERS),
        members=st.sets(st.integers(0, CHARACTERS + GRANTABLE - 1), min_size=1, max_size=2),
        action=st.sampled_from(list(Action)),
        strike_id=st.sampled_from(["a", "b", "c", "d", "e", "f"]),
    )
    def strike(self, user: str, members: set[int], action: Action, strike_id: str) -> None:
        team = tuple(f"{user}-c{i}" for i in sorted(members))
        try:
            report = self.run(self.service.strike(user, self.raid_id, action, team, strike_id))
        except RaidError as error:
            self._check_refusal(user, team, strike_id, error)
            return
        known = self.model.reports.get((user, strike_id))
        if known is not None:
            assert report == known, "a repeated strike_id must return the original report"
            return
        assert self.model.hp > 0, "a strike was accepted after the boss fell"
        assert all(int(c.rsplit("-c", 1)[1]) < self.model.granted[user] for c in team)
        assert all(self.model.rested_until.get(c, 0) <= self.now for c in team)
        m = self.model
        assert report["strike_count"] == m.strike_count + 1
        assert report["boss_hp"] == m.hp - report["damage"] >= 0
        assert report["analysis_total"] == m.analysis + report["analysis_points"]
        assert report["victory"] == (report["boss_hp"] == 0)
        m.strike_count += 1
        m.hp = report["boss_hp"]
        m.analysis = report["analysis_total"]
        m.damage[user] += report["damage"]
        m.strikes[user] += 1
        m.reports[(user, strike_id)] = report
        for character in team:
            m.rested_until[character] = self.now + REST_S

    def _check_refusal(
        self, user: str, team: tuple[str, ...], strike_id: str, error: RaidError
    ) -> None:
        assert (user, strike_id) not in self.model.reports, error
        if error.code is ErrorCode.RAID_NOT_ACTIVE:
            assert self.model.hp == 0
        elif error.code is ErrorCode.CHARACTER_EXHAUSTED:
            tired = set(error.extra["character_ids"])
            assert tired and all(self.model.rested_until.get(c, 0) > self.now for c in tired)
        elif error.code is ErrorCode.INVALID_TEAM:
            pass  # a team_cap curse retaliated
        elif error.code is ErrorCode.CHARACTER_NOT_OWNED:
            assert any(int(c.rsplit("-c", 1)[1]) >= self.model.granted[user] for c in team)
        else:
            raise AssertionError(f"unexpected refusal {error!r}")

    @rule(
        user=st.sampled_from(PLAYERS),
        key=st.sampled_from(["breakthrough:1", "breakthrough:2", "victory", "strike:a"]),
    )
    def claim(self, user: str, key: str) -> None:
        try:
            self.run(self.service.rewards_claim(user, self.raid_id, key))
        except RaidError as error:
            if error.code is ErrorCode.ALREADY_CLAIMED:
                assert key in self.model.claimed[user] or (
                    key == "strike:a" and (user, "a") in self.model.reports
                )
            else:
                assert error.code is ErrorCode.NOT_ELIGIBLE, error
            return
        assert key not in self.model.claimed[user], f"{key} claimed twice"
        self.model.claimed[user].add(key)

    @rule()
    def snapshot(self) -> None:
        info = self.run(self.service.snapshot(self.raid_id))
        assert info.seq == self.model.strike_count

    @rule(steps=st.integers(0, 3))
    def abandoned_snapshot(self, steps: int) -> None:
        """A snapshot whose caller goes away mid-way (a client disconnecting)."""

        async def abandon() -> None:
            task = asyncio.ensure_future(self.service.snapshot(self.raid_id))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        self.run(abandon())

    @rule()
    def abandoned_capture(self) -> None:
        """A snapshot captured and never saved (the caller gave up between the two)."""

        async def capture() -> None:
            reply, future = self.service.bridge.reply()
            self.service.snapshotter.tell(Capture(self.raid_id, reply))
            assert isinstance(await future, SnapshotData)

        self.run(capture())

    @rule(user=st.sampled_from(PLAYERS))
    def grant(self, user: str) -> None:
        """A character granted while the raid runs: usable at the player's next strike."""
        index = self.model.granted[user]
        if index < CHARACTERS + GRANTABLE:
            self.run(self.service.grant_roster(user, [_character(user, index, self.power)]))
            self.model.granted[user] += 1

    @rule()
    def raid_restart(self) -> None:
        """The raid alone restarts from durable state (as after a crash of its actor)."""
        self.run(self.service.restart(self.raid_id, "state machine"))

    @rule(snapshot_first=st.booleans())
    def unload_if_finished(self, snapshot_first: bool) -> None:
        """Once the boss fell and its state is snapshotted, the raid is unloaded when idle;
        the next request restores it."""
        if snapshot_first:
            self.snapshot()
        now = time.monotonic()
        self.service.unload_idle(now + 10**6)  # notes the requests of the last step
        unloaded = self.service.unload_idle(now + 2 * 10**6)  # nothing sent since: idle
        if self.model.hp > 0:
            assert unloaded == [], "an active raid was unloaded"
        elif unloaded:
            event("unloaded the finished raid")

    @rule()
    def restart(self) -> None:
        self.run(self._close())
        self.service, self.db = self.run(self._open())

    @rule(seconds=st.sampled_from([0.5, 2.0, REST_S]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def service_agrees_with_the_model(self) -> None:
        for user in PLAYERS:
            hub = self.run(self.service.hub(user, self.raid_id))
            assert hub["raid"]["strike_count"] == self.model.strike_count
            assert hub["raid"]["current_hp"] == self.model.hp
            assert hub["raid"]["analysis_points"] == self.model.analysis
            assert hub["me"]["personal_damage"] == self.model.damage[user]
            assert hub["me"]["strikes"] == self.model.strikes[user]
        logs = self.run(self.db.get_raid_strike_logs_by_raid(self.raid_id))
        assert [log.seq for log in logs] == list(range(1, self.model.strike_count + 1))

    @invariant()
    def one_actor_for_the_raid(self) -> None:
        """Stopped incarnations go away; never two running at once for long."""

        async def settle() -> None:
            deadline = time.monotonic() + TIMEOUT
            while len(pykka.ActorRegistry.get_by_class(RaidActor)) > 1:
                assert time.monotonic() < deadline, "two RaidActors for one raid"
                await asyncio.sleep(0.005)

        self.run(settle())
        live = self.service.live.get(self.raid_id)
        if live is not None:
            assert pykka.ActorRegistry.get_by_class(RaidActor) == [live.ref]


def _character(user: str, index: int, power: int) -> CharacterGrant:
    return CharacterGrant(
        f"{user}-c{index}", f"C{index}", 3, {"power": power * (index + 1)}, ("fire",)
    )


RaidServiceMachine.TestCase.settings = settings(
    max_examples=max(10, FUZZ // 15),
    stateful_step_count=30 if FUZZ <= 150 else 80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_raid_service_state_machine = RaidServiceMachine.TestCase
