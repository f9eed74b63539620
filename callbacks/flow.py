"""The ``callback`` FastAGI flow: the agent answered a callback, now the customer is dialled.

Agent first, as call centers do it: the agent's phone rings with the customer's number shown,
and the caller's name from the work order if there is one (``"Callback: <name>" <number>``,
:func:`agent_display`, originated by :mod:`callbacks.telephony`); once the agent answers, the
agent's channel runs ``s@hotline-callback`` (asterisk/extensions.conf), which hands it to
``agi://<instance>/callback,<call id>``; this flow dials
the customer over the trunk and bridges them, ignoring connected-line updates (Dial ``I``):
otherwise Dial would re-INVITE the agent's phone with the customer leg's default identity,
the extension ``s``, in place of the customer. The number dialled is the one the caller
confirmed on hold (their caller ID or one they keyed in, :mod:`callbacks.dialogue`).
The customer's phone shows the hotline, not their own number (the agent leg's caller ID,
which Dial would pass on): the queue's ``callback.caller_id``, else the number the caller
dialled (Dial ``f(...)``, :func:`customer_display`).
A customer who does not answer puts the call back at its place in line (retried as the
queue's ``callback`` settings say).
A recorded queue records the callback too, from right before the customer is dialled
(``ivr.flows.hotline.record.CallbackRecording``): one more recording of the call's id and order.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from callbacks.live import CallbackVerdict
from callerid import DIALABLE, PRESENTABLE_NUMBER, displayable_name, presentable_name
from ivr.agi import NO_TIMEOUT, AGISession, ChannelHungUp
from ivr.flows.hotline.seams import Clock
from privacy.masking import mask_name
from routing.core import CallbackCallerId, RoutingConfig
from routing.live import Callback
from workorders.model import WorkOrder

log = logging.getLogger(__name__)


class CallbackRouter(Protocol):
    """Live routing (``routing.live.LiveRouter``), as the callback flow uses it."""

    def callback_offer(self, call_id: str) -> Awaitable[Callback | None]: ...

    def callback_step(
        self, call_id: str, agent_id: str, step: str, detail: str | float = ""
    ) -> Awaitable[int]: ...

    def completed(self, call_id: str, agent_id: str, by: str) -> Awaitable[bool]: ...


class CallbackOrders(Protocol):
    """``workorders.store.WorkOrderStore``, as the callback flow uses it."""

    def get_by_call(self, call_id: str) -> Awaitable[WorkOrder | None]: ...

    def update(
        self, order_id: str, now: float, event: str, actor: str, **changes: object
    ) -> Awaitable[WorkOrder | None]: ...


class CallbackRecorder(Protocol):
    """``ivr.flows.hotline.record.CallbackRecording``, as the callback flow uses it."""

    def start(self, session: AGISession, call_id: str, agent: str,
              order: WorkOrder | None) -> Awaitable[str | None]: ...

    def answered(self, call_id: str, agent: str, at: float, until: float
                 ) -> Awaitable[None]: ...

    def end(self, call_id: str) -> Awaitable[None]: ...


# What ``LiveRouter.callback_step``'s answers mean (``callbacks.live.CallbackVerdict``), here
# only.


def _attempt(answer: int) -> int:
    """``agent_answered``: the attempt's number, 0 when refused (the sweep released it)."""
    return answer


def _given_up(verdict: int) -> bool:
    """``customer_failed``: the attempts are spent (else it will be retried)."""
    return verdict == CallbackVerdict.GIVEN_UP


@dataclass
class CallbackFlow:
    """``agi://host/callback,<call id>`` on the agent's channel, after the agent answered."""

    router: CallbackRouter
    workorders: CallbackOrders
    clock: Clock
    trunk_variable: str = "HOTLINE_CALLBACK_TRUNK"
    recording: CallbackRecorder | None = None  # None: callbacks are not recorded

    async def __call__(self, session: AGISession) -> None:
        call_id = session.args[0] if session.args else ""
        offer = await self.router.callback_offer(call_id)
        if offer is None:
            log.warning("callback %r: not offered to anyone (taken over or given up)", call_id)
            await session.set_variable("HOTLINE_NEXT", "done")
            return
        attempt = _attempt(
            await self.router.callback_step(call_id, offer.agent_id, "agent_answered")
        )
        await session.set_variable("HOTLINE_NEXT", "done")
        if not attempt:
            return  # the sweep released it meanwhile
        order = await self.workorders.get_by_call(call_id)
        note = f"callback attempt {attempt}: agent {offer.agent_id} answered, dialling customer"
        await self._record(order, "note", "router", text=note)
        if not DIALABLE.match(offer.number):
            await self._failed(call_id, offer, order, "undialable number")
            return
        trunk = await session.get_variable(self.trunk_variable) or "customer"
        recording = await self._recording(session, call_id, offer.agent_id, order)
        try:
            await self._dial(session, call_id, offer, order, trunk, recording)
        finally:
            if recording is not None:
                await recording.end(call_id)

    async def _dial(self, session: AGISession, call_id: str, offer: Callback,
                    order: WorkOrder | None, trunk: str,
                    recording: CallbackRecorder | None) -> None:
        started = self.clock.seconds()
        agent_gone = False
        try:
            await session.exec_(
                "Dial", f"PJSIP/{offer.number}@{trunk}", str(int(offer.ring_timeout_s)),
                "gIU(hotline-answered)" + customer_display(offer.caller_id),
                timeout=NO_TIMEOUT,
            )
        except ChannelHungUp:
            agent_gone = True
        status = (await session.get_variable("DIALSTATUS")) or ""
        talked = float((await session.get_variable("ANSWEREDTIME")) or 0)
        # End the agent's leg before the agent is free again, so the next offer never finds
        # the phone still in this call.
        if not agent_gone:
            with contextlib.suppress(ChannelHungUp):
                await session.hangup()
        if status != "ANSWER":
            await self._failed(call_id, offer, order,
                               "agent hung up" if agent_gone else f"customer {status.lower()}")
            return
        answered_at = max(started, self.clock.seconds() - talked)
        if recording is not None:
            await recording.answered(call_id, offer.agent_id, answered_at, self.clock.seconds())
        await self.router.callback_step(call_id, offer.agent_id, "customer_answered", answered_at)
        await self._record(order, "assign", "router", agent=offer.agent_id)
        await self._record(order, "start", offer.agent_id)
        await self.router.completed(call_id, offer.agent_id, by="caller" if not agent_gone
                                    else "agent")
        await self._record(order, "note", offer.agent_id,
                           text=f"callback connected; conversation {talked:.0f} s")

    async def _recording(self, session: AGISession, call_id: str, agent: str,
                         order: WorkOrder | None) -> CallbackRecorder | None:
        """The recording started for this callback, or None (not recorded, or it failed: a
        recording never stops the callback; an agent gone meanwhile shows at Dial)."""
        if self.recording is None:
            return None
        try:
            started = await self.recording.start(session, call_id, agent, order)
        except Exception as exc:
            log.warning("callback %s: recording not started (%s)", call_id, exc)
            return None
        return self.recording if started is not None else None

    async def _failed(
        self, call_id: str, offer: Callback, order: WorkOrder | None, why: str
    ) -> None:
        given_up = _given_up(
            await self.router.callback_step(call_id, offer.agent_id, "customer_failed", why)
        )
        text = f"callback attempt failed: {why}" + (
            "; attempts spent, given up" if given_up else "; will retry")
        await self._record(order, "note", "router", text=text)
        if given_up:
            await self._record(order, "update", "router", outcome="callback-failed")

    async def _record(
        self, order: WorkOrder | None, event: str, actor: str, **changes: object
    ) -> None:
        if order is not None:
            await self.workorders.update(order.id, self.clock.seconds(), event, actor, **changes)


def agent_display(number: str, caller_name: str = "") -> str:
    """The caller ID the agent's phone shows for a callback (ARI ``callerId``, parsed by
    Asterisk's ``ast_callerid_parse``): ``"Callback: <name>" <number>``, or ``"Callback"
    <number>`` without a name. The name comes from the caller's side of the call, so it is
    cleaned as for any display name (:func:`callerid.displayable_name`): no quote
    can end the display name early and no control character reaches a SIP header."""
    name = displayable_name(caller_name)
    number = number if DIALABLE.match(number) else ""  # never dialled either (CallbackFlow)
    return f'"Callback: {name}" <{number}>' if name else f'"Callback" <{number}>'


def customer_display(caller_id: CallbackCallerId | None) -> str:
    """Dial's ``f(...)`` option that shows ``caller_id`` (``routing.core.CallbackCallerId``)
    on the customer's phone: ``f(<number>)`` or ``f(name <number>)``, "" for ``None`` (the
    customer leg then keeps the agent leg's caller ID, the customer's own number).

    Dial parses ``x`` with ``ast_callerid_parse`` and sends it as the customer leg's
    identity (From, P-Asserted-Identity), that leg only: the agent's channel keeps its own
    caller ID. Option arguments have a parser of their own (``ast_app_parse_options``:
    parentheses nest, a leading quote toggles quoting, backslashes are dropped), so the name
    goes unquoted and must hold none of ``" \\ < > ( ) [ ] , | ;`` nor control characters;
    the schema refuses those (``routing.schema.CallbackCallerIdModel``), and anything that
    still does is left out here. The whole option string then goes through
    :func:`ivr.agi.escaping.app_arguments` like every Dial argument (``AGISession.exec_``)."""
    if caller_id is None or not PRESENTABLE_NUMBER.match(caller_id.number):
        return ""
    name = caller_id.name.strip()
    if not presentable_name(name):
        log.warning("callback caller ID name %s not presentable; number only", mask_name(name))
        name = ""
    return f"f({name} <{caller_id.number}>)" if name else f"f(<{caller_id.number}>)"


def caller_id_notice(routing: RoutingConfig) -> str:
    """The line logged once at start for queues offering callbacks without
    ``callback.caller_id``: their customers see the number the caller dialled, and where
    Asterisk did not know it (``agi_dnid`` ``unknown``), their own number. "" when every
    such queue names its caller ID."""
    unset = sorted(name for name, queue in routing.queues.items()
                   if queue.callback.enabled and queue.callback.caller_id is None)
    if not unset:
        return ""
    return (f"queues.yaml: callback.caller_id not set for {', '.join(unset)}: callbacks show "
            "the customer the number they dialled, or their own number where Asterisk did "
            "not know it (set callback.caller_id to present the hotline's number)")
