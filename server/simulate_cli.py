"""``raid-server simulate``: the balancing simulator's command line (the I/O edge of
``raid.simulation``): read the files, run with a progress bar, print the table, write the JSON
and the plot.

Bad input (an unknown boss, a population file with a bad key, hours <= 0, a plot file that is
neither .png nor .html) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

import orjson

from raid.config import Config, load_config
from raid.errors import ConfigError
from raid.simulation.engine import (
    SimulationError,
    SimulationInputError,
    SimulationSettings,
    simulate,
)
from raid.simulation.population import Population, default_population, parse_population
from raid.simulation.report import build_report, compare

PLOT_SUFFIXES = (".png", ".html")

HELP = "play a raid offline against synthetic players and report (no server, no database)"


EXAMPLE = "raid-server simulate --boss leviathan --players 20000 --hours 72 --plot out.png"


def add_simulate_arguments(sub: argparse.ArgumentParser) -> None:
    """The ``simulate`` subcommand's own options (the CLI adds the global ones)."""
    sub.add_argument("--boss", required=True, help="boss template id")
    sub.add_argument("--players", required=True, help="synthetic players")
    sub.add_argument("--hours", required=True, help="simulated hours from the raid's start")
    sub.add_argument("--seed", default="1", help="random seed (default 1)")
    sub.add_argument("--population", help="population TOML (default: docs/simulator.md)")
    sub.add_argument("--compare", metavar="OTHER.toml", help="a second config to compare with")
    sub.add_argument("--json", metavar="OUT.json", help="write every figure as JSON")
    sub.add_argument("--plot", metavar="OUT.png|OUT.html", help="write the charts")
    sub.add_argument(
        "--exact-rules",
        action="store_true",
        help="resolve every strike with decide_strike/apply_strike (slower; same results)",
    )


def _number(text: str, option: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise SimulationInputError(f"{option} must be {noun}, not {text!r}") from None


def _population(path: str | None, config: Config) -> Population:
    if path is None:
        return default_population(config.rules)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "(file)", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "(file)", f"cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "(syntax)", str(exc)) from None
    return parse_population(data, path, config.rules)


def _settings(args: argparse.Namespace) -> SimulationSettings:
    hours = _number(args.hours, "--hours", float)
    if not hours > 0:
        raise SimulationInputError(f"--hours must be above 0, not {args.hours}")
    return SimulationSettings(
        boss_id=args.boss,
        players=_number(args.players, "--players", int),
        hours=hours,
        seed=_number(args.seed, "--seed", int),
        exact_rules=args.exact_rules,
    )


def _run(
    config: Config, population: Population, settings: SimulationSettings, progress: Any
) -> dict[str, Any]:
    name = f"{config.source}: {settings.players:,} players"
    task = progress.add_task(name, total=1.0)

    def update(phase: str, done: float) -> None:
        progress.update(task, completed=done, description=f"{name}, {phase}")

    result = simulate(config.rules, config.bosses, population, settings, progress=update)
    report = build_report(config.rules, result)
    report["inputs"]["config"] = config.source
    return report


def run_simulate(args: argparse.Namespace, config: Config) -> int:
    """The ``simulate`` command: 0 on success, 2 (one line on stderr) for bad input."""
    try:
        return _simulate(args, config)
    except SimulationInputError as exc:
        print(f"raid-server: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"raid-server: internal error: {exc}", file=sys.stderr)
        return 1


def _simulate(args: argparse.Namespace, config: Config) -> int:
    # rich and the report module (matplotlib) load here: the other commands start fast
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from server.simulate_report import print_table, write_plot

    settings = _settings(args)
    if args.plot is not None and Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
        raise SimulationInputError(f"--plot must end in .png or .html, not {args.plot!r}")
    for option, out in (("--json", args.json), ("--plot", args.plot)):
        if out is not None and not Path(out).parent.is_dir():
            raise SimulationInputError(f"{option}: no directory {str(Path(out).parent)!r}")
    population = _population(args.population, config)
    configs = [config]
    if args.compare is not None:
        other = load_config(args.compare)
        if tuple(other.rules.stats) != tuple(config.rules.stats) or set(other.rules.tags) != set(
            config.rules.tags
        ):
            raise SimulationInputError(
                f"{args.compare}: --compare needs the same stats and tags as {config.source}"
            )
        configs.append(other)
    for each in configs:
        if settings.boss_id not in each.bosses:
            known = ", ".join(sorted(each.bosses)) or "none"
            raise SimulationInputError(
                f"{each.source}: unknown boss {settings.boss_id!r} (known: {known})"
            )
    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        reports = [_run(each, population, settings, progress) for each in configs]
    out = Console()
    print_table(out, reports)
    document: dict[str, Any] = reports[0]
    if len(reports) == 2:
        document = {"a": reports[0], "b": reports[1], "comparison": compare(*reports)}
    if args.json is not None:
        Path(args.json).write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    if args.plot is not None:
        write_plot(Path(args.plot), reports)
    return 0
