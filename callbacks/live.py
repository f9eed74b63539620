"""Callbacks in the live routing state: the waiting caller's request, the offer to an agent,
each attempt's progress, and the agent's unanswered leg. A mixin of
:class:`routing.live.LiveRouter`, whose scripts and keys it uses.

The caller leaves a number and hangs up; the call stays in the waiting set at its place,
marked ``callback``. When a dispatcher's offer script wins an agent for it (so exactly one
instance places it), that instance originates the agent first; once the agent answers, the
``callback`` flow dials the customer (``callback_step``). A customer who does not answer puts
the call back at its place, due again after the policy's ``retry_delay_s``, until its
``attempts`` are spent. The scripts are ``callbacks/request.lua`` and ``callbacks/step.lua``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from importlib import resources
from typing import Any, Literal, Protocol, overload

from callbacks.policy import CallbackCallerId, CallbackPolicy
from privacy.masking import mask_number
from routing import core
from routing.live_snapshot import _f, _s
from routing.numbers import CALLBACK_NUMBER, opened, sealed
from routing.scripts import Released, ScriptCaller, event_time, lua_source, result

log = logging.getLogger(__name__)

SCRIPTS = {
    "callback_request": lua_source(resources.files("callbacks"), "request"),
    "callback_step": lua_source(resources.files("callbacks"), "step"),
}
"""The callbacks' Lua scripts by the name the router registers them under."""

CALLBACK_CHANNEL = "callback-"
"""ARI channel id prefix of a callback's agent leg (``callback-<call id>``): the channel that
lives while the agent talks with the customer (the customer's first call is long gone)."""


class Requested(StrEnum):
    """``request.lua``: whether the callback was taken."""

    REQUESTED = "requested"
    NOT_WAITING = "not-waiting"  # an agent was offered the call in the meantime


class CallbackVerdict(IntEnum):
    """What became of a callback whose customer did not answer (``customer_failed``).

    Integers for the callers that compared today's numbers (0 refused, 1 retried, 2 given up);
    compare with the names."""

    REFUSED = 0  # not this agent's callback, or not being dialled
    RETRY = 1  # back at its place, due again after the retry delay
    GIVEN_UP = 2  # attempts spent: EXITCALLBACKFAILED, the call left the queue


_AFTER_FAILURE = {
    "refused": CallbackVerdict.REFUSED,
    "retry": CallbackVerdict.RETRY,
    "given-up": CallbackVerdict.GIVEN_UP,
}
"""``step.lua``'s verdicts for ``customer_failed``."""

Step = Literal["agent_answered", "customer_answered", "customer_failed"]


@dataclass(frozen=True)
class Callback:
    """A callback the dispatcher offered to an agent: what the ``callback`` flow needs."""

    call_id: str
    agent_id: str
    number: str
    attempt: int
    ring_timeout_s: float
    caller_id: CallbackCallerId | None = None  # shown to the customer (None: their own)


class Originator(Protocol):
    """What placing a callback asks of Asterisk (``routing.live.Telephony`` has it)."""

    def originate_callback(
        self, call_id: str, agent_endpoint: str, number: str, ring_timeout_s: float
    ) -> Awaitable[Any]: ...


class RouterState(ScriptCaller, Protocol):
    """What the callback methods use of the router they are mixed into."""

    @property
    def telephony(self) -> Originator | None: ...

    def _stats_key(self, queue: str, now: float) -> str: ...
    async def _queue_of(self, call_id: str) -> core.QueueConfig | None: ...
    async def ring_result(
        self, call_id: str, agent_id: str, outcome: str, at: float | None = None
    ) -> bool: ...
    async def callback_offer(self, call_id: str) -> Callback | None: ...


class CallbackRouting:
    """The callback methods of the live router (mixed into ``routing.live.LiveRouter``)."""

    async def request_callback(self: RouterState, call_id: str, number: str) -> bool:
        """The waiting caller leaves ``number`` and hangs up; the call keeps its place.
        False when it is no longer waiting (an agent was offered it in the meantime)."""
        now = self.clock()
        reply = await self._scripts["callback_request"](
            keys=[self._k("call", call_id), self.events_key],
            args=[call_id, sealed(self.numbers, call_id, CALLBACK_NUMBER, number), now,
                  event_time(now)],
        )
        done = result(Requested, reply) is Requested.REQUESTED
        if done:
            self.local_calls.discard(call_id)
        return done

    async def callback_offer(self: RouterState, call_id: str) -> Callback | None:
        """The callback as offered to its agent (``None`` unless it is offered or dialing)."""
        row = await self.redis.hgetall(self._k("call", call_id))
        if _s(row.get(b"callback")) != "1" or _s(row.get(b"status")) not in (
            "offered", "dialing"
        ):
            return None
        queue = self.config().queues.get(_s(row.get(b"queue")))
        policy = queue.callback if queue else CallbackPolicy()
        return Callback(
            call_id=call_id, agent_id=_s(row.get(b"agent")),
            number=opened(self.numbers, call_id, CALLBACK_NUMBER,
                          _s(row.get(b"callback_number"))),
            attempt=int(_f(row.get(b"callback_attempts"))),
            ring_timeout_s=policy.ring_timeout_s,
            caller_id=policy.presented(_s(row.get(b"dialled_number"))),
        )

    @overload
    async def callback_step(
        self, call_id: str, agent_id: str, step: Literal["agent_answered"],
        detail: str | float = "",
    ) -> int: ...

    @overload
    async def callback_step(
        self, call_id: str, agent_id: str, step: Literal["customer_answered"],
        detail: str | float = "",
    ) -> bool: ...

    @overload
    async def callback_step(
        self, call_id: str, agent_id: str, step: Literal["customer_failed"],
        detail: str | float = "",
    ) -> CallbackVerdict: ...

    @overload
    async def callback_step(
        self, call_id: str, agent_id: str, step: str, detail: str | float = ""
    ) -> int: ...

    async def callback_step(
        self: RouterState, call_id: str, agent_id: str, step: str, detail: str | float = ""
    ) -> int:
        """``agent_answered``: the attempt number now dialled (0: refused);
        ``customer_answered`` (detail: when, epoch seconds): whether it was taken;
        ``customer_failed`` (detail: why): a :class:`CallbackVerdict`."""
        now = self.clock()
        queue = await self._queue_of(call_id)
        policy = queue.callback if queue else CallbackPolicy()
        target = queue.service_level if queue else core.ServiceLevelTarget()
        verdict, attempt = await self._scripts["callback_step"](
            keys=[self._k("agent", agent_id), self._k("call", call_id), self._k("waiting"),
                  self._stats_key(queue.name if queue else "?", now), self.events_key],
            args=[agent_id, call_id, step, now, event_time(now), target.threshold_s,
                  policy.attempts, policy.retry_delay_s, detail],
        )
        verdict = _s(verdict)
        if step == "agent_answered":
            return int(attempt) if verdict == "dialing" else 0
        if step == "customer_answered":
            return verdict == "connected"
        try:
            return _AFTER_FAILURE[verdict]
        except KeyError:
            raise ValueError(f"callback step {step!r}: unexpected verdict {verdict!r}") from None

    async def callback_unanswered(self: RouterState, call_id: str) -> bool:
        """The agent's leg of a callback ended unanswered (ARI ``ChannelDestroyed``): if the
        offer still stands the agent is paused missed and the callback is back at its place.
        A no-op once the agent answered, and when another instance already did it."""
        row = await self.redis.hmget(self._k("call", call_id), "status", "agent", "callback")
        status, agent_id, callback = (_s(v) for v in row)
        if status != "offered" or callback != "1":
            return False
        now = self.clock()
        reply = await self._scripts["release"](
            keys=[self._k("agent", agent_id), self._k("call", call_id), self._k("waiting"),
                  self._k("offered"), self.events_key],
            args=[agent_id, call_id, now, event_time(now), "missed"],
        )
        return result(Released, reply) is Released.RELEASED

    async def _place_callback(self: RouterState, call_id: str) -> None:
        """Ring the agent our offer script won for this callback (ARI originate)."""
        offer = await self.callback_offer(call_id)
        if offer is None:
            return
        profile = self.config().agents.get(offer.agent_id)
        if self.telephony is None or profile is None:
            log.warning("callback %s: no way to place it here; left to the sweep", call_id)
            return
        try:
            queue = await self._queue_of(call_id)
            await self.telephony.originate_callback(
                call_id, profile.endpoint, offer.number, queue.ring_timeout_s if queue else 15.0
            )
            log.info("callback %s: ringing agent %s first, then %s", call_id, offer.agent_id,
                     mask_number(offer.number))
        except Exception as exc:  # Asterisk said no: the agent is unreachable
            log.warning("callback %s: originate to %s failed: %s", call_id, profile.endpoint, exc)
            await self.ring_result(call_id, offer.agent_id, "unavailable")
