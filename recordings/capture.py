"""The seam between capture (MixMonitor in Asterisk) and everything after the raw file.

Capture builds one :class:`RawRecording` per recorded call once MixMonitor has closed its
file(s) (after hangup) and hands it to :meth:`RecordingIngest.ingest`. From that call on the
raw files belong to the ingest side: they are transcoded, encrypted, verified and removed, or
moved into the protected retry area; capture neither reads nor deletes them again.

``ingest`` never raises for a fault of its own (disk full, ffmpeg failing, the master key
missing, Redis away): it answers an :class:`Ingested` whose ``outcome`` says what became of
the recording, and raises the alarm itself. So a call never fails because of its recording.
It is a coroutine on the reactor's asyncio loop (call it through ``ivr.aio.deferred``); the
CPU work runs in a worker thread.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

__all__ = [
    "IngestOutcome",
    "Ingested",
    "PausedInterval",
    "RawRecording",
    "RecordingIngest",
    "new_recording_id",
]


def new_recording_id() -> str:
    """A fresh recording id (``rec-`` + 32 hex digits): capture may choose it at
    ``RECORDSTART`` and pass it in :attr:`RawRecording.recording_id`."""
    return "rec-" + uuid.uuid4().hex


@dataclass(frozen=True)
class PausedInterval:
    """A stretch of the call in which recording was muted (its audio is silence).

    ``start``/``end``: epoch seconds; ``reason``: ``sensitive-step`` (a menu step marked
    ``sensitive: true``), ``agent`` or ``supervisor`` (paused through the API)."""

    start: float
    end: float
    reason: str


@dataclass(frozen=True)
class RawRecording:
    """A finished raw recording as MixMonitor left it.

    ``legs``: one WAV (one stereo file, or a mono mix), or two mono WAVs, the caller's
    (MixMonitor ``r()``) then the agent's (``t()``), which become the left and right channel.
    Times are epoch seconds; ``talk_seconds`` is the talk time the routing side measured
    (bridge to hangup), which the duration is checked against.
    """

    call_id: str
    legs: tuple[Path, ...]
    queue: str
    category: str
    agent: str
    started_at: float
    ended_at: float
    talk_seconds: float
    work_order_id: str | None = None
    paused: tuple[PausedInterval, ...] = ()
    recording_id: str = field(default_factory=new_recording_id)
    leg: str = "call"  # or "callback": the call back to the caller (same call id and order)

    def __post_init__(self) -> None:
        if not 1 <= len(self.legs) <= 2:
            raise ValueError(f"recording of call {self.call_id}: one or two legs, "
                             f"not {len(self.legs)}")
        if self.ended_at < self.started_at:
            raise ValueError(f"recording of call {self.call_id}: ends before it starts")


class IngestOutcome(StrEnum):
    STORED = "stored"  # encrypted, verified, stored; the raw files are gone
    RETRYING = "retrying"  # kept only in the protected retry area; alarm raised
    DROPPED = "dropped"  # given up past the retry limit; raw files gone, deletion record


@dataclass(frozen=True)
class Ingested:
    """What became of one recording; ``detail`` says why for anything but ``stored``."""

    recording_id: str
    outcome: IngestOutcome
    detail: str = ""


class RecordingIngest(Protocol):
    """What capture calls once per recorded call (:class:`recordings.pipeline.Pipeline`)."""

    async def ingest(self, raw: RawRecording) -> Ingested: ...
