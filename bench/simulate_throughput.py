"""Simulated strikes per second of ``raid-server simulate`` on one core, for each engine.

    python -m bench.simulate_throughput [--players 20000] [--hours 72] [--repeat 5]
                                        [--python-repeat 3] [--baseline-repeat 1]
                                        [--scenario shipped|long|both] [--profile]

Scenarios (both use the shipped config and its boss, ``leviathan``, with the default
population of docs/simulator.md):

- ``shipped``: the config as shipped (characters rest for the whole raid, so each player
  strikes about 4 times): per-player work (sessions, sorting a roster) weighs in.
- ``long``: ``character_rest = 3600`` s and a boss with 10^12 hp, so players keep striking
  for the whole 72 hours: the cost of a strike itself.

Each scenario draws its players once (timed apart, "drawing the players"), then plays the
whole raid with ``RaidSimulation.run_until`` in 100 steps, as the CLI does, with each engine
in the same run: the compiled loop (the default), the Python loop (``--engine python``, its
reference) and, as the baseline, ``exact_rules=True``: every strike through
``decide_strike``/``apply_strike`` as the server's RaidActor calls them. Every run must end
in the same raid (strikes, hp, analysis, per-player damage), or the bench fails.
strikes/s is strikes divided by the play's ``time.process_time`` (CPU time of this process,
less sensitive to a shared machine than the wall clock, which is printed too); figures are
medians of the repeats.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import statistics
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from types import MappingProxyType

from bench.rules_throughput import cpu_name
from raid.config import Config, load_config
from raid.simulation.engine import Engine, RaidSimulation, SimulationSettings
from raid.simulation.population import PlayerFactory, SyntheticPlayer, default_population

TARGET = 200_000
"""Simulated strikes per second on one core."""


def scenario_config(name: str) -> Config:
    config = load_config(None)
    if name == "shipped":
        return config
    rules = replace(
        config.rules, player=replace(config.rules.player, character_rest_s=Fraction(3600))
    )
    boss = replace(config.bosses["leviathan"], total_hp=10**12)
    return replace(config, rules=rules, bosses=MappingProxyType({"leviathan": boss}))


@dataclass(frozen=True)
class Played:
    outcome: tuple[int, int, int, tuple[int, ...]]
    """(strikes, hp left, analysis, per-player damage): equal for every engine."""
    cpu: float
    wall: float

    @property
    def strikes(self) -> int:
        return self.outcome[0]


def draw_players(config: Config, players: int) -> tuple[list[SyntheticPlayer], float]:
    """The players of a run, and the CPU seconds drawing them took."""
    began = time.process_time()
    factory = PlayerFactory(default_population(config.rules), config.rules, 1)
    drawn = [factory.player(i) for i in range(players)]
    return drawn, time.process_time() - began


def play(
    config: Config,
    drawn: list[SyntheticPlayer],
    hours: float,
    engine: Engine,
    exact: bool = False,
    steps: int = 100,
) -> Played:
    """One whole run with these players: its outcome, play CPU and wall seconds."""
    settings = SimulationSettings(
        "leviathan", len(drawn), hours, seed=1, exact_rules=exact, engine=engine
    )
    population = default_population(config.rules)
    sim = RaidSimulation(config.rules, config.bosses, population, settings, players=drawn)
    began, wall = time.process_time(), time.perf_counter()
    for step in range(1, steps + 1):
        sim.run_until(sim.end_time * step / steps)
    played, wall = time.process_time() - began, time.perf_counter() - wall
    result = sim.result()
    boss = result.boss
    outcome = (boss.strike_count, boss.current_hp, boss.analysis_points, tuple(result.damage))
    return Played(outcome, played, wall)


def median_run(
    runs: int,
    config: Config,
    drawn: list[SyntheticPlayer],
    hours: float,
    engine: Engine,
    exact: bool = False,
) -> Played:
    results = [play(config, drawn, hours, engine, exact) for _ in range(runs)]
    assert all(r.outcome == results[0].outcome for r in results), "runs must be identical"
    return Played(
        results[0].outcome,
        statistics.median(r.cpu for r in results),
        statistics.median(r.wall for r in results),
    )


def line(label: str, run: Played, note: str) -> str:
    rate = run.strikes / run.cpu
    return (
        f"  {label:<16} {rate:>10,.0f} strikes/s CPU  ({1e6 / rate:5.2f} us/strike; "
        f"wall {run.strikes / run.wall:,.0f}/s; CPU {run.cpu:.2f} s){note}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--players", type=int, default=20_000)
    parser.add_argument("--long-players", type=int, default=2_000)
    parser.add_argument("--hours", type=float, default=72)
    parser.add_argument("--repeat", type=int, default=5, help="runs of the compiled loop")
    parser.add_argument("--python-repeat", type=int, default=3, help="0: no Python loop")
    parser.add_argument("--baseline-repeat", type=int, default=1, help="0: no exact baseline")
    parser.add_argument("--scenario", choices=("shipped", "long", "both"), default="both")
    parser.add_argument("--profile", action="store_true", help="cProfile one compiled run")
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()} on {cpu_name()}")
    names = ["shipped", "long"] if args.scenario == "both" else [args.scenario]
    for name in names:
        config = scenario_config(name)
        players = args.players if name == "shipped" else args.long_players
        drawn, setup = draw_players(config, players)
        fast = median_run(args.repeat, config, drawn, args.hours, Engine.COMPILED)
        rate = fast.strikes / fast.cpu
        print(
            f"{name}: {players:,} players, {args.hours:g} h, {fast.strikes:,} strikes; "
            f"medians of {args.repeat} / {args.python_repeat} / {args.baseline_repeat} runs; "
            f"drawing the players {setup:.2f} s ({1e6 * setup / players:.0f} us/player)"
        )
        print(line("compiled loop", fast, ""))
        if args.python_repeat > 0:
            slow = median_run(args.python_repeat, config, drawn, args.hours, Engine.PYTHON)
            assert slow.outcome == fast.outcome, "the Python loop must play the same raid"
            ratio = rate / (slow.strikes / slow.cpu)
            print(line("python loop", slow, f"; compiled is {ratio:.1f}x"))
        if args.baseline_repeat > 0:
            base = median_run(
                args.baseline_repeat, config, drawn, args.hours, Engine.PYTHON, exact=True
            )
            assert base.outcome == fast.outcome, "the exact rules must play the same raid"
            ratio = rate / (base.strikes / base.cpu)
            print(line("baseline exact", base, f"; compiled is {ratio:.1f}x"))
        print(f"  target {TARGET:,}/s: {'met' if rate >= TARGET else 'MISSED'}")
        if args.profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            play(config, drawn, args.hours, Engine.COMPILED)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
            print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
