"""The ``hotline`` call flow: welcome, speech or DTMF menu, work order, queue, agent, survey.

One coroutine per call, driven by the FastAGI session (``agi://host/hotline``). Every step
that waits on the caller is bounded, and every way out leaves a verdict in ``HOTLINE_NEXT``
for the dialplan, so the caller is never left in dead air: when anything here fails, the
dialplan's fallback sends the call to the operator (see ``asterisk/extensions.conf``).

The flow holds no routing logic and no storage logic: it asks the menu walker (pure), the
speech gateway, the work-order store and the live router (:mod:`.seams`), and turns their
answers into AGI commands. Its steps, one module each, work on the call's own context
(:mod:`.context`): :mod:`.choose` (welcome, speech, menu, language), :mod:`.queue` (place in
line, hold, announcements), :mod:`.ring` (Dial and its outcome), :mod:`.survey`; the
callback number dialogue on hold is :mod:`callbacks.dialogue`.
"""

from ivr.flows.hotline.choose import ALL_DIGITS
from ivr.flows.hotline.context import Call, Shared, Stage
from ivr.flows.hotline.flow import HotlineFlow
from ivr.flows.hotline.ring import DIAL_OUTCOMES
from ivr.flows.hotline.seams import Clock, Router, Speech, WorkOrders

__all__ = [
    "ALL_DIGITS",
    "DIAL_OUTCOMES",
    "Call",
    "Clock",
    "HotlineFlow",
    "Router",
    "Shared",
    "Speech",
    "Stage",
    "WorkOrders",
]
