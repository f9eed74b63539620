"""The retention pass (``ivr recordings purge``, daily in ``ivr serve``) and the master key
rotation of recordings (``ivr recordings rewrap``).

The pass reads every recording's retention facts in batches, with the standing of their work
orders (status, close, ``retain_until``, ``legal_hold``), decides with the pure
:func:`recordings.retention.verdict`, and crypto-erases each recording whose time is over
(``Catalog.erase``: wrapped key and metadata gone, deletion record written, a hold checked in
the same step), then removes its stored object. ``dry_run`` decides and counts, deletes
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from recordings import alarms
from recordings.catalog import Catalog, Due, Erased
from recordings.crypto import RecordingKeyError, RecordingVault
from recordings.pipeline import RunBlocking
from recordings.retention import add_years_to, verdict
from recordings.schema import RetentionSettings
from recordings.storage import RecordingStorage

__all__ = ["PurgeReport", "RewrapReport", "purge", "rewrap"]

log = logging.getLogger(__name__)


@dataclass
class PurgeReport:
    checked: int = 0  # every stored recording
    due: list[str] = field(default_factory=list)  # deleted (or, dry run, to be deleted)
    held: int = 0  # old enough to be due, kept by a legal hold
    kept: int = 0  # their time is not over


async def purge(
    catalog: Catalog, storage: RecordingStorage, policy: RetentionSettings, now: float, *,
    dry_run: bool = False, by: str = "retention", batch_size: int = 1000,
    run_blocking: RunBlocking = asyncio.to_thread,
) -> PurgeReport:
    report = PurgeReport()
    # Only a recording that ended at least the shortest period ago can be due (each keep-until
    # is at least that long after the call); the index is sorted by the call's end, so the
    # others are counted, not read. A day of margin for the calendar's 29 Februaries.
    ended_by = add_years_to(now, -policy.shortest_years()) + 86400
    total = await catalog.count()
    due: list[Due] = []
    # Decide first, erase after: erasing while reading would shift the index under the reads.
    async for batch in catalog.retention_batches(ended_by, batch_size):
        for fact in batch.facts:
            report.checked += 1
            order = batch.orders.get(fact.work_order_id) if fact.work_order_id else None
            decided = verdict(fact, order, policy, now)
            if decided.delete:
                due.append(Due(fact.recording_id, fact.ended_at, decided.reason))
            elif decided.keep_until is None and "legal hold" in decided.reason:
                report.held += 1
            else:
                report.kept += 1
    report.kept += max(0, total - report.checked)
    report.checked = max(total, report.checked)
    if dry_run:
        report.due = [item.recording_id for item in due]
        return report
    for start in range(0, len(due), batch_size):
        chunk = due[start:start + batch_size]
        outcomes = await catalog.erase(chunk, by, now)
        erased = [item.recording_id for item, outcome in zip(chunk, outcomes, strict=True)
                  if outcome is Erased.ERASED]
        report.held += outcomes.count(Erased.HELD)  # put on hold since it was read
        if erased:
            report.due += erased
            alarms.DELETED.labels("retention").inc(len(erased))
            with contextlib.suppress(Exception):
                # Unreadable already without their keys; a leftover object is harmless.
                await run_blocking(_delete_objects, storage, erased)
    return report


def _delete_objects(storage: RecordingStorage, recording_ids: list[str]) -> None:
    for recording_id in recording_ids:
        with contextlib.suppress(Exception):
            storage.delete(recording_id)


@dataclass
class RewrapReport:
    rewrapped: int = 0
    current: int = 0
    failed: dict[str, str] = field(default_factory=dict)


async def rewrap(catalog: Catalog, vault: Callable[[], RecordingVault], *,
                 batch_size: int = 1000) -> RewrapReport:
    """Re-wrap every recording's data key under the newest master key (after ``ivr keys
    init`` put a new key first); the audio is not touched. Safe to run again."""
    report = RewrapReport()
    current = vault()
    async for batch in catalog.retention_batches(float("inf"), batch_size):
        for fact in batch.facts:
            meta = await catalog.get(fact.recording_id)
            if meta is None:
                continue
            if meta.master == current.master_version:
                report.current += 1
                continue
            try:
                sealed = current.rewrap(meta.sealed(b""))
            except RecordingKeyError as exc:
                report.failed[meta.recording_id] = str(exc)
                continue
            if await catalog.set_key(meta, sealed.wrapped_key, sealed.master):
                report.rewrapped += 1
    return report
