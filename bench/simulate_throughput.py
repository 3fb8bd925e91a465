"""Simulated strikes per second of ``raid-server simulate`` on one core.

    python -m bench.simulate_throughput [--players 20000] [--hours 72] [--repeat 3]
                                        [--scenario shipped|long|both] [--profile]

Scenarios (both use the shipped config and its boss, ``leviathan``, with the default
population of docs/simulator.md):

- ``shipped``: the config as shipped (characters rest for the whole raid, so each player
  strikes about 5 times): per-player work (sessions, sorting a roster) weighs in.
- ``long``: ``character_rest = 3600`` s and a boss with 10^12 hp, so players keep striking
  for the whole 72 hours: the cost of a strike itself.

Each timed run draws the players (reported apart, "setup"), then plays the whole raid with
``RaidSimulation.run_until`` in 100 steps, as the CLI does; strikes/s is strikes divided by
the time of the play. The same-run baseline plays the same raid with ``exact_rules=True``:
every strike through ``decide_strike``/``apply_strike`` as the server's RaidActor calls them
(results are identical; the tests prove it). Figures are medians of ``--repeat`` runs of
``time.process_time`` (CPU time of this process, less sensitive to a shared machine than the
wall clock, which is printed too).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import statistics
import time
from dataclasses import replace
from fractions import Fraction
from types import MappingProxyType

from bench.rules_throughput import cpu_name
from raid.config import Config, load_config
from raid.simulation.engine import RaidSimulation, SimulationSettings
from raid.simulation.population import default_population

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


def play(
    config: Config, players: int, hours: float, exact: bool, steps: int = 100
) -> tuple[int, float, float, float]:
    """(strikes, setup CPU s, play CPU s, play wall s) of one whole run."""
    settings = SimulationSettings("leviathan", players, hours, seed=1, exact_rules=exact)
    began = time.process_time()
    sim = RaidSimulation(config.rules, config.bosses, default_population(config.rules), settings)
    setup = time.process_time() - began
    began, wall = time.process_time(), time.perf_counter()
    for step in range(1, steps + 1):
        sim.run_until(sim.end_time * step / steps)
    played, wall = time.process_time() - began, time.perf_counter() - wall
    return sim.state.boss.strike_count, setup, played, wall


def median_rate(
    runs: int, config: Config, players: int, hours: float, exact: bool
) -> tuple[int, float, float, float]:
    results = [play(config, players, hours, exact) for _ in range(runs)]
    strikes = results[0][0]
    assert all(r[0] == strikes for r in results), "runs must be identical"
    return (
        strikes,
        statistics.median(r[1] for r in results),
        statistics.median(r[2] for r in results),
        statistics.median(r[3] for r in results),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--players", type=int, default=20_000)
    parser.add_argument("--long-players", type=int, default=2_000)
    parser.add_argument("--hours", type=float, default=72)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-repeat", type=int, default=1, help="0: no baseline")
    parser.add_argument("--scenario", choices=("shipped", "long", "both"), default="both")
    parser.add_argument("--profile", action="store_true", help="cProfile one lean run")
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()} on {cpu_name()}")
    names = ["shipped", "long"] if args.scenario == "both" else [args.scenario]
    for name in names:
        config = scenario_config(name)
        players = args.players if name == "shipped" else args.long_players
        strikes, setup, played, wall = median_rate(
            args.repeat, config, players, args.hours, exact=False
        )
        rate = strikes / played
        print(
            f"{name}: {players:,} players, {args.hours:g} h, {strikes:,} strikes; "
            f"median of {args.repeat} runs"
        )
        print(
            f"  simulator        {rate:>10,.0f} strikes/s CPU  ({1e6 / rate:5.2f} us/strike; "
            f"wall {strikes / wall:,.0f}/s); drawing the players {setup:.2f} s "
            f"({1e6 * setup / players:.0f} us/player)"
        )
        if args.baseline_repeat > 0:
            base_strikes, _, base_played, _ = median_rate(
                args.baseline_repeat, config, players, args.hours, exact=True
            )
            assert base_strikes == strikes, "the exact rules must make the same strikes"
            base = strikes / base_played
            print(
                f"  baseline exact   {base:>10,.0f} strikes/s CPU  ({1e6 / base:5.2f} us/strike;"
                f" decide_strike + apply_strike, same run); ratio {rate / base:.1f}x"
            )
        print(f"  target {TARGET:,}/s: {'met' if rate >= TARGET else 'MISSED'}")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            play(config, players, args.hours, exact=False)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
            print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
