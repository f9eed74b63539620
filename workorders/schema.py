"""Schema of ``config/workorders.yaml``: the operator's service standard for work orders.

Validated once at load (``ivr.config`` includes it as the ``workorders`` section); a bad value
stops the service at start with file, key and reason instead of a wrong deadline at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workorders.calendar import (
    WEEKDAYS,
    AlwaysOpen,
    BusinessHours,
    Calendar,
    ClosedDates,
    parse_period,
)
from workorders.clocks import ClockKind, ClockPolicy
from workorders.escalation import EscalationPolicy, Raise
from workorders.model import DEFAULT_CATEGORIES, Policy, Urgency

MIN_RETENTION_YEARS = 3


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseTargets(_Section):
    """Hours within which the caller must have an answer, by urgency."""

    urgent: float = Field(1.0, gt=0)
    important: float = Field(24.0, gt=0)
    normal: float = Field(48.0, gt=0)


class ResolutionTargets(_Section):
    """Hours within which the order must be resolved, by urgency (clock paused on hold)."""

    urgent: float = Field(8.0, gt=0)
    important: float = Field(72.0, gt=0)
    normal: float = Field(120.0, gt=0)


class SpoolSettings(_Section):
    """Where writes go while Redis is unreachable, and how replays stay exactly-once."""

    # Empty: "<service spool_dir>/workorders".
    dir: str = ""
    # How long Redis remembers an applied operation id, so that a spool replayed again after
    # a crash mid-replay does not apply anything twice. Longer than any outage we plan for.
    applied_op_ttl_days: int = Field(30, ge=1)


class StoreSettings(_Section):
    """How the orders are laid out in Redis (``workorders.buckets``)."""

    # Orders live in this many buckets, each one Redis Cluster hash slot. Fixed once orders
    # exist: an order's id tells its bucket (id % buckets), so changing it loses them.
    buckets: int = Field(16, ge=1, le=1024)


class CalendarSettings(_Section):
    """When the clocks count: 24x7 (no ``hours``), or business hours in ``zone``."""

    # Weekday ("mon".."sun") -> open periods in local wall time ("08:00-12:00"); a weekday
    # left out is closed. Empty: 24x7, every hour counts.
    hours: dict[str, list[str]] = {}
    zone: str = "UTC"  # IANA zone of the hours (DST follows it)
    # Public holidays of this country (ISO 3166 code, e.g. "DE") and subdivision ("BY").
    holidays_country: str | None = None
    holidays_subdivision: str | None = None
    # Further closed dates (company days, "2026-12-24").
    closed_dates: list[date] = []
    # Clocks counted only in business hours; the others count 24x7.
    clocks: list[ClockKind] = list(ClockKind)

    @field_validator("hours")
    @classmethod
    def _weekdays_and_periods(cls, hours: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, periods in hours.items():
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday; weekdays are {list(WEEKDAYS)}")
            spans = sorted(parse_period(p) for p in periods)  # names a bad period
            for (_, closes), (opens, _) in pairwise(spans):
                if opens < closes:
                    raise ValueError(f"{day}: periods {periods} overlap")
        return hours

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{zone!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        return zone

    @model_validator(mode="after")
    def _coherent(self) -> CalendarSettings:
        if not self.hours:
            if self.holidays_country or self.closed_dates:
                raise ValueError("holidays and closed_dates need business hours (hours:)")
            return self
        if not any(self.hours.values()):
            raise ValueError("hours: no weekday has open hours; leave hours empty for 24x7")
        if self.holidays_country:
            try:
                ClosedDates(self.holidays_country, self.holidays_subdivision)
            except NotImplementedError as exc:  # how `holidays` says "no such country"
                raise ValueError(f"holidays_country/holidays_subdivision: {exc}") from None
        elif self.holidays_subdivision:
            raise ValueError("holidays_subdivision needs holidays_country")
        return self

    def build(self) -> Calendar:
        """The calendar the clocks count in."""
        if not self.hours:
            return AlwaysOpen()
        return BusinessHours(
            zone=ZoneInfo(self.zone),
            week={
                WEEKDAYS.index(day): tuple(sorted(parse_period(p) for p in periods))
                for day, periods in self.hours.items()
            },
            closed_dates=ClosedDates(
                self.holidays_country, self.holidays_subdivision, self.closed_dates
            ),
        )

    def counted_clocks(self) -> frozenset[ClockKind]:
        return frozenset(self.clocks)


class EscalationSettings(_Section):
    """Warnings before a breach and at it (``workorders.escalation``, ``workorders.watch``)."""

    # A warning when this percentage of a clock's target is counted, before the breach.
    warn_at_percent: int = Field(80, gt=0, lt=100)
    # Per clock instead ("resolution: 90"); 0: no warning for that clock, only its breach.
    warn_at_percent_by_clock: dict[ClockKind, int] = {}
    # Clocks whose breach raises the order's urgency: true (one step: normal -> important ->
    # urgent) or the urgency to raise it to ("urgent"). Never lowered.
    raise_urgency_on_breach: dict[ClockKind, bool | Urgency] = {}
    # How often each instance looks for warnings due (seconds): at most this late.
    interval_s: float = Field(30.0, gt=0, le=3600)
    # Entries older than this leave the supervisor's escalation list (wo:escalations).
    list_retention_days: float = Field(30.0, gt=0)

    @field_validator("warn_at_percent_by_clock")
    @classmethod
    def _percentages(cls, percents: dict[ClockKind, int]) -> dict[ClockKind, int]:
        for kind, percent in percents.items():
            if not 0 <= percent < 100:
                raise ValueError(
                    f"{kind.value}: {percent} is not a percentage of the target below 100 "
                    "(0: no warning for this clock, only its breach)"
                )
        return percents

    def policy(self) -> EscalationPolicy:
        """The pure core's view: a percentage per clock, how each breach raises urgency."""
        raises: dict[ClockKind, Raise] = {
            kind: "step" if how is True else how
            for kind, how in self.raise_urgency_on_breach.items()
            if how is not False
        }
        return EscalationPolicy(
            warn_at_percent={
                kind: self.warn_at_percent_by_clock.get(kind, self.warn_at_percent)
                for kind in ClockKind
            },
            raise_urgency_on_breach=raises,
        )


class BackOfficeSettings(_Section):
    """Automatic assignment of the orders not handled live (``workorders.backoffice``)."""

    enabled: bool = True
    # How often ``ivr serve`` looks for orders to assign.
    interval_s: float = Field(60.0, gt=0)
    # An order is left this long after its creation before the back office takes it: an
    # abandoned caller often calls straight back, and the agent who answers then owns it.
    wait_minutes: float = Field(5.0, ge=0)
    # An order nobody qualified for is tried again after this long (it stays on the
    # supervisor's list meanwhile).
    retry_minutes: float = Field(15.0, gt=0)
    # At most this many orders per round, oldest first.
    batch: int = Field(200, ge=1)


class RetentionSettings(_Section):
    """The daily purge of orders past their retention (``workorders.retention``)."""

    # Run the purge once a day inside ``ivr serve`` (one instance of several runs it).
    daily_purge: bool = True
    # The hour of the day (UTC) from which the day's purge runs.
    purge_hour_utc: int = Field(3, ge=0, le=23)


class WorkOrdersConfig(_Section):
    """``config/workorders.yaml``."""

    response_hours: ResponseTargets = ResponseTargets()
    assign_within_hours: float = Field(2.0, gt=0)
    retention_years: int = MIN_RETENTION_YEARS
    # A Redis command that takes longer than this counts as "Redis unreachable": the write
    # goes to the spool instead of keeping the caller waiting.
    redis_timeout_s: float = Field(2.0, gt=0)
    # Approximate cap of the ``hotline:events`` stream (XADD MAXLEN ~).
    events_maxlen: int = Field(1_000_000, ge=1000)
    spool: SpoolSettings = SpoolSettings()
    store: StoreSettings = StoreSettings()
    resolution_hours: ResolutionTargets = ResolutionTargets()
    # The customer hears back (a reached contact) within this many hours of a resolution.
    feedback_within_hours: float = Field(24.0, gt=0)
    calendar: CalendarSettings = CalendarSettings()
    escalation: EscalationSettings = EscalationSettings()
    # A call from the same caller number about the same category, within this many hours of
    # an open order's creation or its last repeat call, is linked to that order (its
    # ``contacts`` counted) instead of opening a second one. 0: never linked.
    repeat_contact_window_hours: float = Field(24.0, ge=0)
    backoffice: BackOfficeSettings = BackOfficeSettings()

    @model_validator(mode="after")
    def _back_office_within_target(self) -> WorkOrdersConfig:
        if self.backoffice.wait_minutes * 60 >= self.assign_within_hours * 3600:
            raise ValueError(
                f"backoffice.wait_minutes={self.backoffice.wait_minutes:g} is not shorter than "
                f"assign_within_hours={self.assign_within_hours:g}: the back office would "
                "miss the assignment target for every order it takes"
            )
        return self
    retention: RetentionSettings = RetentionSettings()

    @model_validator(mode="after")
    def _resolution_after_response(self) -> WorkOrdersConfig:
        for urgency in Urgency:
            response = getattr(self.response_hours, urgency.value)
            resolution = getattr(self.resolution_hours, urgency.value)
            if resolution < response:
                raise ValueError(
                    f"resolution_hours.{urgency.value}={resolution:g} is shorter than "
                    f"response_hours.{urgency.value}={response:g}: a resolution answers the "
                    "caller, so its target cannot come before the response target"
                )
        return self

    @field_validator("retention_years")
    @classmethod
    def _at_least_three_years(cls, years: int) -> int:
        if years < MIN_RETENTION_YEARS:
            raise ValueError(
                f"work orders must be retained at least {MIN_RETENTION_YEARS} years "
                f"(the operator's standard), got {years}"
            )
        return years

    def policy(self, categories: Iterable[str] = DEFAULT_CATEGORIES) -> Policy:
        """The pure model's view of this config (seconds, keyed by ``Urgency``). ``categories``:
        those orders may have, from the other files (``ivr.categories.work_order_categories``);
        this file does not name them."""
        hours = self.response_hours
        return Policy(
            response={
                Urgency.URGENT: hours.urgent * 3600,
                Urgency.IMPORTANT: hours.important * 3600,
                Urgency.NORMAL: hours.normal * 3600,
            },
            assign_within=self.assign_within_hours * 3600,
            retention_years=self.retention_years,
            categories=frozenset(categories),
        )

    def clock_policy(self) -> ClockPolicy:
        """The service-level clocks' view of this config (seconds, the calendar built)."""
        policy = self.policy()
        hours = self.resolution_hours
        return ClockPolicy(
            assign_within=policy.assign_within,
            response=policy.response,
            resolution={
                Urgency.URGENT: hours.urgent * 3600,
                Urgency.IMPORTANT: hours.important * 3600,
                Urgency.NORMAL: hours.normal * 3600,
            },
            feedback_within=self.feedback_within_hours * 3600,
            calendar=self.calendar.build(),
            business_clocks=self.calendar.counted_clocks(),
        )
