"""Latency statistics: HDR histograms recorded in workers, merged exactly in the parent.

Workers record microseconds into an ``HdrHistogram`` per time window and ship each window
encoded (``HdrHistogram.encode``: compressed counts, exact); the parent adds the windows
into one histogram per window across workers and one for the whole run. Percentiles of a
merged HDR histogram are exactly those of recording every value in one histogram.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: anything slower is clamped
SIGNIFICANT_FIGURES = 3
WINDOW_S = 0.5
"""Workers ship their counts and latencies every WINDOW_S seconds of the run."""


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def clamp_us(seconds: float) -> int:
    """A latency in whole microseconds within the histogram's range."""
    micros = int(seconds * 1_000_000)
    return LOWEST_US if micros < LOWEST_US else min(micros, HIGHEST_US)


def latency_ms(histogram: HdrHistogram) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds (0.0 everywhere for an empty histogram)."""
    if histogram.get_total_count() == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    return {
        "p50": histogram.get_value_at_percentile(50) / 1000,
        "p95": histogram.get_value_at_percentile(95) / 1000,
        "p99": histogram.get_value_at_percentile(99) / 1000,
        "max": histogram.get_max_value() / 1000,
    }


@dataclass(frozen=True, slots=True)
class Window:
    """What one worker measured in one window of the run (picklable)."""

    index: int  # window k covers [k * WINDOW_S, (k + 1) * WINDOW_S) of the run
    ok: int  # strikes acknowledged
    sent: int  # strikes sent
    errors: dict[str, int]  # error replies (and client-side failures) by code
    histogram: bytes  # HdrHistogram.encode() of the acknowledged strikes' latencies


@dataclass
class Merged:
    """Everything the workers shipped so far, merged."""

    total: HdrHistogram = field(default_factory=new_histogram)
    windows: dict[int, HdrHistogram] = field(default_factory=dict)
    ok_by_window: collections.Counter[int] = field(default_factory=collections.Counter)
    errors_by_window: collections.Counter[int] = field(default_factory=collections.Counter)
    ok: int = 0
    sent: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, window: Window) -> None:
        self.ok += window.ok
        self.sent += window.sent
        self.errors.update(window.errors)
        self.ok_by_window[window.index] += window.ok
        self.errors_by_window[window.index] += sum(window.errors.values())
        if window.ok:
            decoded = HdrHistogram.decode(window.histogram)
            self.total.add(decoded)
            current = self.windows.get(window.index)
            if current is None:
                self.windows[window.index] = decoded
            else:
                current.add(decoded)

    def timeline(self) -> list[dict[str, Any]]:
        """Per window: end time, strikes/s, errors/s and latency percentiles (ms)."""
        last = max([*self.ok_by_window, *self.errors_by_window], default=-1)
        rows = []
        for index in range(last + 1):
            histogram = self.windows.get(index)
            latency = latency_ms(histogram) if histogram is not None else None
            rows.append(
                {
                    "t": round((index + 1) * WINDOW_S, 3),
                    "strikes_per_s": self.ok_by_window[index] / WINDOW_S,
                    "errors_per_s": self.errors_by_window[index] / WINDOW_S,
                    "latency_ms": latency,
                }
            )
        return rows
