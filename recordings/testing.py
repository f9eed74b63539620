"""Fakes for the recordings' unit tests (and the capture side's): an in-memory catalog and
store, a transcoder that needs no ffmpeg, recorded alarms, an inline runner for blocking work,
and WAV legs written with the standard library."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from recordings.capture import Ingested, IngestOutcome, PausedInterval, RawRecording
from recordings.catalog import Due, Erased, RetentionBatch, deletion_record
from recordings.metadata import RecordingMeta
from recordings.retention import OrderStanding
from recordings.storage import RecordingNotStored, check_recording_id
from recordings.transcode import Encoded, TranscodeError

__all__ = [
    "FakeAlarms",
    "FakeControl",
    "FakeIngest",
    "FakeTranscoder",
    "MemoryCatalog",
    "MemoryStore",
    "raw_recording",
    "run_inline",
    "sample_meta",
    "write_wav",
]


async def run_inline(fn: Callable[..., Any], *args: Any) -> Any:
    """``asyncio.to_thread``'s stand-in: runs ``fn`` here and now."""
    return fn(*args)


def write_wav(path: Path, seconds: float = 1.0, rate: int = 8000, channels: int = 1,
              tone: int = 440) -> Path:
    """A 16-bit PCM WAV of a square-ish tone (what MixMonitor writes, in shape)."""
    frames = int(seconds * rate)
    period = max(2, rate // tone)
    sample = bytearray()
    for n in range(frames):
        value = (6000 if (n % period) < period // 2 else -6000).to_bytes(2, "little", signed=True)
        sample += value * channels
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(sample))
    return path


class FakeTranscoder:
    """"Encodes" by reading the legs' bytes as they are; ``fail`` makes it fail like ffmpeg."""

    def __init__(self, format: str = "opus", fail: str | None = None) -> None:
        self.format = format
        self.fail = fail

    def encode(self, legs: Sequence[Path]) -> Encoded:
        if self.fail:
            raise TranscodeError(self.fail)
        return Encoded(b"".join(Path(leg).read_bytes() for leg in legs), 1.0)


class MemoryStore:
    """``RecordingStorage`` in a dict; ``full`` makes ``put`` fail as a full disk does."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.full = False

    def put(self, recording_id: str, data: bytes) -> None:
        check_recording_id(recording_id)
        if self.full:
            raise OSError(28, "No space left on device")
        self.objects[recording_id] = data

    def get(self, recording_id: str) -> bytes:
        try:
            return self.objects[recording_id]
        except KeyError:
            raise RecordingNotStored(recording_id) from None

    def delete(self, recording_id: str) -> bool:
        return self.objects.pop(recording_id, None) is not None


@dataclass
class FakeAlarms:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def event(self, kind: str, now: float, **fields: Any) -> None:
        self.events.append((kind, fields))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


class MemoryCatalog:
    """The ``Catalog`` in dicts; ``down`` makes every call fail as Redis away does."""

    def __init__(self) -> None:
        self.records: dict[str, RecordingMeta] = {}
        self.orders: dict[str, OrderStanding] = {}
        self.deletions: list[dict[str, str]] = []
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    async def add(self, meta: RecordingMeta) -> None:
        self._check()
        self.records[meta.recording_id] = meta

    async def get(self, recording_id: str) -> RecordingMeta | None:
        self._check()
        return self.records.get(recording_id)

    async def newest(self, *, agents: Sequence[str] | None = None, call_id: str | None = None,
                     limit: int = 50, order_id: str | None = None) -> list[RecordingMeta]:
        self._check()
        found = [m for m in self.records.values()
                 if (agents is None or m.agent in agents)
                 and (call_id is None or m.call_id == call_id)
                 and (order_id is None or m.work_order_id == order_id)]
        return sorted(found, key=lambda m: m.ended_at, reverse=True)[:limit]

    async def set_hold(self, recording_id: str, held: bool, reason: str) -> bool:
        self._check()
        meta = self.records.get(recording_id)
        if meta is None:
            return False
        self.records[recording_id] = replace(meta, legal_hold=held, hold_reason=reason)
        return True

    async def set_key(self, meta: RecordingMeta, wrapped: bytes, master: str) -> bool:
        self._check()
        stored = self.records.get(meta.recording_id)
        if stored is None or stored.master != meta.master:
            return False
        self.records[meta.recording_id] = replace(stored, wrapped_key=wrapped, master=master)
        return True

    async def erase(self, due: Sequence[Due], by: str, now: float) -> list[Erased]:
        self._check()
        return [self._erase_one(item, by, now) for item in due]

    def _erase_one(self, item: Due, by: str, now: float) -> Erased:
        stored = self.records.get(item.recording_id)
        if stored is None:
            return Erased.MISSING
        order = self.orders.get(stored.work_order_id or "")
        if stored.legal_hold or (order is not None and order.legal_hold):
            return Erased.HELD
        del self.records[item.recording_id]
        self.deletions.append(deletion_record(item.recording_id, item.recorded_at, item.reason,
                                              by, now))
        return Erased.ERASED

    async def record_deletion(self, recording_id: str, started_at: float, reason: str,
                              by: str, now: float) -> None:
        self._check()
        self.deletions.append(deletion_record(recording_id, started_at, reason, by, now))

    async def count(self) -> int:
        self._check()
        return len(self.records)

    async def retention_batches(self, ended_by: float, batch: int = 1000
                                ) -> AsyncIterator[RetentionBatch]:
        self._check()
        ordered = sorted((m for m in self.records.values() if m.ended_at <= ended_by),
                         key=lambda m: m.ended_at)
        for start in range(0, len(ordered), batch):
            metas = ordered[start:start + batch]
            orders = {m.work_order_id: self.orders[m.work_order_id] for m in metas
                      if m.work_order_id in self.orders and m.work_order_id is not None}
            yield RetentionBatch([m.facts() for m in metas], orders)


def raw_recording(directory: Path, *, legs: int = 2, **fields: Any) -> RawRecording:
    """A finished raw recording of call ``c-1`` (agent101, queue billing) with WAV legs."""
    paths = tuple(write_wav(directory / f"c-1-{n}.wav", tone=440 + 220 * n)
                  for n in range(legs))
    values: dict[str, Any] = dict(call_id="c-1", legs=paths, queue="billing",
                                  category="billing", agent="agent101", started_at=1000.0,
                                  ended_at=1060.0, talk_seconds=60.0, work_order_id="17")
    values.update(fields)
    return RawRecording(**values)


def sample_meta(recording_id: str = "rec-1", **changes: Any) -> RecordingMeta:
    """Metadata of a stored recording of call ``c-1`` by agent101 (order 17, queue billing),
    one paused interval; ``changes`` replace fields."""
    values: dict[str, Any] = dict(
        recording_id=recording_id, call_id="c-1", work_order_id="17", queue="billing",
        category="billing", agent="agent101", started_at=1000.0, ended_at=1060.0,
        talk_seconds=60.0, duration_seconds=59.5, format="opus", size=6, sha256="",
        stored_at=1070.0, wrapped_key=b"", master="",
        paused=(PausedInterval(1010.0, 1020.0, "sensitive-step"),),
    )
    values.update(changes)
    return RecordingMeta(**values)


@dataclass
class FakeControl:
    """AMI's ``MixMonitorMute`` in memory: ``calls`` (channel, on) as sent; ``away`` answers
    False as AMI away does; ``muted`` the channels muted now; ``up`` the channels that still
    exist (a caller transferred on after the flow), asked by ``channel_up``."""

    away: bool = False
    calls: list[tuple[str, bool]] = field(default_factory=list)
    muted: set[str] = field(default_factory=set)
    up: set[str] = field(default_factory=set)

    async def channel_up(self, channel: str) -> bool | None:
        return None if self.away else channel in self.up

    async def mute(self, channel: str, on: bool) -> bool:
        self.calls.append((channel, on))
        if self.away:
            return False
        (self.muted.add if on else self.muted.discard)(channel)
        return True


@dataclass
class FakeIngest:
    """``RecordingIngest`` that keeps what it was given and answers ``stored``."""

    raws: list[RawRecording] = field(default_factory=list)

    async def ingest(self, raw: RawRecording) -> Ingested:
        self.raws.append(raw)
        return Ingested(raw.recording_id, IngestOutcome.STORED)
