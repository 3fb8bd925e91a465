from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import Metrics


def test_render_exposes_every_metric_in_prometheus_text() -> None:
    metrics = Metrics()
    metrics.strikes.labels(code="ok").inc()
    metrics.strikes.labels(code="on_cooldown").inc(2)
    metrics.strike_latency.observe(0.02)
    metrics.connections.inc()
    metrics.events_sent.inc(3)
    metrics.events_coalesced.inc()
    metrics.events_dropped.inc()
    metrics.journal_batch_size.observe(8)
    metrics.journal_commit.observe(0.004)
    metrics.snapshot.observe(0.1)
    metrics.live_actors.labels(kind="raid").set(2)
    metrics.requests.labels(op="strike").inc()

    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    for name in (
        "strikes",
        "strike_latency_seconds",
        "connections",
        "events_sent",
        "events_coalesced",
        "events_dropped",
        "journal_batch_size",
        "journal_commit_seconds",
        "snapshot_seconds",
        "live_actors",
        "requests",
    ):
        assert name in families, name
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    assert samples[("strikes_total", (("code", "on_cooldown"),))] == 2
    assert samples[("strikes_total", (("code", "internal"),))] == 0  # pre-created
    assert samples[("live_actors", (("kind", "raid"),))] == 2
    assert samples[("live_actors", (("kind", "player"),))] == 0
    assert samples[("events_sent_total", ())] == 3
    assert samples[("requests_total", (("op", "strike"),))] == 1


def test_each_instance_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.connections.inc()
    assert b"connections 1.0" in first.render()[0]
    assert b"connections 0.0" in second.render()[0]
    assert REGISTRY.get_sample_value("connections") is None
