"""Live progress with rich: elapsed, strikes/s, errors and p50/p99 so far."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from raidclient.loadtest.stats import WINDOW_S, Merged, latency_ms


class Display:
    """Redraws a small panel each time the workers report (every WINDOW_S seconds)."""

    def __init__(self, title: str, duration: float, console: Console, enabled: bool) -> None:
        self.title = title  # what is being driven: the server or the echo server
        self.duration = duration  # planned load seconds, the bar's total
        self.console = console  # progress goes to stderr, results to stdout
        self._live: Live | None = (
            Live(console=console, refresh_per_second=4, transient=True) if enabled else None
        )

    def __enter__(self) -> Display:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()

    def status(self, text: str) -> None:
        if self._live is not None:
            self._live.update(f"[bold]{self.title}[/bold]: {text}")

    def update(self, merged: Merged, elapsed: float) -> None:
        if self._live is not None:
            self._live.update(self.render(merged, elapsed))

    def render(self, merged: Merged, elapsed: float) -> RenderableType:
        shown = min(max(elapsed, 0.0), self.duration)
        last = max(merged.ok_by_window, default=None)
        recent = merged.ok_by_window[last] / WINDOW_S if last is not None else 0.0
        latency = latency_ms(merged.total)
        grid = Table.grid(padding=(0, 2))
        for _ in range(6):
            grid.add_column(justify="right")
        grid.add_row("elapsed", "strikes", "strikes/s", "errors", "p50 ms", "p99 ms")
        grid.add_row(
            f"{shown:.1f}/{self.duration:g} s",
            f"{merged.ok:,}",
            f"{recent:,.0f}",
            f"{sum(merged.errors.values()):,}",
            f"{latency['p50']:.2f}",
            f"{latency['p99']:.2f}",
        )
        bar = ProgressBar(total=self.duration, completed=shown, width=60)
        return Group(f"[bold]{self.title}[/bold]", bar, grid)
