"""The work-order KPIs per day as a chart (PNG, matplotlib: the ``charts`` extra)."""

from __future__ import annotations

import io
import math
from datetime import date
from typing import TYPE_CHECKING

from hotline.report.render import require_charts
from workorders.kpi import KpiReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def render_orders_png(report: KpiReport) -> bytes:
    """Four panels over the days: orders created; assignment and response within target %;
    first-contact resolution, reopen and repeat-contact %; CSAT average and NPS."""
    require_charts()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = list(report.days)
    rows = [report.days[d].total for d in days]
    fig, axes = plt.subplots(4, 1, figsize=(11, 10), sharex=True, constrained_layout=True)
    fig.suptitle(f"Work orders by the day they were created (UTC), {days[0]} to {days[-1]}",
                 fontsize=12)
    created_ax, sla_ax, quality_ax, survey_ax = axes
    created_ax.bar(days, [r.created for r in rows], color="tab:blue")
    created_ax.set_ylabel("orders created")
    for label, values in (
        ("assigned within 2 h", [r.as_dict()["assignment_within_target_pct"] for r in rows]),
        ("response within target", [r.as_dict()["response_within_target_pct"] for r in rows]),
    ):
        _line(sla_ax, days, values, label)
    sla_ax.set_ylabel("% within target")
    sla_ax.set_ylim(-5, 105)
    for label, key in (("first-contact resolution", "first_contact_resolution_pct"),
                       ("reopened", "reopen_pct"), ("repeat contact", "repeat_contact_pct")):
        _line(quality_ax, days, [r.as_dict()[key] for r in rows], label)
    quality_ax.set_ylabel("% of orders")
    quality_ax.set_ylim(-5, 105)
    _line(survey_ax, days, [r.csat_average for r in rows], "CSAT (1-5)")
    survey_ax.set_ylabel("CSAT average")
    survey_ax.set_ylim(0.5, 5.5)
    nps_ax = survey_ax.twinx()
    _line(nps_ax, days, [r.nps for r in rows], "NPS", colour="tab:red")
    nps_ax.set_ylabel("NPS")
    nps_ax.set_ylim(-105, 105)
    for ax in (sla_ax, quality_ax):
        ax.legend(loc="lower left", fontsize=9)
    survey_ax.legend(loc="lower left", fontsize=9)
    nps_ax.legend(loc="lower right", fontsize=9)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _line(ax: Axes, days: list[date], values: list[float | None], label: str,
          colour: str | None = None) -> None:
    # None leaves a gap: a day without orders has no percentage, not 0 %.
    # (matplotlib converts dates through its units; its type hints list arrays only.)
    ax.plot(days, [math.nan if v is None else v for v in values],  # type: ignore[arg-type]
            marker="o", markersize=4, label=label, color=colour)
