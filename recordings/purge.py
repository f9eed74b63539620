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
from recordings.catalog import Catalog, Erased
from recordings.crypto import RecordingKeyError, RecordingVault
from recordings.pipeline import RunBlocking
from recordings.retention import verdict
from recordings.schema import RetentionSettings
from recordings.storage import RecordingStorage

__all__ = ["PurgeReport", "RewrapReport", "purge", "rewrap"]

log = logging.getLogger(__name__)


@dataclass
class PurgeReport:
    checked: int = 0
    due: list[str] = field(default_factory=list)  # deleted (or, dry run, to be deleted)
    held: int = 0  # kept by a legal hold
    kept: int = 0  # their time is not over


async def purge(
    catalog: Catalog, storage: RecordingStorage, policy: RetentionSettings, now: float, *,
    dry_run: bool = False, by: str = "retention", batch: int = 1000,
    run_blocking: RunBlocking = asyncio.to_thread,
) -> PurgeReport:
    report = PurgeReport()
    async for facts in catalog.facts(batch):
        orders = await catalog.order_standings(f.work_order_id for f in facts if f.work_order_id)
        for fact in facts:
            report.checked += 1
            order = orders.get(fact.work_order_id) if fact.work_order_id else None
            decided = verdict(fact, order, policy, now)
            if not decided.delete:
                if decided.keep_until is None and "legal hold" in decided.reason:
                    report.held += 1
                else:
                    report.kept += 1
                continue
            if dry_run:
                report.due.append(fact.recording_id)
                continue
            meta = await catalog.get(fact.recording_id)
            if meta is None:
                continue
            erased = await catalog.erase(meta, decided.reason, by, now)
            if erased is Erased.HELD:
                report.held += 1  # put on hold since it was read
                continue
            if erased is Erased.ERASED:
                report.due.append(fact.recording_id)
                alarms.DELETED.labels("retention").inc()
                with contextlib.suppress(Exception):
                    # Unreadable already without its key; a leftover object is harmless.
                    await run_blocking(storage.delete, fact.recording_id)
    return report


@dataclass
class RewrapReport:
    rewrapped: int = 0
    current: int = 0
    failed: dict[str, str] = field(default_factory=dict)


async def rewrap(catalog: Catalog, vault: Callable[[], RecordingVault], *,
                 batch: int = 1000) -> RewrapReport:
    """Re-wrap every recording's data key under the newest master key (after ``ivr keys
    init`` put a new key first); the audio is not touched. Safe to run again."""
    report = RewrapReport()
    current = vault()
    async for facts in catalog.facts(batch):
        for fact in facts:
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
