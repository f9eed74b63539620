"""Retention of work orders: which orders may go, the purge, the daily job, legal holds.

An order is kept until its ``retain_until`` (``workorders.model``: ``retention_years`` after
creation, extended to that many years after its last close; never fewer than 3 years, the
schema and ``Policy`` refuse less). After that, and only when it is closed and not under a
legal hold, the purge deletes it: its hash, its history, its by-call key, its place in the
caller's set, in ``wo:index`` and in every secondary index. Each deletion leaves a record
without personal data (:class:`DeletionRecord`: id, dates, reason) on the list
``<p>wo:deletions`` of the order's bucket (``workorders.buckets``) and a ``WOPURGE`` event on
the stream, written in the same MULTI/EXEC as the deletion.

Finding the orders: the indexer :func:`retained` puts closed orders that are not held in the
sorted set ``wo:retain``, scored by ``retain_until``; an open or held order is never in it,
so a reopen or a hold takes the order out in the same atomic step as the change. The purge
reads the set up to ``now`` and deletes each order under WATCH after checking it again
(:func:`expired`): an order reopened, held or changed between the read and the delete is
left alone (``WorkOrderStore.purge_order``).

The daily job (:class:`DailyPurge`) runs in ``ivr serve`` on the reactor's clock; with several
instances, the first to claim the day's lock key ``<p>wo:purge-day:<YYYY-MM-DD>`` (SET NX)
runs it, the others skip that day. A crash mid-purge loses nothing: the next run purges
whatever is still past its date.

Not deleted, said here so nobody looks for them: ``wo:alias:<local id>`` (written only when a
spooled creation met an existing order; it holds an id, no personal data, and cannot be found
from the order without a scan), ``wo:op:<op id>`` keys (they expire by themselves), and the
order's old entries on the events stream (no personal data; trimmed by ``events_maxlen``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from workorders.model import Status, WorkOrder, utc

log = logging.getLogger(__name__)

RETAIN_SET = "wo:retain"
DELETIONS = "wo:deletions"
PURGE_KIND = "WOPURGE"
REASON_EXPIRED = "retention expired"


def retained(order: WorkOrder) -> Mapping[str, float]:
    """The indexer of retention: closed orders not under a legal hold, by ``retain_until``."""
    if order.status is not Status.CLOSED or order.legal_hold:
        return {}
    return {RETAIN_SET: order.retain_until.timestamp()}


def expired(order: WorkOrder, now: float) -> bool:
    """Whether the order may be purged at ``now``: closed, not held, past ``retain_until``."""
    return (
        order.status is Status.CLOSED
        and not order.legal_hold
        and order.retain_until <= utc(now)
    )


def last_closed(order: WorkOrder) -> datetime | None:
    """When the order was last closed (from its history), None if it never was."""
    return next((h.time for h in reversed(order.history) if h.event == "close"), None)


@dataclass(frozen=True)
class DeletionRecord:
    """What remains of a purged order: its id and dates, why it went; no personal data."""

    id: str
    created: datetime
    closed: datetime | None
    retain_until: datetime
    purged_at: datetime
    reason: str = REASON_EXPIRED

    @classmethod
    def of(cls, order: WorkOrder, now: float, reason: str = REASON_EXPIRED) -> DeletionRecord:
        return cls(order.id, order.created_at, last_closed(order), order.retain_until,
                   utc(now), reason)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "created": _iso(self.created),
            "closed": _iso(self.closed) if self.closed is not None else None,
            "retain_until": _iso(self.retain_until),
            "purged_at": _iso(self.purged_at),
            "reason": self.reason,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=True, separators=(",", ":"))


@dataclass(frozen=True)
class PurgeReport:
    """One purge: the orders deleted (or, on a dry run, that would be), and those skipped
    because they changed between the read and the delete (reopened, held, ...)."""

    now: float
    dry_run: bool
    deleted: tuple[DeletionRecord, ...] = ()
    skipped: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": _iso(utc(self.now)),
            "dry_run": self.dry_run,
            "deleted" if not self.dry_run else "would_delete": len(self.deleted),
            "skipped": list(self.skipped),
            "records": [record.to_dict() for record in self.deleted],
        }


class RetentionStore(Protocol):
    """What the purge needs of :class:`workorders.store.WorkOrderStore`."""

    async def retained_past(self, now: float, offset: int, count: int) -> list[str]: ...

    async def get(self, order_id: str) -> WorkOrder | None: ...

    async def purge_order(
        self, order_id: str, now: float, reason: str = REASON_EXPIRED
    ) -> DeletionRecord | None: ...


async def purge(
    store: RetentionStore, now: float, *, dry_run: bool, batch: int = 500
) -> PurgeReport:
    """Delete every order past its retention at ``now`` (``dry_run``: only say which).

    Safe while the service changes orders, and run by several instances at once: each order
    is checked again and deleted under WATCH (``WorkOrderStore.purge_order``), so an order
    reopened or held meanwhile stays, and an order is deleted (and recorded) once.
    """
    deleted: list[DeletionRecord] = []
    skipped: list[str] = []
    seen: set[str] = set()
    offset = 0
    while ids := await store.retained_past(now, offset, batch):
        fresh = [order_id for order_id in ids if order_id not in seen]
        if dry_run or not fresh:
            # Nothing leaves the set on a dry run. Deleted, reopened and held orders leave
            # it; members seen again (an index out of step) are stepped over, not retried.
            offset += len(ids)
        seen.update(fresh)
        for order_id in fresh:
            if dry_run:
                order = await store.get(order_id)
                if order is not None and expired(order, now):
                    deleted.append(DeletionRecord.of(order, now))
                else:
                    skipped.append(order_id)
                continue
            record = await store.purge_order(order_id, now)
            if record is None:
                skipped.append(order_id)
            else:
                deleted.append(record)
    if deleted and not dry_run:
        log.info("retention: purged %d work orders", len(deleted))
    return PurgeReport(now, dry_run, tuple(deleted), tuple(skipped))


class DayLock(Protocol):
    """``SET key value NX EX seconds`` (``redis.asyncio.Redis.set``): True when set here."""

    async def set(self, name: str, value: str, *, nx: bool, ex: int) -> bool | None: ...


@dataclass
class DailyPurge:
    """The purge once a day across every instance: at or after ``hour_utc``, the first
    instance to claim the day's lock key runs it (``run_if_due`` is called by a loop)."""

    store: RetentionStore
    lock: DayLock
    prefix: str = "hotline:"
    instance: str = "hotline"
    hour_utc: int = 3
    last: PurgeReport | None = field(default=None, init=False)

    def lock_key(self, now: float) -> str:
        return f"{self.prefix}wo:purge-day:{utc(now).date().isoformat()}"

    async def run_if_due(self, now: float) -> PurgeReport | None:
        """Purge now if the day's purge is due and nobody ran it yet; the report, else None."""
        if utc(now).hour < self.hour_utc:
            return None
        # Kept two days: long enough that a late instance still sees today's claim.
        if not await self.lock.set(self.lock_key(now), self.instance, nx=True, ex=2 * 86400):
            return None
        self.last = await purge(self.store, now, dry_run=False)
        log.info("retention: daily purge by %s: %d deleted, %d skipped", self.instance,
                 len(self.last.deleted), len(self.last.skipped))
        return self.last


# -- ready for `ivr orders purge|legal-hold` and the API (the lead wires them) ---------------


class LegalHoldStore(Protocol):
    """What setting a legal hold needs of :class:`workorders.store.WorkOrderStore`."""

    async def set_legal_hold(
        self, order_id: str, held: bool, now: float, actor: str, reason: str
    ) -> WorkOrder: ...


class AuditRecorder(Protocol):
    """The audit log's ``record`` (``audit.log.AuditLog``, ``api.seams.AuditTrail``)."""

    async def record(
        self, *, user: str, role: str, action: str, obj: str, address: str, now: float,
        reason: str | None = None, details: Mapping[str, str] | None = None,
    ) -> str: ...


async def purge_command(store: RetentionStore, now: float, *, dry_run: bool) -> dict[str, Any]:
    """``ivr orders purge [--dry-run]``: the purge's report as JSON-ready data."""
    return (await purge(store, now, dry_run=dry_run)).as_dict()


async def legal_hold_command(
    store: LegalHoldStore, order_id: str, *, held: bool, now: float, actor: str, reason: str,
    audit: AuditRecorder | None = None, role: str = "ops", address: str = "cli",
) -> WorkOrder:
    """``ivr orders legal-hold set|release ID --reason R`` and its API route: the hold set or
    released through the store's update path (event, history), then recorded in the audit
    log (``workorder.legal_hold`` / ``workorder.legal_release``) when there is one."""
    order = await store.set_legal_hold(order_id, held, now, actor, reason)
    if audit is not None:
        await audit.record(
            user=actor, role=role,
            action="workorder.legal_hold" if held else "workorder.legal_release",
            obj=f"workorder:{order.id}", address=address, now=now, reason=reason,
        )
    return order


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
