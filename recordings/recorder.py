"""Capture, live: the recordings running now, their pauses, and what happens after hangup.

The call flow (``ivr.flows.hotline.record``) starts MixMonitor on the caller's channel through
the AGI and tells :class:`CallRecorder` each step: :meth:`~CallRecorder.started`,
:meth:`~CallRecorder.answered` (once per conversation with an agent: a RONA retry adds none,
a transfer keeps the same recording), :meth:`~CallRecorder.mute` /
:meth:`~CallRecorder.unmute` around a sensitive step, :meth:`~CallRecorder.cut` when AMI was
away and the flow stopped MixMonitor instead, :meth:`~CallRecorder.finished` at hangup. The
API pauses and resumes through :meth:`~CallRecorder.pause` / :meth:`~CallRecorder.resume`.

After hangup, off the call path: wait until Asterisk closed the raw legs, check them
(:mod:`recordings.check`), then hand them to ``ingest`` (a call never answered keeps no
recording: the legs are removed and a deletion record written).

Events on the events stream (fields ``call_id``, ``order_id``, ``queue``, ``recording_id``):
``RECORDSTART``, ``RECORDPAUSE`` / ``RECORDRESUME`` (+ ``reason``, ``by``), ``RECORDCUT``,
``RECORDMISSING`` / ``RECORDSHORT`` (+ ``detail``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from recordings.alarms import Alarms
from recordings.capture import Ingested, PausedInterval, RawRecording, RecordingIngest
from recordings.check import CHECKS_FAILED, check, talk_seconds, wav_seconds
from recordings.control import RecordingControl
from recordings.schema import CaptureSettings, QueueCapture

__all__ = ["CALLBACK", "CUT", "CallRecorder", "DeletionRecords", "LiveRecording", "NotRecording"]

log = logging.getLogger(__name__)

CUT = "recording-cut"
"""The paused reason of the stretch from a cut (MixMonitor stopped, AMI away) to hangup."""

CALLBACK = "callback"
"""The leg of a callback's recording: the agent calling the caller back (callbacks.flow)."""


def _key(call_id: str, leg: str) -> str:
    """A running recording's key: the call id, and for a callback ``<call id>/callback``
    (a callback reuses its call's id and may start while that call's flow is ending)."""
    return call_id if leg == "call" else f"{call_id}/{leg}"


class NotRecording(LookupError):
    """No recording runs on that call (the API's pause/resume)."""


class DeletionRecords(Protocol):
    """``recordings.catalog.RedisCatalog``, as capture uses it."""

    async def record_deletion(self, recording_id: str, started_at: float, reason: str,
                              by: str, now: float) -> None: ...


@dataclass
class LiveRecording:
    """One call's recording while it runs. ``legs``: host paths (caller, agent);
    ``talk``: (answer, end) of each conversation; ``muted``: (since, reason) while muted."""

    call_id: str
    recording_id: str
    channel: str
    queue: str
    order_id: str | None
    category: str
    legs: tuple[Path, Path]
    started_at: float
    agent: str = ""
    talk: list[tuple[float, float]] = field(default_factory=list)
    paused: list[PausedInterval] = field(default_factory=list)
    muted: tuple[float, str] | None = None
    cut_at: float | None = None
    leg: str = "call"  # or "callback" (recordings.metadata.RecordingMeta.leg)
    stopped: bool = False  # the flow stopped MixMonitor at its end: no legs to follow


class CallRecorder:
    """``settings``: the capture config in force; ``host_root``: the directory Asterisk sees
    as ``/`` (``asterisk.root``); ``spawn`` runs the after-hangup work off the call path."""

    def __init__(
        self, *, settings: Callable[[], CaptureSettings], control: RecordingControl,
        alarms: Alarms, ingest: RecordingIngest, deletions: DeletionRecords,
        clock: Callable[[], float], host_root: str = "",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        spawn: Callable[[Coroutine[Any, Any, Any]], Any] = asyncio.ensure_future,
    ) -> None:
        self.settings = settings
        self.control = control
        self.alarms = alarms
        self.ingest = ingest
        self.deletions = deletions
        self.clock = clock
        self.host_root = host_root
        self.sleep = sleep
        self.spawn = spawn
        self.live: dict[str, LiveRecording] = {}

    # -- asked by the flow (synchronous) ----------------------------------------------------

    def policy(self, queue: str) -> QueueCapture:
        """The queue's recording policy (``record``: whether its calls are recorded)."""
        return self.settings().for_queue(queue)

    def legs_for(self, recording_id: str) -> tuple[str, str]:
        """The raw legs' paths as Asterisk sees them: caller (``r()``), agent (``t()``)."""
        base = self.settings().raw_dir.rstrip("/")
        return f"{base}/{recording_id}-caller.wav", f"{base}/{recording_id}-agent.wav"

    def _host(self, path: str) -> Path:
        return Path(self.host_root) / path.lstrip("/") if self.host_root else Path(path)

    # -- told by the flow -------------------------------------------------------------------

    async def started(self, call_id: str, recording_id: str, channel: str, queue: str,
                      order_id: str | None, category: str = "", at: float | None = None,
                      leg: str = "call") -> None:
        """``at``: when MixMonitor was started (the files' time zero; default now);
        ``leg``: ``call``, or ``callback`` for the recording of a callback."""
        caller, agent = self.legs_for(recording_id)
        rec = LiveRecording(call_id, recording_id, channel, queue, order_id, category,
                            (self._host(caller), self._host(agent)),
                            self.clock() if at is None else at, leg=leg)
        self.live[_key(call_id, leg)] = rec
        await self._event("RECORDSTART", rec, channel=channel)

    async def ringing(self, call_id: str, agent: str, leg: str = "call") -> None:
        """``agent``'s phone rings for this call: the agent who may pause it (the API)."""
        rec = self.live.get(_key(call_id, leg))
        if rec is not None:
            rec.agent = agent

    async def answered(self, call_id: str, agent: str, at: float, until: float,
                       leg: str = "call") -> None:
        """A conversation with ``agent`` from ``at`` to ``until`` (Dial returned)."""
        rec = self.live.get(_key(call_id, leg))
        if rec is not None:
            rec.agent = agent
            rec.talk.append((at, max(at, until)))

    async def mute(self, call_id: str, reason: str, by: str = "ivr") -> bool:
        """Mute the call's recording; False when AMI could not (the flow then cuts it).
        Already muted (an agent's pause before the sensitive step): stays muted, True."""
        rec = self._running(call_id)
        if rec is None or rec.cut_at is not None:
            return True  # nothing records
        if rec.muted is not None:
            return True
        if not await self.control.mute(rec.channel, True):
            return False
        rec.muted = (self.clock(), reason)
        await self._event("RECORDPAUSE", rec, reason=reason, by=by)
        return True

    async def unmute(self, call_id: str, reason: str, by: str = "ivr") -> bool:
        """End the pause of ``reason`` (another reason's pause stays); the interval is kept
        even when AMI fails (the caller hung up in it: the channel is gone)."""
        rec = self._running(call_id)
        if rec is None or rec.muted is None or rec.muted[1] != reason:
            return False
        # Stamped before the AMI round trip, as the start is after it: every interval the
        # metadata lists is silent in the file from end to end.
        until = self.clock()
        ok = await self.control.mute(rec.channel, False)
        self._close_pause(rec, until)
        await self._event("RECORDRESUME", rec, reason=reason, by=by)
        return ok

    async def cut(self, call_id: str) -> None:
        """MixMonitor was stopped through the AGI (AMI away before a sensitive step): the
        file ends here, and the metadata says so (a paused stretch ``recording-cut``)."""
        rec = self.live.get(call_id)
        if rec is None or rec.cut_at is not None:
            return
        now = self.clock()
        self._close_pause(rec, now)
        rec.cut_at = now
        await self._event("RECORDCUT", rec, reason="ami-unavailable")

    async def finished(self, call_id: str, leg: str = "call", stopped: bool = False) -> None:
        """The caller hung up (the flow ended): check and ingest, off the call path.
        ``stopped``: the flow stopped MixMonitor itself (the caller goes on elsewhere,
        unrecorded), so the legs are not followed after it, whatever the channel does."""
        rec = self.live.pop(_key(call_id, leg), None)
        if rec is None:
            return
        rec.stopped = stopped
        ended = self.clock()
        self._close_pause(rec, ended)
        if rec.cut_at is not None:
            rec.paused.append(PausedInterval(rec.cut_at, ended, CUT))
        self.spawn(self.after_hangup(rec, ended))

    # -- the API ----------------------------------------------------------------------------

    def running(self, call_id: str) -> LiveRecording:
        """The call's running recording (its callback's while one runs); raises
        :class:`NotRecording`."""
        rec = self._running(call_id)
        if rec is None:
            raise NotRecording(call_id)
        return rec

    def _running(self, call_id: str) -> LiveRecording | None:
        # A callback's recording is the one an agent talks in; the call's, if still live,
        # is at its goodbye (the callback was asked for on it).
        return self.live.get(_key(call_id, CALLBACK)) or self.live.get(call_id)

    async def pause(self, call_id: str, by: str, role: str) -> bool:
        """An agent or supervisor pauses the call's recording; raises :class:`NotRecording`."""
        self.running(call_id)
        return await self.mute(call_id, role, by)

    async def resume(self, call_id: str, by: str, role: str) -> bool:
        rec = self.running(call_id)
        if rec.muted is None:
            return True
        return await self.unmute(call_id, rec.muted[1], by)

    # -- after hangup -----------------------------------------------------------------------

    async def after_hangup(self, rec: LiveRecording, ended: float) -> Ingested | None:
        """Wait for the legs to be closed, check them, ingest (or discard); never raises."""
        try:
            return await self._after_hangup(rec, ended)
        except Exception:
            log.exception("recording %s of call %s: after hangup", rec.recording_id,
                          rec.call_id)
            return None

    async def _after_hangup(self, rec: LiveRecording, ended: float) -> Ingested | None:
        seconds = await self._closed_legs(rec)
        longest = max((s for s in seconds if s is not None), default=0.0)
        if rec.started_at + longest > ended + 1.0:
            # The caller's channel outlived the flow (a transfer): the recording ends with it.
            log.info("recording %s of call %s went on %.0f s after the flow ended",
                     rec.recording_id, rec.call_id, rec.started_at + longest - ended)
            ended = rec.started_at + longest
        if not rec.talk:  # never answered: nothing to keep
            for leg in rec.legs:
                with contextlib.suppress(OSError):
                    os.unlink(leg)
            await self.deletions.record_deletion(rec.recording_id, rec.started_at,
                                                 "never-answered", "capture", self.clock())
            return None
        talk = talk_seconds(rec.talk, rec.cut_at)
        verdict = check(seconds, talk, self.settings().tolerance_s)
        if verdict.problem is not None:
            CHECKS_FAILED.labels(verdict.problem).inc()
            log.error("recording %s of call %s %s: %s", rec.recording_id, rec.call_id,
                      verdict.problem, verdict.detail)
            await self._event("RECORD" + verdict.problem.upper(), rec, detail=verdict.detail,
                              talk=round(talk, 3))
        present = tuple(leg for leg, s in zip(rec.legs, seconds, strict=True) if s is not None)
        if not present:
            return None
        return await self.ingest.ingest(RawRecording(
            call_id=rec.call_id, legs=present, queue=rec.queue, category=rec.category,
            agent=rec.agent, started_at=rec.started_at, ended_at=ended, talk_seconds=talk,
            work_order_id=rec.order_id, paused=tuple(rec.paused),
            recording_id=rec.recording_id, leg=rec.leg,
        ))

    async def _closed_legs(self, rec: LiveRecording) -> list[float | None]:
        """Each leg's seconds once its channel is gone and its size stopped growing
        (Asterisk closes the files a moment after hangup), or what is there after
        ``close_wait_s``.

        The flow may end while the recorded channel does not: an agent's blind transfer
        sends the caller elsewhere in the dialplan, and the AGI sees a hangup. MixMonitor
        runs on that channel, so the recording goes on: it is followed while the channel
        exists (AMI says so) or, AMI away, while the legs still grow, at most
        ``follow_max_s``; never cut at the flow's end, where it would be split or lost. The
        channel is asked, not only the files: right after a transfer nothing may be written
        for a while (the transfer target rings; MixMonitor writes only frames that pass)."""
        legs = rec.legs
        step, waited, followed = 0.5, 0.0, 0.0  # waited: since the channel was last seen
        before: list[float | None] = [wav_seconds(leg) for leg in legs]
        while True:
            await self.sleep(step)
            waited += step
            followed += step
            now = [wav_seconds(leg) for leg in legs]
            settings = self.settings()
            if (not rec.stopped and followed < settings.follow_max_s
                    and await self._channel_up(rec)):
                before, step, waited = now, 1.0, 0.0
                continue
            step = 0.5
            if now == before and all(s is not None for s in now):
                return now
            growing = any(n is not None and (b is None or n > b)
                          for n, b in zip(now, before, strict=True))
            before = now
            if (followed >= settings.follow_max_s if growing
                    else waited >= settings.close_wait_s):
                return before

    async def _channel_up(self, rec: LiveRecording) -> bool:
        """Whether the recorded channel is known to be still there (never raises)."""
        if not rec.channel:
            return False
        try:
            return bool(await self.control.channel_up(rec.channel))
        except Exception:
            log.exception("recording %s: asking for channel %s", rec.recording_id,
                          rec.channel)
            return False

    # -- inside -----------------------------------------------------------------------------

    @staticmethod
    def _close_pause(rec: LiveRecording, at: float) -> None:
        if rec.muted is not None:
            since, reason = rec.muted
            rec.paused.append(PausedInterval(since, max(since, at), reason))
            rec.muted = None

    async def _event(self, kind: str, rec: LiveRecording, **more: Any) -> None:
        if rec.leg != "call":
            more["leg"] = rec.leg
        await self.alarms.event(kind, self.clock(), call_id=rec.call_id,
                                order_id=rec.order_id, queue=rec.queue,
                                recording_id=rec.recording_id, **more)
