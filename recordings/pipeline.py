"""After the call: raw legs -> Opus/MP3 -> AES-256-GCM -> storage -> verified -> raw removed.

:meth:`Pipeline.ingest` is the capture side's entry point (:class:`recordings.capture.
RecordingIngest`). One recording, in order:

1. transcode (``recordings.transcode``; the encoded audio stays in memory);
2. seal with a fresh data key wrapped by the current master key, the recording id and the
   call id as associated data (``recordings.crypto``);
3. put the ciphertext into storage (temporary name, then rename);
4. verify: read the stored object back, compare its SHA-256, decrypt it and compare with the
   encoded audio;
5. write the metadata with the wrapped key and the checksum (``recordings.catalog``);
6. remove the raw legs; event ``RECORDSTORED``.

A fault at any step (ffmpeg failing, the master key missing, a full disk, Redis away, a bug)
touches neither the call nor the clear audio: what was stored is removed again, the raw legs
move into the protected retry area (``recordings.retry``), the alarm is raised (counter
``hotline_recording_faults_total{stage}``, event ``RECORDFAILED``), and
:meth:`Pipeline.retry_pending` tries again later. Past ``max_attempts`` the raw legs are
removed and a deletion record written (``RECORDDROPPED``): never stored in the clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from recordings import alarms
from recordings.alarms import Alarms
from recordings.capture import Ingested, IngestOutcome, RawRecording
from recordings.catalog import Catalog
from recordings.crypto import RecordingVault
from recordings.metadata import RecordingMeta
from recordings.retry import RetryArea, RetryEntry
from recordings.storage import RecordingStorage
from recordings.transcode import Transcoder

__all__ = ["Pipeline", "RunBlocking", "StageFault"]

log = logging.getLogger(__name__)

RunBlocking = Callable[..., Awaitable[Any]]
"""How blocking work runs: ``asyncio.to_thread`` (tests: inline)."""


class StageFault(Exception):
    """One step failed: ``stage`` names it (the counter's label)."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


class Pipeline:
    """``vault`` gives the vault of the current master keys, or raises (the key missing)."""

    def __init__(
        self, *, transcoder: Transcoder, storage: RecordingStorage, catalog: Catalog,
        vault: Callable[[], RecordingVault], retry: RetryArea, alarms: Alarms,
        clock: Callable[[], float], max_attempts: int = 12,
        run_blocking: RunBlocking = asyncio.to_thread,
    ) -> None:
        self.transcoder = transcoder
        self.storage = storage
        self.catalog = catalog
        self.vault = vault
        self.retry = retry
        self.alarms = alarms
        self.clock = clock
        self.max_attempts = max_attempts
        self._run = run_blocking

    async def ingest(self, raw: RawRecording) -> Ingested:
        """Store ``raw`` encrypted, or keep it for a retry; never raises (module docstring)."""
        return await self._attempt(raw, retrying=False)

    async def retry_pending(self) -> list[Ingested]:
        """Try every recording of the retry area once more (the service's loop)."""
        done = [await self._attempt(entry.raw, retrying=True) for entry in self.retry.entries()]
        alarms.RETRY_PENDING.set(len(self.retry.entries()))
        return done

    async def _attempt(self, raw: RawRecording, *, retrying: bool) -> Ingested:
        rid = raw.recording_id
        try:
            meta = await self._run(self._seal_and_store, raw)
            try:
                await self.catalog.add(meta)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await self._run(self.storage.delete, rid)
                raise StageFault("metadata", f"{type(exc).__name__}: {exc}") from None
        except Exception as exc:
            fault = exc if isinstance(exc, StageFault) else StageFault(
                "internal", f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, StageFault):
                log.exception("recording %s: unexpected failure", rid)
            return await self._failed(raw, fault)
        self._remove_raw(raw, retrying)
        alarms.STORED.inc()
        await self.alarms.event(
            "RECORDSTORED", self.clock(), call_id=raw.call_id, queue=raw.queue,
            agent=raw.agent, recording_id=rid, order_id=raw.work_order_id,
            duration=round(meta.duration_seconds, 3),
        )
        return Ingested(rid, IngestOutcome.STORED)

    def _seal_and_store(self, raw: RawRecording) -> RecordingMeta:
        """Steps 1-4, blocking (a worker thread); :class:`StageFault` names a failed step."""
        rid = raw.recording_id
        try:
            encoded = self.transcoder.encode(raw.legs)
        except Exception as exc:
            raise StageFault("transcode", str(exc)) from None
        try:
            vault = self.vault()
            sealed = vault.seal(rid, encoded.audio, raw.call_id)
        except Exception as exc:
            raise StageFault("key", str(exc)) from None
        digest = hashlib.sha256(sealed.ciphertext).hexdigest()
        try:
            self.storage.put(rid, sealed.ciphertext)
        except Exception as exc:
            raise StageFault("store", f"{type(exc).__name__}: {exc}") from None
        try:
            stored = self.storage.get(rid)
            if hashlib.sha256(stored).hexdigest() != digest:
                raise ValueError("the stored object differs from what was written")
            if vault.open(replace(sealed, ciphertext=stored)) != encoded.audio:
                raise ValueError("the stored recording does not decrypt to its audio")
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.storage.delete(rid)
            raise StageFault("verify", str(exc)) from None
        return RecordingMeta(
            recording_id=rid, call_id=raw.call_id, work_order_id=raw.work_order_id,
            queue=raw.queue, category=raw.category, agent=raw.agent,
            started_at=raw.started_at, ended_at=raw.ended_at, talk_seconds=raw.talk_seconds,
            duration_seconds=encoded.duration_seconds, format=self.transcoder.format,
            size=len(sealed.ciphertext), sha256=digest, stored_at=self.clock(),
            wrapped_key=sealed.wrapped_key, master=sealed.master, paused=raw.paused,
            leg=raw.leg,
        )

    async def _failed(self, raw: RawRecording, fault: StageFault) -> Ingested:
        rid, now = raw.recording_id, self.clock()
        alarms.FAULTS.labels(fault.stage).inc()
        log.error("recording %s of call %s not stored: %s", rid, raw.call_id, fault)
        try:
            entry = await self._run(self.retry.keep, raw, str(fault), now)
        except Exception as exc:
            # Not even the retry area takes it: the raw legs stay where capture left them.
            alarms.FAULTS.labels("retry-area").inc()
            detail = f"{fault}; retry area refused it ({exc}): raw legs left in place"
            log.critical("recording %s: %s", rid, detail)
            await self._event("RECORDFAILED", raw, "retry-area", detail)
            return Ingested(rid, IngestOutcome.RETRYING, detail)
        if entry.attempts >= self.max_attempts:
            return await self._drop(entry, str(fault))
        await self._event("RECORDFAILED", raw, fault.stage, str(fault),
                          attempts=entry.attempts)
        return Ingested(rid, IngestOutcome.RETRYING, str(fault))

    async def _drop(self, entry: RetryEntry, reason: str) -> Ingested:
        raw = entry.raw
        detail = f"given up after {entry.attempts} attempt(s): {reason}"
        try:
            await self.catalog.record_deletion(raw.recording_id, raw.started_at,
                                               "not-encryptable", "retry-limit", self.clock())
        except Exception as exc:
            # No record, no deletion: it stays in the protected area for the next pass.
            log.error("recording %s: deletion record not written (%s); kept", raw.recording_id,
                      exc)
            return Ingested(raw.recording_id, IngestOutcome.RETRYING, detail)
        await self._run(self.retry.remove, entry)
        alarms.DROPPED.inc()
        await self._event("RECORDDROPPED", raw, "retry-limit", detail)
        return Ingested(raw.recording_id, IngestOutcome.DROPPED, detail)

    async def _event(self, kind: str, raw: RawRecording, stage: str, reason: str,
                     **more: Any) -> None:
        await self.alarms.event(kind, self.clock(), call_id=raw.call_id, queue=raw.queue,
                                agent=raw.agent, recording_id=raw.recording_id, stage=stage,
                                reason=reason[:300], **more)

    def _remove_raw(self, raw: RawRecording, retrying: bool) -> None:
        if retrying:
            self.retry.remove(RetryEntry(raw, 0, 0.0, ""))
            return
        for leg in raw.legs:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(Path(leg))
