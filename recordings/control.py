"""Muting a running MixMonitor (the AMI action ``MixMonitorMute``), and asking whether a
recorded channel is still there (``Getvar``: a transfer may take it on after the flow).

Asterisk 22 has no dialplan application for it (``PauseMonitor`` went with ``Monitor``): the
action makes MixMonitor's audiohook write silence in place, so the file keeps its timing and
the muted stretch is silence, DTMF included (Direction ``both``: caller and agent).

:class:`AmiControl` speaks AMI through panoramisk on the reactor's asyncio loop (the service
runs Twisted's asyncio reactor: one loop). It answers ``False`` whenever the mute cannot be
confirmed (AMI away, login refused, the action failing or timing out): the caller of
:meth:`RecordingControl.mute` must then fail safe (stop the recording), never go on recording.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

__all__ = ["AmiControl", "NoControl", "RecordingControl", "channel_action", "mute_action"]

log = logging.getLogger(__name__)


class RecordingControl(Protocol):
    """What capture needs of Asterisk beyond the AGI (:class:`AmiControl`; tests:
    ``recordings.testing.FakeControl``)."""

    async def mute(self, channel: str, on: bool) -> bool:
        """Mute (``on``) or unmute the MixMonitor on ``channel``; True once Asterisk said so."""
        ...

    async def channel_up(self, channel: str) -> bool | None:
        """Whether ``channel`` still exists in Asterisk; None when that cannot be told (AMI
        away, no answer)."""
        ...


def mute_action(channel: str, on: bool) -> dict[str, str]:
    """The AMI action muting (or unmuting) both directions of ``channel``'s MixMonitor."""
    return {"Action": "MixMonitorMute", "Channel": channel, "Direction": "both",
            "State": "1" if on else "0"}


def channel_action(channel: str) -> dict[str, str]:
    """An AMI action that succeeds while ``channel`` exists and fails with "No such channel"
    once it is gone (``Getvar`` needs only the ``call`` class the service's user has)."""
    return {"Action": "Getvar", "Channel": channel, "Variable": "CHANNEL(state)"}


class AmiControl:
    """AMI over panoramisk. ``manager``: a ``panoramisk.Manager`` (built by :meth:`connect`);
    it reconnects by itself, and until it is logged in every mute answers False."""

    def __init__(self, manager: Any, timeout_s: float = 2.0) -> None:
        self.manager = manager
        self.timeout_s = timeout_s

    @classmethod
    def connect(cls, host: str, port: int, username: str, secret: str,
                timeout_s: float = 2.0) -> AmiControl:
        """Log in to AMI now (in the background: the service starts even with AMI away)."""
        from panoramisk import Manager

        manager = Manager(loop=asyncio.get_event_loop(), host=host, port=port,
                          username=username, secret=secret, events="off", ping_delay=10,
                          reconnect_timeout=2)
        manager.connect()
        return cls(manager, timeout_s)

    async def mute(self, channel: str, on: bool) -> bool:
        try:
            reply = await asyncio.wait_for(
                asyncio.ensure_future(self.manager.send_action(mute_action(channel, on))),
                self.timeout_s)
        except Exception as exc:  # away, not logged in, timed out: the caller fails safe
            log.warning("AMI MixMonitorMute %s on %s failed: %s", on, channel, exc)
            return False
        ok = bool(getattr(reply, "success", False))
        if not ok:
            log.warning("AMI MixMonitorMute %s on %s refused: %s", on, channel, reply)
        return ok

    async def channel_up(self, channel: str) -> bool | None:
        try:
            reply = await asyncio.wait_for(
                asyncio.ensure_future(self.manager.send_action(channel_action(channel))),
                self.timeout_s)
        except Exception as exc:  # away, not logged in, timed out: not known
            log.debug("AMI Getvar on %s failed: %s", channel, exc)
            return None
        if getattr(reply, "success", False):
            return True
        message = reply.get("Message", "") if hasattr(reply, "get") else ""
        return False if "no such channel" in str(message).lower() else None

    def close(self) -> None:
        self.manager.close()


class NoControl:
    """No AMI configured (no secret): every mute answers False, so sensitive steps stop the
    recording instead (fail safe)."""

    async def mute(self, channel: str, on: bool) -> bool:
        return False

    async def channel_up(self, channel: str) -> bool | None:
        return None
