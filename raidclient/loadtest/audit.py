"""The audit: after the load stops, did the server keep its promises?

Pure functions over what the workers and two ``raid.hub`` reads observed, so each check
is easy to test and to explain. Every check yields ``{"passed", "detail"}``; a check
that does not apply to the run (no subscribers, no strike rewards configured) passes
with ``"skipped": true`` and says why.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

from raidclient.loadtest.plan import CheckSummary, LoadSummary
from raidclient.loadtest.setup import Baseline

CHECK_NAMES = (
    "load_ran",
    "hp_conserved",
    "strike_count",
    "analysis_conserved",
    "no_strike_in_doubt",
    "resend_idempotent",
    "events_contiguous",
    "events_complete",
    "strike_rewards",
)


@dataclass(frozen=True, slots=True)
class AuditInput:
    before: Baseline  # the raid just before the load
    after: Baseline  # the raid after the load, before the checks resent anything
    after_checks: Baseline  # the raid after the checks
    loads: list[LoadSummary]
    checks: list[CheckSummary]
    subscribed: bool


def _check(passed: bool, detail: str, **extra: Any) -> dict[str, Any]:
    return {"passed": passed, "detail": detail, **extra}


def _skipped(detail: str) -> dict[str, Any]:
    return _check(True, f"skipped: {detail}", skipped=True)


def _first(problems: list[str], limit: int = 3) -> str:
    shown = "; ".join(problems[:limit])
    more = len(problems) - limit
    return shown + (f" (and {more} more)" if more > 0 else "")


def audit(data: AuditInput) -> dict[str, Any]:
    """``{"passed": bool, "checks": {name: {"passed", "detail"}}}``."""
    before, after, loads = data.before, data.after, data.loads
    acked = sum(load.acked for load in loads)
    damage = sum(load.sum_damage for load in loads)
    analysis = sum(load.sum_analysis for load in loads)
    in_doubt = sum(load.in_doubt for load in loads)
    checks: dict[str, dict[str, Any]] = {}

    checks["load_ran"] = _check(acked > 0, f"{acked} strikes acknowledged")

    expected_hp = before.current_hp - damage
    checks["hp_conserved"] = _check(
        after.current_hp == expected_hp,
        f"hp {before.current_hp} - {damage} acknowledged damage = {expected_hp}; "
        f"the server says {after.current_hp}",
    )

    counts = [count for load in loads for count in load.strike_counts]
    numbers = collections.Counter(counts)
    repeated = [n for n, times in numbers.items() if times > 1]
    outside = [n for n in numbers if not before.strike_count < n <= after.strike_count]
    delta = after.strike_count - before.strike_count
    problems = []
    if delta != acked:
        problems.append(f"strike_count rose by {delta} for {acked} acknowledged strikes")
    if repeated:
        problems.append(f"{len(repeated)} strike numbers acknowledged twice, e.g. {repeated[0]}")
    if outside:
        problems.append(f"{len(outside)} strike numbers outside the run, e.g. {outside[0]}")
    checks["strike_count"] = _check(
        not problems,
        _first(problems)
        or f"strike_count {before.strike_count} -> {after.strike_count}: "
        f"{acked} distinct strike numbers, one per acknowledged strike",
    )

    expected_points = before.analysis_points + analysis
    checks["analysis_conserved"] = _check(
        after.analysis_points == expected_points,
        f"analysis {before.analysis_points} + {analysis} acknowledged = {expected_points}; "
        f"the server says {after.analysis_points}",
    )

    checks["no_strike_in_doubt"] = _check(
        in_doubt == 0,
        "every strike sent was answered"
        if in_doubt == 0
        else f"{in_doubt} strikes were never answered, even when sent again",
    )

    checks["resend_idempotent"] = _resend_check(data)
    contiguous, complete = _event_checks(data)
    checks["events_contiguous"] = contiguous
    checks["events_complete"] = complete
    checks["strike_rewards"] = _rewards_check(data)
    return {"passed": all(c["passed"] for c in checks.values()), "checks": checks}


def _resend_check(data: AuditInput) -> dict[str, Any]:
    resent = sum(c.resent for c in data.checks)
    problems = [m for c in data.checks for m in c.resend_mismatches]
    problems += [e for c in data.checks for e in c.errors if e.startswith("resend")]
    a, b = data.after, data.after_checks
    if (a.strike_count, a.current_hp, a.analysis_points) != (
        b.strike_count,
        b.current_hp,
        b.analysis_points,
    ):
        problems.append(
            f"resending changed the raid: strike_count {a.strike_count} -> {b.strike_count}, "
            f"hp {a.current_hp} -> {b.current_hp}, "
            f"analysis {a.analysis_points} -> {b.analysis_points}"
        )
    if resent == 0 and not problems:
        return _skipped("no acknowledged strike to resend")
    return _check(
        not problems,
        _first(problems) or f"{resent} acknowledged strikes resent: same reports, raid unchanged",
    )


def _event_checks(data: AuditInput) -> tuple[dict[str, Any], dict[str, Any]]:
    if not data.subscribed:
        reason = "run without --subscribe"
        return _skipped(reason), _skipped(reason)
    subscribers = [s for c in data.checks for s in c.subscribers]
    events = sum(s.events for s in subscribers)
    broken = [s for s in subscribers if s.anomalies]
    contiguous = _check(
        not broken,
        f"{len(subscribers)} subscribers, {events} events, seq contiguous for each"
        if not broken
        else f"{len(broken)} of {len(subscribers)} subscribers saw seq out of order "
        f"(first: {broken[0].first_anomaly})",
    )
    loads = data.loads
    expected = {
        "breakthrough": sum(load.breakthroughs for load in loads),
        "retaliation": sum(load.retaliations for load in loads),
        "victory": sum(load.victories for load in loads),
    }
    problems = []
    final = data.after.strike_count
    behind = [
        s
        for s in subscribers
        if final != data.before.strike_count
        and (s.last_hp_strike_count is None or s.last_hp_strike_count < final)
    ]
    if behind:
        problems.append(
            f"{len(behind)} subscribers never saw the hp event of strike {final} "
            f"(last seen: {behind[0].last_hp_strike_count})"
        )
    for kind, count in expected.items():
        wrong = [s for s in subscribers if s.counts.get(kind, 0) != count]
        if wrong:
            problems.append(
                f"{len(wrong)} subscribers saw {wrong[0].counts.get(kind, 0)} {kind} events "
                f"where the acknowledged reports have {count}"
            )
    by_start: dict[int, set[str]] = collections.defaultdict(set)
    for s in subscribers:
        by_start[s.start_seq].add(s.digest)
    split = [start for start, digests in by_start.items() if len(digests) > 1]
    if split:
        problems.append(f"subscribers that started at seq {split[0]} saw different non-hp events")
    complete = _check(
        not problems,
        _first(problems)
        or "every subscriber saw the same non-hp events: "
        + ", ".join(f"{n} {kind}" for kind, n in expected.items()),
    )
    return contiguous, complete


def _rewards_check(data: AuditInput) -> dict[str, Any]:
    rewarded = sum(load.rewarded for load in data.loads)
    if rewarded == 0:
        return _skipped("no acknowledged report carries a strike reward")
    checked = sum(c.rewards_checked for c in data.checks)
    problems = [p for c in data.checks for p in c.rewards_problems]
    problems += [e for c in data.checks for e in c.errors if e.startswith("rewards")]
    return _check(
        not problems,
        _first(problems)
        or f"{rewarded} strike rewards, exactly one per rewarded strike "
        f"({checked} players' reward feeds read)",
    )
