"""What the parent hands each worker process, and what workers send back (all picklable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["closed", "open"]


@dataclass(frozen=True, slots=True)
class Player:
    """One synthetic player: who it is, how it logs in, which characters it may use."""

    index: int  # 0..clients-1, also in its strike ids
    user_id: str
    token: str
    characters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    worker_id: int
    url: str
    fmt: str  # "msgpack" or "json"
    raid_id: str
    run_id: str  # prefix of every strike id of this run
    players: tuple[Player, ...]
    mode: Mode
    rate_per_client: float | None  # strikes/s of each client in open loop
    actions: tuple[str, ...]  # the --mix as a repeating pattern, e.g. fight x3, analyze x1
    subscribe: bool
    echo: bool  # driving the echo server: no hello, no report bookkeeping
    sample_size: int  # acknowledged strikes kept per worker to resend in the audit
    drain_timeout_s: float  # how long to wait for replies after the load stops
    clients_total: int  # all clients of the run (open-loop phases spread over all)


@dataclass(slots=True)
class SubscriberResult:
    """What one subscribed connection saw."""

    start_seq: int  # seq of its raid.subscribe.ok
    last_seq: int | None
    events: int
    anomalies: int  # events whose seq was not the previous seq + 1
    first_anomaly: str
    counts: dict[str, int]  # non-hp events by type
    digest: str  # hash of every non-hp event frame, in arrival order
    last_hp_strike_count: int | None


@dataclass(slots=True)
class LoadSummary:
    """A worker's account of the load phase, for the audit."""

    worker_id: int
    acked: int = 0
    sum_damage: int = 0
    sum_analysis: int = 0
    breakthroughs: int = 0
    retaliations: int = 0
    victories: int = 0
    strike_counts: list[int] = field(default_factory=list)
    in_doubt: int = 0  # strikes with no answer even after resending
    last_reply_at: float = 0.0  # monotonic time of the last acknowledgement
    rewarded: int = 0  # acknowledged strikes whose report carries a strike reward


@dataclass(slots=True)
class CheckSummary:
    """A worker's post-load checks."""

    worker_id: int
    subscribers: list[SubscriberResult] = field(default_factory=list)
    resent: int = 0
    resend_mismatches: list[str] = field(default_factory=list)
    rewards_checked: int = 0  # players whose reward feed was read
    rewards_problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # checks that could not run


Message = tuple[Any, ...]
"""Worker -> parent: ("ready", wid) | ("fatal", wid, text) | ("window", wid, Window)
| ("loaded", wid, LoadSummary) | ("checked", wid, CheckSummary).
Parent -> worker: ("start", t0, t_end) | ("check", base_count, final_count) | ("stop",)."""
