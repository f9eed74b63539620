"""Retention of recordings, pure: when may a recording be deleted, and why not yet.

Default policy (``config/recordings.yaml`` ``retention``): a recording is kept as long as its
work order (not deleted while the order is open, nor before the order's own ``retain_until``)
and at least ``years_after_close`` after the order closed; a recording without a work order
(or whose order is gone) is kept that many years after the call. Rules by category and queue
change the years. A legal hold, on the recording or on its work order, keeps it whatever the
dates say, until released.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from recordings.schema import RetentionSettings
from workorders.model import add_years

__all__ = ["OrderStanding", "RetentionFacts", "Verdict", "add_years_to", "verdict"]


@dataclass(frozen=True)
class RetentionFacts:
    """What retention reads of a recording's metadata."""

    recording_id: str
    ended_at: float
    category: str
    queue: str
    work_order_id: str | None
    legal_hold: bool


@dataclass(frozen=True)
class OrderStanding:
    """What retention reads of a work order: ``closed_at`` is set while it is closed;
    ``legal_hold`` is the order hash's ``legal_hold == "1"``."""

    status: str
    closed_at: float | None
    retain_until: float | None
    legal_hold: bool = False


@dataclass(frozen=True)
class Verdict:
    delete: bool
    reason: str
    keep_until: float | None  # None: no date yet (a hold, an open order)


def add_years_to(at: float, years: int) -> float:
    """Epoch seconds ``years`` later, by the calendar (29 February -> 1 March)."""
    day = math.floor(at / 86400)
    return at + _years_from_day(day, years)


@lru_cache(maxsize=16384)
def _years_from_day(day: int, years: int) -> float:
    # The calendar moves the date and keeps the time of day, so the shift is the same for
    # every instant of a UTC day: the retention pass asks it once per day, not per recording.
    start = day * 86400.0
    return add_years(datetime.fromtimestamp(start, UTC), years).timestamp() - start


def verdict(
    facts: RetentionFacts, order: OrderStanding | None, policy: RetentionSettings, now: float
) -> Verdict:
    """Whether ``facts``'s recording may be deleted at ``now``; ``order`` is its work order
    as read now (None: none, or no longer stored)."""
    if facts.legal_hold:
        return Verdict(False, "legal hold on the recording", None)
    if order is not None and order.legal_hold:
        return Verdict(False, f"legal hold on work order {facts.work_order_id}", None)
    years = policy.years_for(facts.category, facts.queue)
    keep_until = add_years_to(facts.ended_at, years)
    if order is not None and policy.follow_work_order:
        if order.closed_at is None:
            return Verdict(False, f"work order {facts.work_order_id} is {order.status}", None)
        keep_until = max(keep_until, add_years_to(order.closed_at, years),
                         order.retain_until or 0.0)
    if now < keep_until:
        return Verdict(False, "retention period running", keep_until)
    return Verdict(True, f"retention period over ({years} years)", keep_until)
