"""Pure strike-resolution throughput of the rules engine (no I/O, no actors, one core).

    python -m bench.rules_throughput [--players 10000] [--roster 20] [--strikes 100000]
                                     [--repeat 5] [--profile]

Setup: one raid with a practically unkillable boss and three active curses that touch scoring
(a stat_drain on a dominant stat, a tag_suppression and a fight fortify; with all of the boss's
curses active, retaliations draw nothing), 10,000 players with ~20-character rosters, 6-member
teams, strike cooldown 0 and a 1 s character rest, so that every strike is accepted. Players
strike round-robin, 2 s / players of game time apart, so each player's next team is rested.

Each strike is what the server's raid actor does: build the ``StrikeCommand``,
``decide_strike``, ``apply_strike`` with the raid's ``Leaderboards``, and rebuild the
``ScoringContext`` when ``changes_scoring``. Same-run baselines make the figures comparable on a
noisy machine: "build" only builds the commands, "decide" adds ``decide_strike`` (state left
unchanged). Every figure is the median of ``--repeat`` timed runs (time.perf_counter).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import random
import statistics
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from raid.codec import new_boss_state
from raid.config import Action, Rules, merge_documents, parse_config
from raid.leaderboard import Leaderboards
from raid.models import Character, RaidState
from raid.scoring import ScoringContext
from raid.strike import StrikeCommand, apply_strike, changes_scoring, decide_strike

TARGET = 50_000
"""Strikes per second the rules must sustain on one core."""

TEAM_SIZE = 6
ELEMENTS = ("fire", "water", "wind", "earth", "light", "shadow")
ROLES = ("vanguard", "striker", "mystic", "support", "ranger", "trickster")
STATS = ("power", "agility", "intellect", "spirit", "endurance", "charm")
REST_S = 1
"""character_rest: seconds; a player's next strike comes REST_S * 2 later (see ``step``)."""

BENCH_CONFIG: dict[str, Any] = {
    "player": {"max_team_size": TEAM_SIZE, "strike_cooldown_s": 0, "character_rest": REST_S},
    "curses": {
        "sapped_might": {
            "name": "Sapped Might",
            "kind": "stat_drain",
            "params": {"stat": "power", "factor": 0.8},
        },
        "tidal_ward": {
            "name": "Tidal Ward",
            "kind": "tag_suppression",
            "params": {"tag": "water", "factor": 0.75},
        },
        "iron_hide": {
            "name": "Iron Hide",
            "kind": "fortify",
            "params": {"action": "fight", "factor": 0.8},
        },
    },
    "bosses": {
        "titan": {
            "name": "Bench Titan",
            "total_hp": 10**15,  # never falls (at most raid.limits.MAX_POINTS)
            "duration_s": 10**9,
            "dominant_stats": ["power", "endurance"],
            "weaknesses": ["fire", "striker"],
            "resistances": ["water", "shadow"],
            "weakness_pool": ["wind", "light"],
            "curse_pool": ["sapped_might", "tidal_ward", "iron_hide"],
            "analysis_thresholds": [],
            "analysis_reward_pool": [],
            "victory_cache": {"gems": 1},
            "curse_limit": 3,
        }
    },
}


@dataclass
class World:
    rules: Rules
    state: RaidState
    boards: Leaderboards
    context: ScoringContext
    user_ids: list[str]
    rosters: list[dict[str, Character]]
    teams: list[list[tuple[str, ...]]]
    """teams[p][k]: player p's k-th team (cycling through the roster)."""
    now: float
    strikes: int = 0

    @property
    def step(self) -> float:
        """Game time between two strikes: a player strikes again 2 * REST_S later."""
        return 2 * REST_S / len(self.user_ids)


def build_world(players: int, roster_size: int, seed: int = 1) -> World:
    text = resources.files("raid").joinpath("default_config.toml").read_text(encoding="utf-8")
    config = parse_config(merge_documents(tomllib.loads(text), BENCH_CONFIG), "bench")
    rules = config.rules
    boss = new_boss_state(config.bosses["titan"], "bench", 0.0, 1e9, 0.0)
    boss.active_curses = boss.curse_pool  # all three active: retaliations draw nothing
    state = RaidState(boss)
    rng = random.Random(seed)
    user_ids = [f"user{p:05d}" for p in range(players)]
    rosters: list[dict[str, Character]] = []
    teams: list[list[tuple[str, ...]]] = []
    for user in user_ids:
        size = roster_size + rng.randint(-2, 2)
        roster = {}
        for j in range(size):
            cid = f"{user}-c{j:02d}"
            stats = {s: rng.randint(10, 500) for s in STATS}
            tags = frozenset({rng.choice(ELEMENTS), rng.choice(ROLES)})
            roster[cid] = Character(cid, cid, rng.randint(1, 5), stats, tags)
        ids = list(roster)
        cycle = [
            tuple(ids[(k * TEAM_SIZE + i) % size] for i in range(TEAM_SIZE))
            for k in range(size)  # size teams of 6 cover the roster 6 times
        ]
        rosters.append(roster)
        teams.append(cycle)
    world = World(
        rules=rules,
        state=state,
        boards=Leaderboards(),
        context=ScoringContext.build(rules, boss),
        user_ids=user_ids,
        rosters=rosters,
        teams=teams,
        now=1.0,
    )
    return world


ACTIONS = (Action.FIGHT, Action.FIGHT, Action.ANALYZE)


def command(world: World, n: int) -> StrikeCommand:
    """The n-th strike of the run: round-robin players, cycling teams, 2 fights : 1 analyze."""
    players = len(world.user_ids)
    p, k = n % players, n // players
    teams = world.teams[p]
    return StrikeCommand(
        world.user_ids[p], ACTIONS[n % 3], teams[k % len(teams)], f"s{n}", world.rosters[p]
    )


def run_build(world: World, count: int) -> None:
    start = world.strikes
    for n in range(start, start + count):
        command(world, n)


def run_decide(world: World, count: int) -> None:
    rules, state, ctx, rng = world.rules, world.state, world.context, random.Random(0)
    start, now = world.strikes, world.now + 2 * REST_S  # every team rested; state unchanged
    for n in range(start, start + count):
        decide_strike(rules, state, ctx, command(world, n), now, rng)


def run_full(world: World, count: int) -> None:
    rules, state, boards, rng = world.rules, world.state, world.boards, random.Random(0)
    ctx = world.context
    start, now, step = world.strikes, world.now, world.step
    for n in range(start, start + count):
        result = decide_strike(rules, state, ctx, command(world, n), now, rng)
        apply_strike(state, result, boards)
        if changes_scoring(result):
            ctx = ScoringContext.build(rules, state.boss)
        now += step
    world.context, world.strikes, world.now = ctx, start + count, now


def timed(fn: Callable[[World, int], None], world: World, count: int, repeat: int) -> list[float]:
    rates = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn(world, count)
        rates.append(count / (time.perf_counter() - began))
    return rates


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--roster", type=int, default=20)
    parser.add_argument("--strikes", type=int, default=100_000, help="strikes per timed run")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one full run")
    args = parser.parse_args(argv)

    setup_began = time.perf_counter()
    world = build_world(args.players, args.roster)
    run_full(world, args.players)  # warm-up: every player strikes once and is ranked
    setup_s = time.perf_counter() - setup_began
    print(f"python {platform.python_version()} on {cpu_name()}")
    print(
        f"{args.players} players, rosters ~{args.roster}, teams of {TEAM_SIZE}, "
        f"curses {list(world.state.boss.active_curses)}; setup {setup_s:.1f} s"
    )
    print(f"{args.strikes} strikes per run, median of {args.repeat} runs:")

    results: dict[str, float] = {}
    for name, fn in (("build", run_build), ("decide", run_decide), ("full", run_full)):
        rates = timed(fn, world, args.strikes, args.repeat)
        results[name] = statistics.median(rates)
        spread = f"{min(rates):,.0f}..{max(rates):,.0f}"
        print(
            f"  {name:<7} {results[name]:>10,.0f} /s  {1e6 / results[name]:7.2f} us/strike"
            f"  (runs {spread})"
        )
    full = results["full"]
    only_rules = 1e6 / full - 1e6 / results["build"]
    print(
        f"decide+apply+leaderboards: {full:,.0f} strikes/s = {1e6 / full:.2f} us/strike "
        f"({only_rules:.2f} us beyond building the command; "
        f"apply+boards {1e6 / full - 1e6 / results['decide']:.2f} us)"
    )
    boss = world.state.boss
    assert boss.strike_count == world.strikes, "every strike must have been accepted"
    print(f"strikes accepted: {boss.strike_count:,}; boss hp left {boss.current_hp:,}")
    print(f"target {TARGET:,}/s: {'met' if full >= TARGET else 'MISSED'}")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run_full(world, args.strikes)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
