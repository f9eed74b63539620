"""Agents' weekly schedules: who is off schedule now, in the config's time zone."""

from __future__ import annotations

import time
from datetime import datetime, tzinfo

from routing.core.config import RoutingConfig


def local_week_minute(now: float, zone: tzinfo | None) -> tuple[int, int]:
    """(weekday, 0 = Monday; minute of the day) of ``now`` (epoch seconds) in ``zone``, the
    machine's local zone when ``None``. Daylight saving time follows the zone's rules."""
    if zone is None:
        local = time.localtime(now)
        return local.tm_wday, local.tm_hour * 60 + local.tm_min
    when = datetime.fromtimestamp(now, zone)
    return when.weekday(), when.hour * 60 + when.minute


def agents_off_schedule(config: RoutingConfig, now: float) -> frozenset[str]:
    """The configured agents whose schedule does not cover ``now`` (see the module docstring).

    For the shell to pass as ``Snapshot.off_schedule``, once per snapshot: ``now`` is
    converted to the local week once, and the answer is kept per local minute (schedules
    change only on minute boundaries), so a dispatcher deciding 4 times a second recomputes
    it once a minute. Free when no agent has a schedule.
    """
    memo = config._steps_memo
    scheduled = memo.get("scheduled")
    if scheduled is None:
        scheduled = memo["scheduled"] = tuple(p for p in config.agents.values() if p.schedule)
    if not scheduled:
        return frozenset()
    week_minute = local_week_minute(now, config.timezone)
    hit = memo.get("off_schedule")
    if hit is None or hit[0] != week_minute:
        weekday, minute = week_minute
        off = frozenset(p.agent_id for p in scheduled if not p.on_schedule(weekday, minute))
        hit = memo["off_schedule"] = (week_minute, off)
    return hit[1]
