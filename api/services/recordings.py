"""Recordings through the API: the audited library of :mod:`recordings.library`, with the
request's identity, address, time and stated reason; its refusals as the API's errors."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from access import AccessDenied, Permission, Scope
from api.errors import BadRequest, Forbidden, RecordingNotFound, RecordingUnreadable, Unavailable
from api.routes import Actor, BinaryAnswer
from api.seams import AuditTrail, Teams
from audit.chain import Action
from recordings import library
from recordings.library import RecordingLibrary, Requester
from recordings.recorder import CallRecorder, NotRecording

T = TypeVar("T")


class RecordingService:
    def __init__(self, library: RecordingLibrary) -> None:
        self.library = library

    async def list(self, actor: Actor, reason: str, *, agent: str | None,
                   call_id: str | None, limit: int,
                   order_id: str | None = None) -> list[dict[str, Any]]:
        found = await self._run(actor, self.library.list(
            self._who(actor, reason), agent=agent, call_id=call_id, limit=limit,
            order_id=order_id))
        return [meta.shown() for meta in found]

    async def metadata(self, actor: Actor, reason: str, recording_id: str) -> dict[str, Any]:
        meta = await self._run(actor, self.library.metadata(self._who(actor, reason),
                                                            recording_id))
        return meta.shown()

    async def audio(self, actor: Actor, reason: str, recording_id: str) -> BinaryAnswer:
        playback = await self._run(actor, self.library.open(self._who(actor, reason),
                                                            recording_id))
        return BinaryAnswer(playback.meta.media_type, len(playback.audio), playback.chunks())

    async def hold(self, actor: Actor, reason: str, recording_id: str,
                   held: bool) -> dict[str, Any]:
        who = self._who(actor, reason)
        change = self.library.hold if held else self.library.release
        return (await self._run(actor, change(who, recording_id))).shown()

    @staticmethod
    def _who(actor: Actor, reason: str) -> Requester:
        if actor.identity is None:
            raise AssertionError("recordings routes need a token")
        return Requester(actor.identity, actor.address, actor.now, reason)

    @staticmethod
    async def _run(actor: Actor, step: Awaitable[T]) -> T:
        """The library authorizes itself (against the recording's agent and team); its
        refusals and errors become the API's, and the route counts as authorized."""
        try:
            result = await step
        except AccessDenied as exc:
            actor.authorized = True  # refused by the rules: answered, not forgotten
            raise Forbidden(exc.reason) from None
        except library.RecordingNotFound as exc:
            actor.authorized = True
            raise RecordingNotFound(str(exc).strip("'\"")) from None
        except library.RecordingUnreadable as exc:
            actor.authorized = True
            raise RecordingUnreadable(str(exc)) from None
        except ValueError as exc:
            actor.authorized = True
            raise BadRequest(str(exc)) from None
        actor.authorized = True
        return result


class RecordingPauses:
    """Pause and resume of a call's running recording (AMI ``MixMonitorMute``): the agent on
    the call, or a supervisor of the agent's team (``agents:state``), with a stated reason,
    audited (``recording.pause`` / ``recording.resume``) and on the events stream."""

    def __init__(self, recorder: CallRecorder, audit: AuditTrail, teams: Teams) -> None:
        self.recorder = recorder
        self.audit = audit
        self.teams = teams

    async def change(self, actor: Actor, reason: str, call_id: str,
                     pause: bool) -> dict[str, Any]:
        try:
            rec = self.recorder.running(call_id)
        except NotRecording:
            actor.authorized = True
            raise RecordingNotFound(f"no recording runs on call {call_id}") from None
        try:
            identity = actor.authorize(Permission.AGENT_STATE_CHANGE,
                                       Scope(agent=rec.agent, team=self.teams(rec.agent)))
        except AccessDenied as exc:
            actor.authorized = True
            raise Forbidden(exc.reason) from None
        if len(reason.strip()) < 3:
            raise BadRequest("a stated reason is required to pause or resume a recording")
        role = "agent" if identity.user == rec.agent else "supervisor"
        action = Action.RECORDING_PAUSE if pause else Action.RECORDING_RESUME
        await self.audit.record(
            user=identity.user, role=str(identity.role), action=action, obj=f"call:{call_id}",
            address=actor.address, now=actor.now, reason=reason,
            details={"recording_id": rec.recording_id},
        )
        change = self.recorder.pause if pause else self.recorder.resume
        if not await change(call_id, identity.user, role):
            raise Unavailable(f"the recording of call {call_id} could not be "
                              f"{'paused' if pause else 'resumed'}: AMI is unavailable")
        muted = rec.muted
        return {"call_id": call_id, "recording_id": rec.recording_id,
                "paused": muted is not None, "reason": muted[1] if muted else None}
