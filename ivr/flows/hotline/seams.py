"""What the hotline flow asks of the rest of the service, and nothing more.

In the service these are adapters that run the asyncio router and store on the reactor
(:mod:`hotline.adapters`); in unit tests, the fakes (``routing.live_fakes.FakeRouter``,
``workorders.testing.InMemoryWorkOrders``). Each method returns something the flow awaits:
a Deferred from an adapter, a coroutine from a fake.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from ivr.agi import AGISession
from recordings.schema import QueueCapture
from routing.live import CallRequest, CallStatus, Offer, QueueEntry
from workorders.model import WorkOrder


class Clock(Protocol):
    """The reactor's time (a ``task.Clock`` in tests)."""

    def seconds(self) -> float: ...


class WorkOrders(Protocol):
    """``workorders.store.WorkOrderStore``, as the flow uses it."""

    def create_for_call(
        self, call_id: str, caller_number: str, caller_name: str, now: float, **fields: Any
    ) -> Awaitable[WorkOrder]: ...

    def update(
        self, order_id: str, now: float, event: str, actor: str, **changes: object
    ) -> Awaitable[WorkOrder | None]: ...

    def get_by_call(self, call_id: str) -> Awaitable[WorkOrder | None]: ...

    def answered(self, call_id: str, agent: str, now: float) -> Awaitable[WorkOrder | None]:
        """The agent who answered takes the call's order (assign, start); idempotent per
        call and agent (``WorkOrderStore.answered``)."""
        ...


class Router(Protocol):
    """Live routing (``routing.live.LiveRouter``), as the flow uses it."""

    def enqueue(self, call: CallRequest) -> Awaitable[QueueEntry]: ...

    def dispatch(self) -> Awaitable[object]:
        """One dispatcher round now; the flow only waits for it to be done."""
        ...

    def poll(self, call_id: str) -> Awaitable[Offer | None]: ...

    def ring_result(
        self, call_id: str, agent_id: str, outcome: str, at: float | None = None
    ) -> Awaitable[bool]: ...

    def completed(self, call_id: str, agent_id: str, by: str) -> Awaitable[bool]: ...

    def abandon(self, call_id: str, stage: str) -> Awaitable[bool]: ...

    def overflowed(self, call_id: str, destination: str) -> Awaitable[bool]:
        """The call left the queue for ``destination`` without the store's offer (the store
        stayed away past the flow's grace or the queue's wait)."""
        ...

    def status(self, call_id: str) -> Awaitable[CallStatus | None]: ...

    def request_callback(self, call_id: str, number: str) -> Awaitable[bool]: ...

    def waiting_call(self, call_id: str) -> Awaitable[dict[str, str] | None]: ...


class Speech(Protocol):
    """``ivr.speech.gateway.SpeechGateway``: a request dict (``ivr.speech.gateway.Request``),
    the digits pressed instead of words, or None for the menu."""

    def listen(
        self, session: AGISession, language: str | None = None
    ) -> Awaitable[dict[str, Any] | str | None]: ...


class Recorder(Protocol):
    """``recordings.recorder.CallRecorder``, as the flow uses it (the service's adapter runs
    each coroutine on the asyncio loop and hands back a Deferred)."""

    def policy(self, queue: str) -> QueueCapture: ...

    def legs_for(self, recording_id: str) -> tuple[str, str]: ...

    def started(self, call_id: str, recording_id: str, channel: str, queue: str,
                order_id: str | None, category: str = "", at: float | None = None,
                leg: str = "call") -> Awaitable[None]: ...

    def ringing(self, call_id: str, agent: str, leg: str = "call") -> Awaitable[None]: ...

    def answered(self, call_id: str, agent: str, at: float, until: float,
                 leg: str = "call") -> Awaitable[None]: ...

    def mute(self, call_id: str, reason: str, by: str = "ivr") -> Awaitable[bool]: ...

    def unmute(self, call_id: str, reason: str, by: str = "ivr") -> Awaitable[bool]: ...

    def cut(self, call_id: str) -> Awaitable[None]: ...

    def finished(self, call_id: str, leg: str = "call", stopped: bool = False
                 ) -> Awaitable[None]: ...
