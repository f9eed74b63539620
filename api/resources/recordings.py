"""``/api/recordings``: list, metadata, decrypted audio, legal hold and release. Each call
states a ``reason`` (query parameter, required) and is audited (``recording.*``); the
library authorizes against the recording's agent and team (``recordings:read``, or
``recordings:hold``)."""

from __future__ import annotations

from typing import Any

from access import Permission
from api.errors import RecordingNotFound, RecordingUnreadable, Unavailable
from api.routes import BinaryAnswer, Call, Route
from api.schemas import (
    RecordingAnswer,
    RecordingCallPath,
    RecordingList,
    RecordingPath,
    RecordingPauseAnswer,
    RecordingReasonQuery,
    RecordingsQuery,
)
from api.services.recordings import RecordingPauses, RecordingService

AUDIO = "audio/ogg"  # documented type; each answer names its own (audio/ogg or audio/mpeg)


def routes(recordings: RecordingService) -> list[Route]:
    async def listing(call: Call) -> list[dict[str, Any]]:
        assert isinstance(call.query, RecordingsQuery)
        q = call.query
        return await recordings.list(call.actor, q.reason, agent=q.agent, call_id=q.call_id,
                                     limit=q.limit, order_id=q.work_order_id)

    async def metadata(call: Call) -> dict[str, Any]:
        assert isinstance(call.path, RecordingPath)
        assert isinstance(call.query, RecordingReasonQuery)
        return await recordings.metadata(call.actor, call.query.reason, call.path.recording_id)

    async def audio(call: Call) -> BinaryAnswer:
        assert isinstance(call.path, RecordingPath)
        assert isinstance(call.query, RecordingReasonQuery)
        return await recordings.audio(call.actor, call.query.reason, call.path.recording_id)

    def holding(held: bool) -> Any:
        async def change(call: Call) -> dict[str, Any]:
            assert isinstance(call.path, RecordingPath)
            assert isinstance(call.query, RecordingReasonQuery)
            return await recordings.hold(call.actor, call.query.reason,
                                         call.path.recording_id, held)
        return change

    def one(method: str, suffix: str, permission: Permission, handler: Any, summary: str,
            response: Any, audit: str, **more: Any) -> Route:
        return Route(method, "/api/recordings/{recording_id}" + suffix, permission, handler,
                     summary, response, path_schema=RecordingPath,
                     query_schema=RecordingReasonQuery, scoped=True, audit=audit, **more)

    read, hold = Permission.RECORDINGS_READ, Permission.RECORDINGS_HOLD
    return [
        Route("GET", "/api/recordings", read, listing, "The newest recordings one may see",
              RecordingList, query_schema=RecordingsQuery, scoped=True,
              audit="recording.list"),
        one("GET", "", read, metadata, "One recording's metadata", RecordingAnswer,
            "recording.read", errors=(RecordingNotFound,)),
        one("GET", "/audio", read, audio, "One recording's decrypted audio, streamed", bytes,
            "recording.play", media_type=AUDIO,
            errors=(RecordingNotFound, RecordingUnreadable)),
        one("POST", "/hold", hold, holding(True), "Put a recording on legal hold",
            RecordingAnswer, "recording.hold", errors=(RecordingNotFound,)),
        one("POST", "/release", hold, holding(False), "Release a recording's legal hold",
            RecordingAnswer, "recording.release", errors=(RecordingNotFound,)),
    ]


def pause_routes(pauses: RecordingPauses) -> list[Route]:
    """``POST /api/recordings/calls/{call_id}/pause`` and ``.../resume``: the running
    recording of a call in progress (the agent on it, or a supervisor of the team)."""

    def changing(pause: bool) -> Any:
        async def change(call: Call) -> dict[str, Any]:
            assert isinstance(call.path, RecordingCallPath)
            assert isinstance(call.query, RecordingReasonQuery)
            return await pauses.change(call.actor, call.query.reason, call.path.call_id, pause)
        return change

    return [
        Route("POST", "/api/recordings/calls/{call_id}/" + verb, Permission.AGENT_STATE_CHANGE,
              changing(verb == "pause"), summary, RecordingPauseAnswer,
              path_schema=RecordingCallPath, query_schema=RecordingReasonQuery, scoped=True,
              audit=f"recording.{verb}", errors=(RecordingNotFound, Unavailable))
        for verb, summary in (("pause", "Pause (mute) a call's running recording"),
                              ("resume", "Resume a call's paused recording"))
    ]
