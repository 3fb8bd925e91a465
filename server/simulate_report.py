"""How a simulation report is shown: a rich table on the terminal, charts as PNG or as one
self-contained HTML page (the charts inlined as SVG, no external file or script).

matplotlib is used through ``Figure`` directly (no pyplot): no global state, no GUI backend;
it is imported only when a plot is written, so the other CLI commands start fast.
"""

from __future__ import annotations

import html
import io
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from raid.simulation.report import compare, headline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLOURS = ("#1f77b4", "#d62728")
"""Run a, run b."""


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _signed(value: float) -> str:
    return f"{value:+,}" if isinstance(value, int) else f"{value:+,.4g}"


def _title(report: Mapping[str, Any]) -> str:
    inputs = report["inputs"]
    return (
        f"{inputs['boss_name']} ({inputs['boss']}): {inputs['players']:,} players, "
        f"{inputs['hours']:g} h, seed {inputs['seed']}"
    )


def print_table(console: Console, reports: Sequence[Mapping[str, Any]]) -> None:
    """One run: figure | value. Two runs: figure | a | b | b - a."""
    if len(reports) == 1:
        table = Table(title=_title(reports[0]))
        table.add_column("figure")
        table.add_column("value", justify="right")
        for label, value in headline(reports[0]):
            table.add_row(label, _cell(value))
    else:
        a, b = reports
        table = Table(title=_title(a))
        table.add_column("figure")
        table.add_column(f"a: {a['inputs']['config']}", justify="right")
        table.add_column(f"b: {b['inputs']['config']}", justify="right")
        table.add_column("b - a", justify="right")
        for row in compare(a, b):
            diff = row["difference"]
            shown = "" if diff is None or diff == 0 else _signed(diff)
            table.add_row(row["figure"], _cell(row["a"]), _cell(row["b"]), shown)
    console.print(table)


def _label(report: Mapping[str, Any], index: int, count: int) -> str:
    return str(report["inputs"]["config"] if count > 1 else report["inputs"]["boss"])


def _hp(ax: Axes, reports: Sequence[Mapping[str, Any]]) -> None:
    for i, report in enumerate(reports):
        series, total = report["series"], report["outcome"]["total_hp"]
        ax.plot(
            series["at_h"],
            [100 * hp / total for hp in series["hp"]],
            color=COLOURS[i],
            label=_label(report, i, len(reports)),
        )
        for b in report["breakthroughs"]:
            ax.axvline(b["at_h"], color=COLOURS[i], linestyle=":", linewidth=0.8)
    ax.set_title("boss hp (%) — dotted: breakthroughs")
    ax.set_xlabel("hours")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper right", fontsize="small")


def _strikes(ax: Axes, reports: Sequence[Mapping[str, Any]]) -> None:
    for i, report in enumerate(reports):
        series = report["series"]
        at = series["at_h"]
        for name, style in (("fights", "-"), ("analyzes", "--")):
            counts = series[name]
            width = [b - a for a, b in itertools.pairwise(at)]
            rate = [
                (c1 - c0) / w if w else 0.0
                for c0, c1, w in zip(counts, counts[1:], width, strict=False)
            ]
            label = f"{name} ({'ab'[i]})" if len(reports) > 1 else name
            ax.plot(at[1:], rate, color=COLOURS[i], linestyle=style, label=label)
    ax.set_title("strikes per hour")
    ax.set_xlabel("hours")
    ax.legend(loc="upper right", fontsize="small")


def _curses(ax: Axes, reports: Sequence[Mapping[str, Any]]) -> None:
    for i, report in enumerate(reports):
        series = report["series"]
        ax.plot(
            series["at_h"],
            series["curses_applied"],
            color=COLOURS[i],
            label=_label(report, i, len(reports)),
        )
    ax.set_title("curses applied (cumulative)")
    ax.set_xlabel("hours")


def _analysis(ax: Axes, reports: Sequence[Mapping[str, Any]]) -> None:
    for i, report in enumerate(reports):
        series = report["series"]
        ax.plot(series["at_h"], series["analysis"], color=COLOURS[i])
    ax.set_title("analysis points")
    ax.set_xlabel("hours")


def _damage(ax: Axes, reports: Sequence[Mapping[str, Any]]) -> None:
    names = ["p10", "p25", "p50", "p75", "p90", "p99", "max"]
    width = 0.8 / len(reports)
    for i, report in enumerate(reports):
        values = [report["damage"][n] for n in names]
        ax.bar(
            [x + i * width for x in range(len(names))],
            values,
            width=width,
            color=COLOURS[i],
            label=f"Gini {report['damage']['gini']}",
        )
    ax.set_xticks([x + width * (len(reports) - 1) / 2 for x in range(len(names))], names)
    ax.set_title("damage per player")
    ax.legend(loc="upper left", fontsize="small")


def _milestones(ax: Axes, reports: Sequence[Mapping[str, Any]]) -> None:
    keys: list[str] = []
    for report in reports:
        keys += [k for k in report["milestone_shares"] if k not in keys]
    width = 0.8 / len(reports)
    for i, report in enumerate(reports):
        shares = report["milestone_shares"]
        ax.barh(
            [y + i * width for y in range(len(keys))],
            [100 * shares.get(k, 0) for k in keys],
            height=width,
            color=COLOURS[i],
        )
    ax.set_yticks([y + width * (len(reports) - 1) / 2 for y in range(len(keys))], keys)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_title("players eligible (%)")


def figure(reports: Sequence[Mapping[str, Any]]) -> Figure:
    from matplotlib.figure import Figure  # imported here: only plots pay for matplotlib

    fig = Figure(figsize=(14, 8.5), layout="constrained")
    axes = fig.subplots(2, 3)
    _hp(axes[0][0], reports)
    _analysis(axes[0][1], reports)
    _strikes(axes[0][2], reports)
    _curses(axes[1][0], reports)
    _damage(axes[1][1], reports)
    _milestones(axes[1][2], reports)
    title = _title(reports[0])
    if len(reports) > 1:
        title += f" — a: {reports[0]['inputs']['config']}, b: {reports[1]['inputs']['config']}"
    fig.suptitle(title)
    return fig


def write_plot(path: Path, reports: Sequence[Mapping[str, Any]]) -> None:
    """A PNG, or an HTML page with the charts inlined as SVG and the table of figures."""
    fig = figure(reports)
    metadata = {"Software": None} if path.suffix.lower() == ".png" else {"Date": None}
    if path.suffix.lower() == ".png":
        fig.savefig(path, format="png", dpi=100, metadata=metadata)
        return
    svg = io.StringIO()
    fig.savefig(svg, format="svg", metadata=metadata)
    path.write_text(_page(reports, svg.getvalue()), encoding="utf-8")


def _page(reports: Sequence[Mapping[str, Any]], svg: str) -> str:
    body = svg[svg.index("<svg") :]
    if len(reports) == 1:
        head = "<tr><th>figure</th><th>value</th></tr>"
        rows = "".join(
            f"<tr><td>{html.escape(label)}</td><td>{html.escape(_cell(value))}</td></tr>"
            for label, value in headline(reports[0])
        )
    else:
        head = "<tr><th>figure</th><th>a</th><th>b</th><th>b - a</th></tr>"
        rows = "".join(
            f"<tr><td>{html.escape(r['figure'])}</td><td>{html.escape(_cell(r['a']))}</td>"
            f"<td>{html.escape(_cell(r['b']))}</td><td>{html.escape(_cell(r['difference']))}</td></tr>"
            for r in compare(*reports)
        )
    title = html.escape(_title(reports[0]))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>body{{font-family:sans-serif;margin:1em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
        "td:nth-child(n+2){text-align:right}svg{max-width:100%;height:auto}</style></head>"
        f"<body><h1>{title}</h1>{body}<table>{head}{rows}</table></body></html>\n"
    )
