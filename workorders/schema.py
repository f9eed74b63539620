"""Schema of ``config/workorders.yaml``: the operator's service standard for work orders.

Validated once at load (``ivr.config`` includes it as the ``workorders`` section); a bad value
stops the service at start with file, key and reason instead of a wrong deadline at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workorders.model import DEFAULT_CATEGORIES, Policy, Urgency

MIN_RETENTION_YEARS = 3


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseTargets(_Section):
    """Hours within which the caller must have an answer, by urgency."""

    urgent: float = Field(1.0, gt=0)
    important: float = Field(24.0, gt=0)
    normal: float = Field(48.0, gt=0)


class SpoolSettings(_Section):
    """Where writes go while Redis is unreachable, and how replays stay exactly-once."""

    # Empty: "<service spool_dir>/workorders".
    dir: str = ""
    # How long Redis remembers an applied operation id, so that a spool replayed again after
    # a crash mid-replay does not apply anything twice. Longer than any outage we plan for.
    applied_op_ttl_days: int = Field(30, ge=1)


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
