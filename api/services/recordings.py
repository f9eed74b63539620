"""Recordings through the API: the audited library of :mod:`recordings.library`, with the
request's identity, address, time and stated reason; its refusals as the API's errors."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from access import AccessDenied
from api.errors import BadRequest, Forbidden, RecordingNotFound, RecordingUnreadable
from api.routes import Actor, BinaryAnswer
from recordings import library
from recordings.library import RecordingLibrary, Requester

T = TypeVar("T")


class RecordingService:
    def __init__(self, library: RecordingLibrary) -> None:
        self.library = library

    async def list(self, actor: Actor, reason: str, *, agent: str | None,
                   call_id: str | None, limit: int) -> list[dict[str, Any]]:
        found = await self._run(actor, self.library.list(
            self._who(actor, reason), agent=agent, call_id=call_id, limit=limit))
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
