"""``ivr report``: service level, speed of answer and abandonment per queue and interval.

Read from the events stream (``hotline:events``, schema in ``events``), so a
report covers every instance that shared the agent pool. The arithmetic is the routing core's
(:class:`routing.core.QueueStats`), so the report, the live ``/api/queues`` figures and the
simulator agree on what "answered in time" means.

Definitions (per queue, per interval):

- A call belongs to the interval in which it **entered the queue** (``ENTERQUEUE``), whatever
  the interval of its outcome; so ``offered`` = answered + abandoned + short abandons +
  overflowed + still waiting, in every row. A call overflowed into another queue is offered
  there again, as a call of that queue.
- **Answered** (``CONNECT``): its ``holdtime`` (queue entry to agent answer, ring time
  included) is the speed of answer; it counts *within* when ``holdtime <= within_s``.
- **Abandoned** (``ABANDON`` with a queue, in the queue or while an agent rang): callers who
  waited less than ``exclude_abandons_under_s`` are *short abandons*, left out of the service
  level and the abandonment rate. Hang-ups before any queue (welcome, menu) are counted
  apart (``abandoned_before_queue``).
- **Overflowed** (``EXITWITHTIMEOUT``): sent to the overflow destination; not answered in time.
- **Service level** = answered within / (answered + abandoned + overflowed).
- **Average speed of answer** (ASA) = mean ``holdtime`` of the answered calls.
- **Abandonment rate** = abandoned / (offered - short abandons).

Only the first outcome of a call in a queue counts (a caller who hangs up while being sent to
the operator produced ``EXITWITHTIMEOUT`` then ``ABANDON``: it is one overflowed call).

Rooms: :mod:`~hotline.report.stream` reads the events, :mod:`~hotline.report.compute` counts (pure),
:mod:`~hotline.report.render` draws the chart and the page (matplotlib, the ``charts`` extra, only
there), :mod:`~hotline.report.cli` is ``ivr report``.
"""

from hotline.report.cli import ReportOptions, add_arguments, main, options_from_args, parse_interval
from hotline.report.compute import (
    OUTCOMES,
    RING_FAILURES,
    Figures,
    Report,
    compute_report,
    iso,
    parse_time,
)
from hotline.report.render import (
    CHARTS_EXTRA,
    ChartsUnavailable,
    render_html,
    render_png,
    require_charts,
)
from hotline.report.stream import READ_MARGIN_S, EventStream, read_events

__all__ = [
    "CHARTS_EXTRA",
    "OUTCOMES",
    "READ_MARGIN_S",
    "RING_FAILURES",
    "ChartsUnavailable",
    "EventStream",
    "Figures",
    "Report",
    "ReportOptions",
    "add_arguments",
    "compute_report",
    "iso",
    "main",
    "options_from_args",
    "parse_interval",
    "parse_time",
    "read_events",
    "render_html",
    "render_png",
    "require_charts",
]
