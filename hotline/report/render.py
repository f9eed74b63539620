"""The report as a chart (PNG, drawn by matplotlib) and as a self-contained HTML page.

matplotlib is an optional extra (``hotline[charts]``): it is imported only when a chart is
drawn, so the service and the JSON report run without it.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hotline.report.compute import Figures, Report, iso

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CHARTS_EXTRA = "pip install 'hotline[charts]'"

#: A matplotlib colour as the colour map gives it: red, green, blue, alpha.
Colour = tuple[float, float, float, float]


class ChartsUnavailable(RuntimeError):
    """matplotlib (the ``charts`` extra) is not installed: no PNG, no HTML page."""


def require_charts() -> None:
    """Raise :class:`ChartsUnavailable` when charts cannot be drawn (checked before any work,
    so that ``ivr report --out`` fails at once, not after reading the stream)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ChartsUnavailable(
            f"charts need matplotlib, which is not installed: {CHARTS_EXTRA}"
        ) from None


def render_png(report: Report) -> bytes:
    """Four panels sharing the time axis: offered, service level (with targets), ASA,
    abandonment rate; one colour per queue that had calls. Needs matplotlib (the ``charts``
    extra): :class:`ChartsUnavailable` without it."""
    require_charts()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    queues = report.active_queues()
    fig, axes = plt.subplots(4, 1, figsize=(11, 10), sharex=True, constrained_layout=True)
    minutes = report.interval_s / 60
    fig.suptitle(
        f"Hotline queues, {_span(report.start, report.end)} UTC: "
        f"{minutes:g}-minute intervals, calls by the time they entered the queue",
        fontsize=12,
    )
    offered_ax, sl_ax, asa_ax, ab_ax = axes
    colours = plt.get_cmap("tab10")
    width_days = report.interval_s / 86400 * 0.8 / max(1, len(queues))
    for n, queue in enumerate(queues):
        colour = colours(n % 10)
        rows = report.intervals[queue]
        mids = [datetime.fromtimestamp(r.start + report.interval_s / 2, UTC) for r in rows]
        offset = (n - (len(queues) - 1) / 2) * width_days
        # The type: ignores of matplotlib.dates calls: that module has no type hints.
        positions = [mdates.date2num(m) + offset for m in mids]  # type: ignore[no-untyped-call]
        offered_ax.bar(positions, [r.offered for r in rows],
                       width=width_days, color=colour, label=queue)
        _line(sl_ax, mids, [_pct(r.service_level) for r in rows], colour, queue)
        target = report.targets.get(queue)
        if target is not None:
            sl_ax.axhline(target.target * 100, color=colour, linestyle="--", linewidth=1,
                          alpha=0.7)
        _line(asa_ax, mids, [r.asa_s for r in rows], colour, queue)
        _line(ab_ax, mids, [_pct(r.abandon_rate) for r in rows], colour, queue)
    offered_ax.set_ylabel("calls offered")
    offered_ax.yaxis.get_major_locator().set_params(integer=True)
    sl_ax.set_ylabel("service level %\n(dashed: target)")
    sl_ax.set_ylim(-5, 105)
    asa_ax.set_ylabel("avg speed of\nanswer (s)")
    asa_ax.set_ylim(bottom=0)
    ab_ax.set_ylabel("abandoned %")
    ab_ax.set_ylim(-5, 105)
    ab_ax.set_xlabel("UTC")
    ab_ax.set_xlim(datetime.fromtimestamp(report.start, UTC),
                   datetime.fromtimestamp(report.end, UTC))
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ab_ax.xaxis.set_major_locator(locator)
    ab_ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    )
    for ax in axes:
        ax.grid(True, alpha=0.3)
    if queues:
        offered_ax.legend(loc="upper left", ncols=min(len(queues), 6), fontsize=9)
    else:
        offered_ax.text(0.5, 0.5, "no calls in this period", transform=offered_ax.transAxes,
                        ha="center", va="center", fontsize=14, color="grey")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _span(start: float, end: float) -> str:
    a, b = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    return f"{a:%Y-%m-%d %H:%M} to {b:%H:%M}" if a.date() == b.date() else (
        f"{a:%Y-%m-%d %H:%M} to {b:%Y-%m-%d %H:%M}")


def _line(ax: Axes, x: Sequence[datetime], y: Sequence[float | None], colour: Colour,
          label: str) -> None:
    # None leaves a gap: an interval without calls has no service level, not 0 %.
    # (matplotlib converts datetimes through its units; its type hints list arrays only.)
    ax.plot(x, [math.nan if v is None else v for v in y],  # type: ignore[arg-type]
            marker="o", markersize=4, color=colour, label=label)


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100


def render_html(report: Report, png: bytes | None = None) -> str:
    """A self-contained page: the chart (embedded PNG) and the figures as tables."""
    png = render_png(report) if png is None else png
    head = ("<tr><th>queue</th><th>interval (UTC)</th><th>offered</th><th>answered</th>"
            "<th>within target</th><th>service level</th><th>ASA (s)</th><th>abandoned</th>"
            "<th>short abandons</th><th>overflowed</th><th>abandonment</th></tr>")

    def row(name: str, label: str, f: Figures) -> str:
        s = f.stats
        cells = [name, label, f.offered, s.answered, s.answered_within,
                 _fmt_pct(f.service_level), "" if f.asa_s is None else f"{f.asa_s:.1f}",
                 s.abandoned, s.abandoned_short, s.overflowed, _fmt_pct(f.abandon_rate)]
        return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"

    totals = "".join(
        row(q, "total", t) for q, t in report.totals.items()
    )
    detail = "".join(
        row(q, iso(r.start), r)
        for q in report.active_queues() for r in report.intervals[q] if r.offered
    )
    targets = "".join(
        f"<li>{html.escape(q)}: {t.target * 100:g}% within {t.threshold_s:g} s, abandons "
        f"under {t.short_abandon_s:g} s not counted</li>"
        for q, t in report.targets.items()
    )
    title = f"Hotline queue report {iso(report.start)} to {iso(report.end)}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child,td:nth-child(2){{text-align:left}}</style></head><body>
<h1>{html.escape(title)}</h1>
<img alt="service level, speed of answer and abandonment per interval"
 src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Totals</h2><table>{head}{totals}</table>
<p>Callers who hung up before reaching a queue: {report.abandoned_before_queue}</p>
<h2>Targets</h2><ul>{targets}</ul>
<h2>Per interval</h2><table>{head}{detail}</table>
<p>Calls count in the interval in which they entered the queue. Service level = answered
within target / (answered + abandoned + overflowed); abandonment = abandoned / (offered -
short abandons).</p>
</body></html>
"""


def _fmt_pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"
