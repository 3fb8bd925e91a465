"""The load tester's pure parts: mix parsing, exact histogram merging, the audit checks."""

from __future__ import annotations

import argparse
import random
from array import array

import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from raidclient.backoff import Backoff
from raidclient.errors import OnCooldown, ServerError, error_from_reply
from raidclient.loadtest.audit import AuditInput, audit
from raidclient.loadtest.cli import default_workers, parse_mix
from raidclient.loadtest.plan import CheckSummary, LoadSummary, SubscriberResult
from raidclient.loadtest.progress import Display
from raidclient.loadtest.setup import Baseline, token_subject
from raidclient.loadtest.stats import Merged, Window, clamp_us, latency_ms, new_histogram
from tests.e2e.harness import token


def test_mix_is_a_spread_pattern() -> None:
    assert parse_mix("fight") == ("fight",)
    pattern = parse_mix("fight=3,analyze=1")
    assert sorted(pattern) == ["analyze", "fight", "fight", "fight"]
    assert parse_mix("fight=1,analyze=1") in (("fight", "analyze"), ("analyze", "fight"))
    assert parse_mix("fight=0,analyze=2") == ("analyze", "analyze")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("dance=1", "unknown action"),
        ("fight=1,fight=2", "twice"),
        ("fight=x", "not an integer"),
        ("fight=0", "no action"),
        ("fight=101", "0-100"),
    ],
)
def test_bad_mix_is_refused(text: str, problem: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=problem):
        parse_mix(text)


@settings(  # deterministic, and no timing: the machine is shared
    deadline=None,
    max_examples=50,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.lists(st.integers(1, 10_000_000), max_size=200), min_size=1, max_size=5))
def test_merged_windows_equal_one_histogram(per_worker: list[list[int]]) -> None:
    single = new_histogram()
    merged = Merged()
    for index, values in enumerate(per_worker):
        window = new_histogram()
        for value in values:
            window.record_value(value)
            single.record_value(value)
        merged.add(Window(index % 2, len(values), len(values), {}, window.encode()))
    assert merged.total.get_total_count() == single.get_total_count()
    assert latency_ms(merged.total) == latency_ms(single)
    assert merged.ok == sum(len(v) for v in per_worker)


def test_latency_is_clamped_and_reported_in_ms() -> None:
    assert clamp_us(-1.0) == 1
    assert clamp_us(0.0012) == 1200
    assert clamp_us(1e9) == 3_600_000_000
    histogram = HdrHistogram(1, 3_600_000_000, 3)
    for micros in (1000, 2000, 3000):
        histogram.record_value(micros)
    assert latency_ms(histogram)["p50"] == pytest.approx(2.0, rel=1e-3)
    assert latency_ms(new_histogram()) == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}


def test_backoff_grows_with_full_jitter_and_resets() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    caps = [min(1.0, 0.1 * 2**n) for n in range(10)]
    assert all(0 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    assert max(delays[5:]) > 0.2  # the cap grew
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_error_replies_map_to_classes() -> None:
    error = error_from_reply(
        {"op": "error", "code": "on_cooldown", "message": "wait", "retry_after": 1.5}
    )
    assert isinstance(error, OnCooldown)
    assert error.retry_after == 1.5
    unknown = error_from_reply({"op": "error", "code": "brand_new", "message": "?"})
    assert type(unknown) is ServerError
    assert unknown.code == "brand_new"


def test_token_subject() -> None:
    assert token_subject(token("zoe")) == "zoe"
    with pytest.raises(ValueError, match="not a token"):
        token_subject("!!!.x")


# --- the audit ------------------------------------------------------------------------


def _load(**fields: object) -> LoadSummary:
    summary = LoadSummary(worker_id=0, acked=2, sum_damage=30, strike_counts=array("q", [1, 2]))
    for name, value in fields.items():
        setattr(summary, name, value)
    return summary


def _subscriber(**fields: object) -> SubscriberResult:
    result = SubscriberResult(
        start_seq=100,
        last_seq=104,
        events=4,
        anomalies=0,
        first_anomaly="",
        counts={},
        digest="d",
        last_hp_strike_count=2,
    )
    for name, value in fields.items():
        setattr(result, name, value)
    return result


def _input(
    load: LoadSummary | None = None,
    after: Baseline | None = None,
    after_checks: Baseline | None = None,
    subscribers: list[SubscriberResult] | None = None,
    check: CheckSummary | None = None,
) -> AuditInput:
    before = Baseline(strike_count=0, current_hp=1000, total_hp=1000, analysis_points=0)
    after = after or Baseline(strike_count=2, current_hp=970, total_hp=1000, analysis_points=0)
    check = check or CheckSummary(worker_id=0, resent=2)
    check.subscribers = subscribers or [_subscriber(), _subscriber()]
    return AuditInput(
        before=before,
        after=after,
        after_checks=after_checks or after,
        loads=[load or _load()],
        checks=[check],
        subscribed=True,
    )


def _failed(data: AuditInput) -> set[str]:
    return {name for name, c in audit(data)["checks"].items() if not c["passed"]}


def test_an_honest_run_passes_every_check() -> None:
    result = audit(_input())
    assert result["passed"] is True
    assert result["checks"]["strike_rewards"]["skipped"] is True


def test_hp_not_applied_fails_hp_conserved() -> None:
    after = Baseline(strike_count=2, current_hp=1000, total_hp=1000, analysis_points=0)
    assert _failed(_input(after=after)) == {"hp_conserved"}


def test_strike_counts_repeated_or_missing_fail() -> None:
    assert _failed(_input(load=_load(strike_counts=array("q", [2, 2])))) == {"strike_count"}
    after = Baseline(strike_count=3, current_hp=970, total_hp=1000, analysis_points=0)
    saw_three = [_subscriber(last_hp_strike_count=3)]
    assert _failed(_input(after=after, subscribers=saw_three)) == {"strike_count"}


def test_resend_that_changes_the_raid_fails() -> None:
    changed = Baseline(strike_count=3, current_hp=960, total_hp=1000, analysis_points=0)
    assert _failed(_input(after_checks=changed)) == {"resend_idempotent"}
    mismatch = CheckSummary(worker_id=0, resent=2, resend_mismatches=["strike x: damage"])
    assert _failed(_input(check=mismatch)) == {"resend_idempotent"}


def test_event_checks() -> None:
    reordered = [_subscriber(anomalies=1, first_anomaly="after seq 3 came seq 5"), _subscriber()]
    assert _failed(_input(subscribers=reordered)) == {"events_contiguous"}
    split = [_subscriber(), _subscriber(digest="other")]
    assert _failed(_input(subscribers=split)) == {"events_complete"}
    behind = [_subscriber(last_hp_strike_count=1), _subscriber()]
    assert _failed(_input(subscribers=behind)) == {"events_complete"}
    missing = _load(retaliations=1)
    assert _failed(_input(load=missing)) == {"events_complete"}


def test_in_doubt_and_rewards_and_empty_runs() -> None:
    assert _failed(_input(load=_load(in_doubt=1))) == {"no_strike_in_doubt"}
    problems = CheckSummary(worker_id=0, resent=2, rewards_problems=["u: 1 missing"])
    assert _failed(_input(load=_load(rewarded=2), check=problems)) == {"strike_rewards"}
    nothing = Baseline(strike_count=0, current_hp=1000, total_hp=1000, analysis_points=0)
    empty = _load(acked=0, sum_damage=0, strike_counts=array("q"))
    assert "load_ran" in _failed(_input(load=empty, after=nothing))


def test_live_panel_shows_progress_rate_errors_and_percentiles() -> None:
    merged = Merged()
    histogram = new_histogram()
    for micros in (1000, 2000, 50_000):
        histogram.record_value(micros)
    merged.add(Window(0, 500, 500, {}, new_histogram().encode()))
    merged.add(Window(1, 3, 3, {"rate_limited": 2}, histogram.encode()))
    console = Console(width=100, record=True)
    console.print(Display("raid r1", 10, console, enabled=False).render(merged, 1.2))
    lines = console.export_text().splitlines()
    assert lines[0] == "raid r1"
    assert lines[2].split() == [
        "elapsed",
        "strikes",
        "strikes/s",
        "errors",
        "p50",
        "ms",
        "p99",
        "ms",
    ]
    assert lines[3].split() == ["1.2/10", "s", "503", "1,000", "2", "2.00", "50.02"]


def test_default_workers_leave_half_the_cores_to_the_server() -> None:
    assert [default_workers(n) for n in (0, 1, 2, 3, 8)] == [1, 1, 1, 1, 4]
