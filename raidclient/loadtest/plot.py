"""The PNG plot: latency and throughput over time, and the latency histogram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def write_plot(
    path: Path, title: str, timeline: list[dict[str, Any]], histogram: HdrHistogram
) -> None:
    """Two panels: p50/p99/max and strikes/s per window; the latency distribution."""
    figure = Figure(figsize=(11, 8), layout="constrained")
    FigureCanvasAgg(figure)
    over_time, distribution = figure.subplots(2, 1)
    figure.suptitle(title)

    rows = [row for row in timeline if row["latency_ms"] is not None]
    times = [row["t"] for row in rows]
    for key, style in (("p50", "-"), ("p99", "--"), ("max", ":")):
        over_time.plot(times, [row["latency_ms"][key] for row in rows], style, label=key)
    over_time.set_xlabel("time since start (s)")
    over_time.set_ylabel("latency (ms)")
    over_time.set_yscale("log")
    over_time.grid(True, which="both", alpha=0.3)
    throughput = over_time.twinx()
    throughput.plot(
        [row["t"] for row in timeline],
        [row["strikes_per_s"] for row in timeline],
        color="gray",
        alpha=0.6,
        label="strikes/s",
    )
    throughput.set_ylabel("strikes/s")
    throughput.set_ylim(bottom=0)
    lines, labels = over_time.get_legend_handles_labels()
    more_lines, more_labels = throughput.get_legend_handles_labels()
    over_time.legend(lines + more_lines, labels + more_labels, loc="upper left")

    values, counts = [], []
    for item in histogram.get_recorded_iterator():
        values.append(item.value_iterated_to / 1000)
        counts.append(item.count_at_value_iterated_to)
    if values:
        distribution.hist(values, bins=80, weights=counts, log=True)
        distribution.set_xscale("log")
    distribution.set_xlabel("latency (ms)")
    distribution.set_ylabel("strikes")
    distribution.grid(True, which="both", alpha=0.3)
    figure.savefig(path, dpi=100)
