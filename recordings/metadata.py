"""A stored recording's metadata, as data: what the catalog keeps in Redis, what the API and
``ivr recordings`` show (never the wrapped key), and what retention reads.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from recordings.capture import PausedInterval
from recordings.crypto import SealedRecording
from recordings.retention import RetentionFacts

__all__ = ["MEDIA_TYPES", "RecordingMeta", "iso"]

MEDIA_TYPES = {"opus": "audio/ogg; codecs=opus", "mp3": "audio/mpeg"}


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


@dataclass(frozen=True)
class RecordingMeta:
    """One stored recording. ``sha256``: of the stored (sealed) object, checked before it is
    opened; ``wrapped_key``/``master``: its data key, wrapped by that master key version."""

    recording_id: str
    call_id: str
    work_order_id: str | None
    queue: str
    category: str
    agent: str
    started_at: float
    ended_at: float
    talk_seconds: float
    duration_seconds: float
    format: str
    size: int
    sha256: str
    stored_at: float
    wrapped_key: bytes = field(repr=False)
    master: str
    paused: tuple[PausedInterval, ...] = ()
    legal_hold: bool = False
    hold_reason: str = ""
    # "call" (the caller's call) or "callback" (the agent calling the caller back): one
    # recording per call leg, linked by ``call_id`` and ``work_order_id``.
    leg: str = "call"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    def sealed(self, ciphertext: bytes) -> SealedRecording:
        return SealedRecording(self.recording_id, ciphertext, self.wrapped_key, self.call_id,
                               self.master)

    def with_key(self, sealed: SealedRecording) -> RecordingMeta:
        return replace(self, wrapped_key=sealed.wrapped_key, master=sealed.master)

    def facts(self) -> RetentionFacts:
        return RetentionFacts(self.recording_id, self.ended_at, self.category, self.queue,
                              self.work_order_id, self.legal_hold)

    def shown(self) -> dict[str, Any]:
        """What people see: every field but the key, times as ISO-8601 UTC."""
        return {
            "id": self.recording_id, "call_id": self.call_id,
            "work_order_id": self.work_order_id, "queue": self.queue,
            "category": self.category, "agent": self.agent,
            "started_at": iso(self.started_at), "ended_at": iso(self.ended_at),
            "talk_seconds": self.talk_seconds, "duration_seconds": self.duration_seconds,
            "format": self.format, "media_type": self.media_type, "size": self.size,
            "sha256": self.sha256, "stored_at": iso(self.stored_at),
            "paused": [{"start": iso(p.start), "end": iso(p.end), "reason": p.reason}
                       for p in self.paused],
            "legal_hold": self.legal_hold, "hold_reason": self.hold_reason, "leg": self.leg,
        }

    def to_hash(self) -> dict[str, str]:
        """The Redis hash (docs/contracts.md "Recordings"); empty values left out."""
        flat = {
            "call_id": self.call_id, "work_order_id": self.work_order_id or "",
            "queue": self.queue, "category": self.category, "agent": self.agent,
            "started_at": repr(self.started_at), "ended_at": repr(self.ended_at),
            "talk_seconds": repr(self.talk_seconds),
            "duration_seconds": repr(self.duration_seconds), "format": self.format,
            "size": str(self.size), "sha256": self.sha256, "stored_at": repr(self.stored_at),
            "wrapped_key": base64.b64encode(self.wrapped_key).decode(), "master": self.master,
            "paused": json.dumps([[p.start, p.end, p.reason] for p in self.paused]),
            "legal_hold": "1" if self.legal_hold else "", "hold_reason": self.hold_reason,
            "leg": self.leg,
        }
        return {name: value for name, value in flat.items() if value}

    @classmethod
    def from_hash(cls, recording_id: str, flat: Mapping[str, str]) -> RecordingMeta:
        return cls(
            recording_id=recording_id, call_id=flat["call_id"],
            work_order_id=flat.get("work_order_id") or None, queue=flat.get("queue", ""),
            category=flat.get("category", ""), agent=flat.get("agent", ""),
            started_at=float(flat["started_at"]), ended_at=float(flat["ended_at"]),
            talk_seconds=float(flat.get("talk_seconds", 0)),
            duration_seconds=float(flat.get("duration_seconds", 0)), format=flat["format"],
            size=int(flat.get("size", 0)), sha256=flat.get("sha256", ""),
            stored_at=float(flat.get("stored_at", 0)),
            wrapped_key=base64.b64decode(flat.get("wrapped_key", "")),
            master=flat.get("master", ""),
            paused=tuple(PausedInterval(float(s), float(e), str(r))
                         for s, e, r in json.loads(flat.get("paused", "[]"))),
            legal_hold=flat.get("legal_hold") == "1", hold_reason=flat.get("hold_reason", ""),
            leg=flat.get("leg") or "call",
        )
