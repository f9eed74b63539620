"""Alarms and counters of the recordings' post-processing: never silence.

A fault raises an event on the events stream (``RECORDFAILED``, ``RECORDDROPPED``) and a
Prometheus counter; a stored recording ``RECORDSTORED``, a deleted one ``RECORDDELETED``.
Redis away: the counter and the log still say it (the event is lost, never the call).

================================================  ==========================================
``hotline_recording_faults_total{stage}``         a recording that could not be stored, by
                                                  stage: ``transcode``, ``key``, ``store``,
                                                  ``verify``, ``metadata``, ``retry-area``
``hotline_recordings_stored_total``               recordings stored (encrypted, verified)
``hotline_recordings_dropped_total``              given up past the retry limit
``hotline_recordings_deleted_total{reason}``      deleted by retention (``retention``)
``hotline_recordings_retry_pending``              recordings waiting in the retry area
================================================  ==========================================
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from events import emit

__all__ = ["FAULTS", "Alarms", "StreamAlarms"]

log = logging.getLogger(__name__)

FAULTS = Counter("hotline_recording_faults", "Recordings that could not be stored, by stage",
                 ["stage"])
STORED = Counter("hotline_recordings_stored", "Recordings encrypted, verified and stored")
DROPPED = Counter("hotline_recordings_dropped", "Recordings given up past the retry limit")
DELETED = Counter("hotline_recordings_deleted", "Recordings deleted (crypto-erase)", ["reason"])
RETRY_PENDING = Gauge("hotline_recordings_retry_pending", "Recordings in the retry area")


class Alarms(Protocol):
    """Where the pipeline and retention report (:class:`StreamAlarms`)."""

    async def event(self, kind: str, now: float, **fields: Any) -> None: ...


class StreamAlarms:
    """Events on ``<prefix>events``; a failed write is logged, never raised."""

    def __init__(self, redis: Any, prefix: str = "hotline:") -> None:
        self._redis = redis
        self.prefix = prefix

    async def event(self, kind: str, now: float, **fields: Any) -> None:
        try:
            await emit(self._redis, kind, now, prefix=self.prefix, **fields)
        except Exception as exc:  # Redis away: the counters and this line remain
            log.error("recordings: event %s %s not written (%s)", kind, fields, exc)
