"""Prometheus metrics, in a registry of their own so tests and embedders stay isolated."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from raid.errors import ErrorCode
from server.requests import PARSERS

ACTOR_KINDS = ("raid", "player", "other")
SHED_LIMITS = (
    "max_in_flight",
    "max_in_flight_per_raid",
    "max_in_flight_per_connection",
    "max_connections_per_user",
    "connections_per_address",  # refused before the handshake (server/address_gate.py)
)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SNAPSHOT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Every metric of the server; one instance per server process (or test)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.strikes = Counter(
            "strikes", "Strikes answered, by outcome ('ok' or the error code)", ["code"], registry=r
        )
        self.strike_latency = Histogram(
            "strike_latency_seconds",
            "Time from a strike request to its reply",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.connections = Gauge("connections", "Open WebSocket connections", registry=r)
        self.events_sent = Counter(
            "events_sent", "Event frames queued to session outboxes", registry=r
        )
        self.events_coalesced = Counter(
            "events_coalesced", "hp events merged into a later hp event", registry=r
        )
        self.events_dropped = Counter(
            "events_dropped",
            "Frames not delivered because their session was closed or too slow",
            registry=r,
        )
        self.journal_batch_size = Histogram(
            "journal_batch_size",
            "Journal entries per group commit",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.journal_commit = Histogram(
            "journal_commit_seconds",
            "Duration of one journal group commit",
            buckets=_COMMIT_BUCKETS,
            registry=r,
        )
        self.snapshot = Histogram(
            "snapshot_seconds", "Duration of one snapshot", buckets=_SNAPSHOT_BUCKETS, registry=r
        )
        self.live_actors = Gauge("live_actors", "Running actors, by kind", ["kind"], registry=r)
        self.requests = Counter("requests", "Well-formed requests, by op", ["op"], registry=r)
        self.requests_shed = Counter(
            "requests_shed", "Requests refused to shed load, by limit", ["limit"], registry=r
        )
        for limit in SHED_LIMITS:
            self.requests_shed.labels(limit=limit)
        # Pre-create the known label values so dashboards see zeros instead of gaps, and keep
        # the children: ``labels()`` takes a lock and builds a key (3 % of a strike's CPU).
        self._strikes_by_code = {
            code: self.strikes.labels(code=code) for code in ("ok", *(c.value for c in ErrorCode))
        }
        for kind in ACTOR_KINDS:
            self.live_actors.labels(kind=kind)
        self._requests_by_op = {op: self.requests.labels(op=op) for op in PARSERS}

    # -- actors.api.Telemetry ---------------------------------------------------------------

    def actors_live(self, kind: str, count: int) -> None:
        self.live_actors.labels(kind=kind).set(count)

    def count_coalesced(self, count: int) -> None:
        self.events_coalesced.inc(count)

    def journal_batch(self, size: int, seconds: float) -> None:
        self.journal_batch_size.observe(size)
        self.journal_commit.observe(seconds)

    def snapshot_took(self, seconds: float) -> None:
        self.snapshot.observe(seconds)

    # -- the gateway ----------------------------------------------------------------------

    def count_request(self, op: str) -> None:
        child = self._requests_by_op.get(op)
        (child if child is not None else self.requests.labels(op=op)).inc()

    def count_shed(self, limit: str) -> None:
        """A request refused by an overload limit (server/admission.py, connection_limits)."""
        self.requests_shed.labels(limit=limit).inc()

    def count_strike(self, code: str, seconds: float) -> None:
        child = self._strikes_by_code.get(code)
        (child if child is not None else self.strikes.labels(code=code)).inc()
        self.strike_latency.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition: (body, content type).

        Version 0.0.4 of the text format is what every Prometheus release scrapes, and it
        is also what prometheus-client itself serves when the scraper states no preference.
        """
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
