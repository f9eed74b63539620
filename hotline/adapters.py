"""The asyncio router and work-order store, as the Twisted-side call flows await them.

The flows declare what they need as Protocols (:mod:`ivr.flows.hotline.seams`,
:mod:`callbacks.flow`); the live router and the store are asyncio code on ``redis.asyncio``,
whose coroutines must run as asyncio Tasks (see :mod:`ivr.aio`). Each adapter method runs
one coroutine that way and hands the flow a Deferred. The adapters subclass the Protocols,
so the type checker holds both sides to the same signatures.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from callbacks.flow import CallbackOrders, CallbackRouter
from ivr.aio import deferred
from ivr.flows.hotline.seams import Recorder, Router, WorkOrders
from recordings.recorder import CallRecorder
from recordings.schema import QueueCapture
from routing.core import Assignment
from routing.live import Callback, CallRequest, CallStatus, LiveRouter, Offer, QueueEntry
from workorders.model import WorkOrder
from workorders.store import WorkOrderStore


class RouterOnReactor(Router, CallbackRouter):
    """:class:`routing.live.LiveRouter` for the hotline and callback flows."""

    def __init__(self, router: LiveRouter) -> None:
        self._router = router

    def enqueue(self, call: CallRequest) -> Deferred[QueueEntry]:
        return deferred(self._router.enqueue(call))

    def dispatch(self) -> Deferred[list[Assignment]]:
        return deferred(self._router.dispatch())

    def poll(self, call_id: str) -> Deferred[Offer | None]:
        return deferred(self._router.poll(call_id))

    def ring_result(
        self, call_id: str, agent_id: str, outcome: str, at: float | None = None
    ) -> Deferred[bool]:
        return deferred(self._router.ring_result(call_id, agent_id, outcome, at))

    def completed(self, call_id: str, agent_id: str, by: str) -> Deferred[bool]:
        return deferred(self._router.completed(call_id, agent_id, by))

    def abandon(self, call_id: str, stage: str) -> Deferred[bool]:
        return deferred(self._router.abandon(call_id, stage))

    def overflowed(self, call_id: str, destination: str) -> Deferred[bool]:
        return deferred(self._router.overflowed(call_id, destination))

    def status(self, call_id: str) -> Deferred[CallStatus | None]:
        return deferred(self._router.status(call_id))

    def request_callback(self, call_id: str, number: str) -> Deferred[bool]:
        return deferred(self._router.request_callback(call_id, number))

    def waiting_call(self, call_id: str) -> Deferred[dict[str, str] | None]:
        return deferred(self._router.waiting_call(call_id))

    def callback_offer(self, call_id: str) -> Deferred[Callback | None]:
        return deferred(self._router.callback_offer(call_id))

    def callback_step(
        self, call_id: str, agent_id: str, step: str, detail: str | float = ""
    ) -> Deferred[int]:
        return deferred(self._router.callback_step(call_id, agent_id, step, detail))


class WorkOrdersOnReactor(WorkOrders, CallbackOrders):
    """:class:`workorders.store.WorkOrderStore` for the hotline and callback flows."""

    def __init__(self, store: WorkOrderStore) -> None:
        self._store = store

    def create_for_call(
        self, call_id: str, caller_number: str, caller_name: str, now: float, **fields: Any
    ) -> Deferred[WorkOrder]:
        return deferred(
            self._store.create_for_call(call_id, caller_number, caller_name, now, **fields)
        )

    def update(
        self, order_id: str, now: float, event: str, actor: str, **changes: object
    ) -> Deferred[WorkOrder | None]:
        return deferred(self._store.update(order_id, now, event, actor, **changes))

    def get_by_call(self, call_id: str) -> Deferred[WorkOrder | None]:
        return deferred(self._store.get_by_call(call_id))

    def answered(self, call_id: str, agent: str, now: float) -> Deferred[WorkOrder | None]:
        return deferred(self._store.answered(call_id, agent, now))


class RecorderOnReactor(Recorder):
    """:class:`recordings.recorder.CallRecorder` for the hotline flow."""

    def __init__(self, recorder: CallRecorder) -> None:
        self.recorder = recorder

    def policy(self, queue: str) -> QueueCapture:
        return self.recorder.policy(queue)

    def legs_for(self, recording_id: str) -> tuple[str, str]:
        return self.recorder.legs_for(recording_id)

    def started(self, call_id: str, recording_id: str, channel: str, queue: str,
                order_id: str | None, category: str = "", at: float | None = None,
                leg: str = "call") -> Deferred[None]:
        return deferred(self.recorder.started(call_id, recording_id, channel, queue, order_id,
                                              category, at, leg))

    def ringing(self, call_id: str, agent: str, leg: str = "call") -> Deferred[None]:
        return deferred(self.recorder.ringing(call_id, agent, leg))

    def answered(self, call_id: str, agent: str, at: float, until: float,
                 leg: str = "call") -> Deferred[None]:
        return deferred(self.recorder.answered(call_id, agent, at, until, leg))

    def mute(self, call_id: str, reason: str, by: str = "ivr") -> Deferred[bool]:
        return deferred(self.recorder.mute(call_id, reason, by))

    def unmute(self, call_id: str, reason: str, by: str = "ivr") -> Deferred[bool]:
        return deferred(self.recorder.unmute(call_id, reason, by))

    def cut(self, call_id: str) -> Deferred[None]:
        return deferred(self.recorder.cut(call_id))

    def finished(self, call_id: str, leg: str = "call", stopped: bool = False
                 ) -> Deferred[None]:
        return deferred(self.recorder.finished(call_id, leg, stopped))
