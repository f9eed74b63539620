"""When service-level time counts: always (24x7), or in business hours of one IANA zone.

Pure: no clock and no I/O. Every time in and out is an aware datetime; durations are real
elapsed time (a business day from 08:00 to 17:00 is nine hours also on the day the clocks
change, and a day open from 00:00 to 24:00 lasts 23 or 25 hours then).

Business hours are written in local wall time per weekday and turned into UTC intervals one
local date at a time, so the DST change falls where the zone says it does. A closed date (a
public holiday of ``holidays``' country and subdivision, or a listed date) has no hours.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

#: Weekday names as the config writes them, Monday first (``date.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: How far ``add_business_time`` looks ahead before deciding the calendar never opens.
_HORIZON_DAYS = 3 * 366

_ZERO = timedelta(0)


class Calendar(Protocol):
    """The time a service-level clock counts."""

    @property
    def business_hours_only(self) -> bool:
        """True when nights, weekends or holidays do not count (a clock says so)."""

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which ``duration`` of counted time has passed since ``start``."""

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Counted time from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""


class AlwaysOpen:
    """24x7: every second counts."""

    business_hours_only = False

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        return start + duration

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        return b - a

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AlwaysOpen)

    def __hash__(self) -> int:
        return hash(AlwaysOpen)


ALWAYS_OPEN = AlwaysOpen()

#: Open periods of one day as (start, end) minutes after local midnight; end may be 1440.
DayHours = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class BusinessHours:
    """Open hours per weekday in ``zone``, closed on ``closed_dates`` (holidays, listed)."""

    zone: ZoneInfo
    week: Mapping[int, DayHours]  # weekday (0 = Monday) -> open periods; absent: closed
    closed_dates: Container[date] = field(default_factory=frozenset)

    business_hours_only = True

    def __post_init__(self) -> None:
        if not any(self.week.get(day) for day in range(7)):
            raise ValueError("business hours: no weekday has any open hours")
        for day, periods in self.week.items():
            for start, end in periods:
                if not 0 <= start < end <= 1440:
                    raise ValueError(f"business hours: bad period {start}-{end} on {day}")

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        if duration < _ZERO:
            raise ValueError("add_business_time: the duration must not be negative")
        remaining = duration
        if remaining == _ZERO:
            return start
        day = start.astimezone(self.zone).date()
        for _ in range(_HORIZON_DAYS):
            for opens, closes in self._open_periods(day):
                opens = max(opens, start)
                if closes <= opens:
                    continue
                if closes - opens >= remaining:
                    return opens + remaining
                remaining -= closes - opens
            day += timedelta(days=1)
        raise ValueError(f"business hours: not open in the {_HORIZON_DAYS} days after {start}")

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        if b < a:
            return -self.business_time_between(b, a)
        total = _ZERO
        day = a.astimezone(self.zone).date()
        last = b.astimezone(self.zone).date()
        while day <= last:
            for opens, closes in self._open_periods(day):
                overlap = min(closes, b) - max(opens, a)
                if overlap > _ZERO:
                    total += overlap
            day += timedelta(days=1)
        return total

    def _open_periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's open periods as UTC instants (local wall time through the zone)."""
        if day in self.closed_dates:
            return []
        midnight = datetime.combine(day, time())
        return [
            (self._instant(midnight + timedelta(minutes=opens)),
             self._instant(midnight + timedelta(minutes=closes)))
            for opens, closes in self.week.get(day.weekday(), ())
        ]

    def _instant(self, wall: datetime) -> datetime:
        # A wall time the spring change skips is read with the offset before the change
        # (02:30 in Berlin on that Sunday is 03:30 CEST); an ambiguous one (autumn) is the
        # first of the two: zoneinfo's fold=0, as PEP 495 says.
        return wall.replace(tzinfo=self.zone).astimezone(UTC)


class ClosedDates:
    """Public holidays of a country (and subdivision) from ``holidays``, plus listed dates."""

    def __init__(
        self, country: str | None = None, subdivision: str | None = None,
        listed: Sequence[date] = (),
    ) -> None:
        self._listed = frozenset(listed)
        self._public: Container[date] | None = None
        if country:
            import holidays  # only when a country is configured: its tables are large

            self._public = holidays.country_holidays(country, subdiv=subdivision)

    def __contains__(self, day: object) -> bool:
        if day in self._listed:
            return True
        return self._public is not None and day in self._public


def parse_period(text: str) -> tuple[int, int]:
    """``"08:00-17:30"`` as minutes after midnight; ``24:00`` may end a day."""
    try:
        start, end = (part.strip() for part in text.split("-"))
        opens, closes = _minutes(start), _minutes(end)
    except ValueError:
        raise ValueError(f"{text!r} is not a period like '08:00-17:00'") from None
    if not opens < closes <= 1440:
        raise ValueError(f"{text!r}: the period must end after it starts, by 24:00")
    return opens, closes


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    if len(minutes) != 2 or not (0 <= int(hours) <= 24 and 0 <= int(minutes) < 60):
        raise ValueError(text)
    value = int(hours) * 60 + int(minutes)
    if value > 1440:
        raise ValueError(text)
    return value
