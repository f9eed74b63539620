"""Callbacks (virtual hold), the Asterisk side: placing them through ARI and the ``callback``
FastAGI flow that connects the agent with the customer.

Agent first, as call centers do it: the agent's phone rings with the customer's number shown,
and the caller's name from the work order if there is one (``"Callback: <name>" <number>``,
:func:`agent_display`); once the agent answers, the agent's channel runs
``s@hotline-callback`` (asterisk/extensions.conf), which hands it to
``agi://<instance>/callback,<call id>``; this flow dials
the customer over the trunk and bridges them, ignoring connected-line updates (Dial ``I``):
otherwise Dial would re-INVITE the agent's phone with the customer leg's default identity,
the extension ``s``, in place of the customer. The number dialled is the one the caller
confirmed on hold (their caller ID or one they keyed in, ``HotlineFlow._callback_number``).
The customer's phone shows the hotline, not their own number (the agent leg's caller ID,
which Dial would pass on): the queue's ``callback.caller_id``, else the number the caller
dialled (Dial ``f(...)``, :func:`customer_display`).
A customer who does not answer puts the call back at its place in line (retried as the
queue's ``callback`` settings say).

:class:`AsteriskTelephony` is what :class:`routing.live.LiveRouter` needs from Asterisk
(originate a callback, does a channel still exist) plus the ``DeviceStateChanged`` handler
that keeps agents' availability in step with their softphones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from callbacks.live import CallbackVerdict
from callerid import DIALABLE, PRESENTABLE_NUMBER, displayable_name, presentable_name
from ivr.agi import NO_TIMEOUT, AGISession, ChannelHungUp

log = logging.getLogger(__name__)

CALLBACK_CHANNEL = "callback-"
"""ARI channel id prefix of a callback's agent leg (``callback-<call id>``)."""


class CallbackRouter(Protocol):
    async def callback_offer(self, call_id: str) -> Any: ...

    async def callback_step(
        self, call_id: str, agent_id: str, step: str, detail: str | float = ""
    ) -> int: ...

    async def completed(self, call_id: str, agent_id: str, by: str) -> Any: ...


class CallbackOrders(Protocol):
    async def get_by_call(self, call_id: str) -> Any: ...

    async def update(
        self, order_id: str, now: float, event: str, actor: str, **changes: Any
    ) -> Any: ...


@dataclass
class CallbackFlow:
    """``agi://host/callback,<call id>`` on the agent's channel, after the agent answered."""

    router: CallbackRouter
    workorders: CallbackOrders
    clock: IReactorTime
    trunk_variable: str = "HOTLINE_CALLBACK_TRUNK"

    async def __call__(self, session: AGISession) -> None:
        call_id = session.args[0] if session.args else ""
        offer = await self.router.callback_offer(call_id)
        if offer is None:
            log.warning("callback %r: not offered to anyone (taken over or given up)", call_id)
            await session.set_variable("HOTLINE_NEXT", "done")
            return
        attempt = await self.router.callback_step(call_id, offer.agent_id, "agent_answered")
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
        await self.router.callback_step(call_id, offer.agent_id, "customer_answered", answered_at)
        await self._record(order, "assign", "router", agent=offer.agent_id)
        await self._record(order, "start", offer.agent_id)
        await self.router.completed(call_id, offer.agent_id, by="caller" if not agent_gone
                                    else "agent")
        await self._record(order, "note", offer.agent_id,
                           text=f"callback connected; conversation {talked:.0f} s")

    async def _failed(self, call_id: str, offer: Any, order: Any, why: str) -> None:
        verdict = await self.router.callback_step(call_id, offer.agent_id, "customer_failed", why)
        text = f"callback attempt failed: {why}" + (
            "; attempts spent, given up" if verdict == CallbackVerdict.GIVEN_UP else "; will retry")
        await self._record(order, "note", "router", text=text)
        if verdict == CallbackVerdict.GIVEN_UP:
            await self._record(order, "update", "router", outcome="callback-failed")

    async def _record(self, order: Any, event: str, actor: str, **changes: Any) -> None:
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


def customer_display(caller_id: Any) -> str:
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
        log.warning("callback caller ID name %r not presentable; number only", name)
        name = ""
    return f"f({name} <{caller_id.number}>)" if name else f"f(<{caller_id.number}>)"


def caller_id_notice(routing: Any) -> str:
    """The line logged once at start for queues offering callbacks without
    ``callback.caller_id`` (``routing``: ``routing.core.RoutingConfig``): their customers
    see the number the caller dialled, and where Asterisk did not know it (``agi_dnid``
    ``unknown``), their own number. "" when every such queue names its caller ID."""
    unset = sorted(name for name, queue in routing.queues.items()
                   if queue.callback.enabled and queue.callback.caller_id is None)
    if not unset:
        return ""
    return (f"queues.yaml: callback.caller_id not set for {', '.join(unset)}: callbacks show "
            "the customer the number they dialled, or their own number where Asterisk did "
            "not know it (set callback.caller_id to present the hotline's number)")


class AsteriskTelephony:
    """ARI for live routing: originate callbacks, check channels, follow softphones."""

    def __init__(self, ari: Any, router: Any, agi_address: str, context: str = "hotline-callback",
                 workorders: Any = None) -> None:
        self.ari = ari
        self.router = router  # the asyncio LiveRouter (device states go straight to it)
        self.agi_address = agi_address  # this instance's FastAGI host:port
        self.context = context
        self.workorders = workorders  # asyncio WorkOrderStore: the caller's name, if any

    async def originate_callback(
        self, call_id: str, agent_endpoint: str, number: str, ring_timeout_s: float
    ) -> Any:
        """Ring the agent, showing the customer (:func:`agent_display`); on answer the
        agent's channel enters ``s@hotline-callback`` and this instance's ``callback`` flow
        dials the customer."""
        return await _wait(self.ari.originate(
            agent_endpoint, extension="s", context=self.context,
            caller_id=agent_display(number, await self._caller_name(call_id)),
            timeout=max(1, int(ring_timeout_s)),
            variables={"HOTLINE_CALLBACK_CALL": call_id, "HOTLINE_AGI": self.agi_address},
            channel_id=f"{CALLBACK_CHANNEL}{call_id}",
        ))

    async def _caller_name(self, call_id: str) -> str:
        """The caller's name from the work order; "" if unknown. Never keeps the agent's
        phone from ringing: a store that cannot answer just means no name is shown."""
        if self.workorders is None:
            return ""
        try:
            order = await self.workorders.get_by_call(call_id)
        except Exception as exc:
            log.debug("callback %s: no caller name (%s)", call_id, exc)
            return ""
        return order.caller_name if order is not None else ""

    async def channel_exists(self, call_id: str) -> bool | None:
        """False once Asterisk no longer has the caller's channel; None if we cannot tell."""
        try:
            return (await _wait(self.ari.get_channel(call_id))) is not None
        except Exception as exc:  # ARI unreachable: never remove a call on a guess
            log.debug("channel %s: cannot tell (%s)", call_id, exc)
            return None

    def on_channel_destroyed(self, event: dict[str, Any]) -> Any:
        """ARI ``ChannelDestroyed`` of a callback's agent leg: if the agent never answered
        (the offer still stands), the callback goes back to its place at once and the agent
        is paused missed, instead of waiting for the sweep."""
        channel_id = str(event.get("channel", {}).get("id", ""))
        if not channel_id.startswith(CALLBACK_CHANNEL):
            return None
        task = asyncio.ensure_future(
            self.router.callback_unanswered(channel_id.removeprefix(CALLBACK_CHANNEL))
        )
        task.add_done_callback(_log_failure)
        return task

    def on_dial(self, event: dict[str, Any]) -> Any:
        """ARI ``Dial`` with ``dialstatus`` ANSWER for one of our callers: the agent answered,
        now. Recorded at once, so the speed of answer ends at the answer (not when the
        conversation is over) and the agent shows on call while talking."""
        if event.get("dialstatus") != "ANSWER":
            return None
        call_id = str((event.get("caller") or {}).get("id", ""))
        if not call_id:
            return None
        task = asyncio.ensure_future(self.router.answered(call_id))
        task.add_done_callback(_log_failure)
        return task

    def on_device_state(self, event: dict[str, Any]) -> Any:
        """ARI ``DeviceStateChanged`` -> the agent's availability (see routing.live)."""
        device = event.get("device_state", {})
        agent_id = self.router.agent_for_device(device.get("name", ""))
        if agent_id is None:
            return None
        task = asyncio.ensure_future(self.router.device_state(agent_id, device.get("state", "")))
        task.add_done_callback(_log_failure)
        return task


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("device state not applied: %s", task.exception())


async def _wait(result: Any) -> Any:
    """Await a Deferred (ARI) from asyncio code; plain values pass through."""
    if isinstance(result, Deferred):
        return await result.asFuture(asyncio.get_event_loop())
    return await result if asyncio.iscoroutine(result) else result
