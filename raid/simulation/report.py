"""Figures of a simulated raid, as plain JSON-ready data (``build_report``), and the headline
figures two runs are compared on (``headline``, ``compare``).

Rewards assume every player claims everything they are eligible for by the end of the run;
eligibility is decided by the rules' own ``raid.rewards.eligible_rewards``. Percentiles are
nearest-rank over all players (a player who never struck counts as 0); Gini is over all
players' damage. Times are hours since the raid started. Floats are rounded so the JSON is
short and byte-identical for identical runs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from raid.config import Action, Bundle, Rules
from raid.models import PlayerRaidState, RaidState, RaidStatus
from raid.rewards import eligible_rewards
from raid.simulation.engine import HOUR, SimulationResult

PERCENTILES = (10, 25, 50, 75, 90, 99)
REPORT_VERSION = 1


def _hours(seconds: float) -> float:
    return round(seconds / HOUR, 4)


def percentile(sorted_values: Sequence[int], pct: float) -> int:
    """Nearest-rank percentile of ascending values (0 for none)."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def gini(sorted_values: Sequence[int]) -> float:
    """Gini coefficient of ascending non-negative values (0: equal shares; ~1: one has all)."""
    n, total = len(sorted_values), sum(sorted_values)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum(i * v for i, v in enumerate(sorted_values, start=1))
    return round((2 * weighted) / (n * total) - (n + 1) / n, 4)


def distribution(values: Sequence[int]) -> dict[str, Any]:
    ordered = sorted(values)
    out: dict[str, Any] = {f"p{p}": percentile(ordered, p) for p in PERCENTILES}
    out["max"] = ordered[-1] if ordered else 0
    out["mean"] = round(sum(ordered) / len(ordered), 2) if ordered else 0.0
    out["gini"] = gini(ordered)
    return out


def _add(total: dict[str, int], bundle: Bundle, times: int = 1) -> None:
    if not times:
        return
    for currency, amount in bundle.items():
        total[currency] = total.get(currency, 0) + amount * times


def _kind(key: str) -> str:
    return key.split(":", 1)[0]


def _rewards(rules: Rules, result: SimulationResult) -> tuple[dict[str, Any], dict[str, float]]:
    """Rewards by kind and per player, and the share of players eligible for each key."""
    boss = result.boss
    state = RaidState(boss)
    by_kind: dict[str, dict[str, int]] = {}
    per_player: dict[str, list[int]] = {}
    reached: Counter[str] = Counter()
    cache: dict[tuple[int, int, int], dict[str, Bundle]] = {}
    players = len(result.user_ids)
    strikes_by_player: list[dict[str, int]] = [{} for _ in range(players)]
    # strike rewards: every strike of the player, by action
    fight_reward = rules.strike_rewards[Action.FIGHT]
    analyze_reward = rules.strike_rewards[Action.ANALYZE]
    analyze_count = result.analyze_counts
    for i in range(players):
        fights = result.strikes[i] - analyze_count[i]
        _add(strikes_by_player[i], fight_reward, fights)
        _add(strikes_by_player[i], analyze_reward, analyze_count[i])
        _add(by_kind.setdefault("strike", {}), fight_reward, fights)
        _add(by_kind.setdefault("strike", {}), analyze_reward, analyze_count[i])
    # claimable rewards: eligibility by the rules, computed once per distinct situation
    damage_steps = [m.threshold for m in rules.damage_milestones]
    analysis_steps = [m.threshold for m in rules.analysis_milestones]
    for i in range(players):
        damage, analysis, strikes = result.damage[i], result.analysis[i], result.strikes[i]
        situation = (
            sum(damage >= t for t in damage_steps),
            sum(analysis >= t for t in analysis_steps) * 2 + (analysis > 0),
            strikes > 0,
        )
        eligible = cache.get(situation)
        if eligible is None:
            player = PlayerRaidState(
                result.user_ids[i],
                boss.raid_id,
                personal_damage=damage,
                personal_analysis=analysis,
                strikes=strikes,
            )
            eligible = cache[situation] = eligible_rewards(rules, state, player)
        mine = strikes_by_player[i]
        for key, bundle in eligible.items():
            reached[key] += 1
            _add(by_kind.setdefault(_kind(key), {}), bundle)
            _add(mine, bundle)
    currencies = sorted({c for kind in by_kind.values() for c in kind})
    for currency in currencies:
        per_player[currency] = [mine.get(currency, 0) for mine in strikes_by_player]
    rewards = {
        "by_kind": {kind: dict(sorted(total.items())) for kind, total in sorted(by_kind.items())},
        "total": {c: sum(per_player[c]) for c in currencies},
        "per_player": {c: distribution(per_player[c]) for c in currencies},
    }
    keys = [f"damage:{t}" for t in damage_steps] + [f"analysis:{t}" for t in analysis_steps]
    keys += [f"breakthrough:{k}" for k in range(1, boss.analysis_breakthroughs + 1)]
    keys += ["victory"] if boss.status is RaidStatus.DEFEATED else []
    shares = {key: round(reached[key] / players, 4) for key in keys}
    return rewards, shares


def build_report(rules: Rules, result: SimulationResult) -> dict[str, Any]:
    """Every figure of one run (JSON-ready; deterministic for deterministic inputs)."""
    boss = result.boss
    settings = result.settings
    killed = result.killed_at
    struck = sum(1 for s in result.strikes if s)
    rewards, shares = _rewards(rules, result)
    return {
        "version": REPORT_VERSION,
        "inputs": {
            "boss": settings.boss_id,
            "boss_name": boss.name,
            "players": settings.players,
            "hours": settings.hours,
            "seed": settings.seed,
            "population": result.population.to_dict(),
        },
        "outcome": {
            "defeated": killed is not None,
            "time_to_kill_h": None if killed is None else _hours(killed),
            "final_blow_user": boss.final_blow_user,
            "total_hp": boss.total_hp,
            "hp_left": boss.current_hp,
            "hp_left_pct": round(100 * boss.current_hp / boss.total_hp, 3),
            "simulated_h": _hours(result.end_time),
            "raid_duration_h": _hours(boss.event_end - boss.event_start),
        },
        "strikes": {
            "total": boss.strike_count,
            "by_action": {"fight": result.fights, "analyze": result.analyzes},
            "players_who_struck": struck,
            "per_player": distribution(result.strikes),
        },
        "damage": {"total": sum(result.damage), **distribution(result.damage)},
        "analysis": {
            "total": boss.analysis_points,
            "per_player": distribution(result.analysis),
        },
        "hp_milestones": [{"pct": pct, "at_h": _hours(at)} for at, pct in result.hp_milestones],
        "breakthroughs": [
            {"index": b.index, "at_h": _hours(at), "strike": seq, "weakness": b.weakness}
            for at, seq, b in result.breakthroughs
        ],
        "curses": {
            "applied": sum(result.curses_applied.values()),
            "replaced": result.curses_replaced,
            "by_curse": result.curses_applied,
            "active_at_end": list(boss.active_curses),
            "timeline_truncated": len(result.retaliations) < sum(result.curses_applied.values()),
            "timeline": [
                {"at_h": _hours(at), "strike": seq, "curse": r.curse, "replaced": r.replaced}
                for at, seq, r in result.retaliations
            ],
        },
        "rewards": rewards,
        "milestone_shares": shares,
        "series": {
            "at_h": [_hours(s.at) for s in result.samples],
            "hp": [s.hp for s in result.samples],
            "analysis": [s.analysis for s in result.samples],
            "fights": [s.fights for s in result.samples],
            "analyzes": [s.analyzes for s in result.samples],
            "active_curses": [s.curses for s in result.samples],
            "curses_applied": [s.curses_applied for s in result.samples],
        },
    }


def headline(report: Mapping[str, Any]) -> list[tuple[str, float | int | str | None]]:
    """The figures the terminal table shows, in order: (label, value)."""
    outcome, strikes = report["outcome"], report["strikes"]
    damage, analysis, curses = report["damage"], report["analysis"], report["curses"]
    rows: list[tuple[str, float | int | str | None]] = [
        ("defeated", "yes" if outcome["defeated"] else "no"),
        ("time to kill (h)", outcome["time_to_kill_h"]),
        ("hp left", outcome["hp_left"]),
        ("hp left (%)", outcome["hp_left_pct"]),
        ("strikes", strikes["total"]),
        ("  fight", strikes["by_action"]["fight"]),
        ("  analyze", strikes["by_action"]["analyze"]),
        ("players who struck", strikes["players_who_struck"]),
        ("damage per player p50", damage["p50"]),
        ("damage per player p90", damage["p90"]),
        ("damage per player p99", damage["p99"]),
        ("damage per player max", damage["max"]),
        ("damage Gini", damage["gini"]),
        ("analysis points", analysis["total"]),
        ("breakthroughs", len(report["breakthroughs"])),
    ]
    for b in report["breakthroughs"]:
        rows.append((f"  breakthrough {b['index']} (h)", b["at_h"]))
    for m in report["hp_milestones"]:
        rows.append((f"  hp down to {m['pct']}% (h)", m["at_h"]))
    rows += [("curses applied", curses["applied"]), ("curses replaced", curses["replaced"])]
    for currency, amount in report["rewards"]["total"].items():
        rows.append((f"rewards: {currency}", amount))
    for key, share in report["milestone_shares"].items():
        rows.append((f"eligible: {key} (%)", round(100 * share, 2)))
    return rows


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Headline figures of two runs side by side, with b - a where both are numbers."""
    first, second = dict(headline(a)), dict(headline(b))
    labels = list(first) + [label for label in second if label not in first]
    rows = []
    for label in labels:
        x, y = first.get(label), second.get(label)
        numeric = isinstance(x, int | float) and isinstance(y, int | float)
        diff = round(y - x, 4) if numeric else None  # type: ignore[operator]
        rows.append({"figure": label, "a": x, "b": y, "difference": diff})
    return rows
