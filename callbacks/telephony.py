"""Callbacks, the ARI side: what :class:`routing.live.LiveRouter` needs from Asterisk
(originate a callback, does a channel still exist) and the ARI events that keep live routing
in step: an agent's answer (``Dial``), an unanswered callback leg (``ChannelDestroyed``) and
agents' softphones (``DeviceStateChanged``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred

from callbacks.flow import agent_display
from callbacks.live import CALLBACK_CHANNEL
from workorders.model import WorkOrder

log = logging.getLogger(__name__)

T = TypeVar("T")


class ARI(Protocol):
    """``ivr.ari.ARIClient``, as the telephony uses it (its methods return Deferreds)."""

    def originate(
        self,
        endpoint: str,
        *,
        extension: str | None = None,
        context: str | None = None,
        caller_id: str | None = None,
        timeout: int = 30,
        variables: Mapping[str, str] | None = None,
        channel_id: str | None = None,
    ) -> Awaitable[Mapping[str, object]]: ...

    def get_channel(self, channel_id: str) -> Awaitable[Mapping[str, object] | None]: ...


class RoutingEvents(Protocol):
    """The asyncio ``routing.live.LiveRouter``: what ARI events change (run as Tasks)."""

    def answered(self, call_id: str) -> Awaitable[bool]: ...

    def callback_unanswered(self, call_id: str) -> Awaitable[bool]: ...

    def agent_for_device(self, device: str) -> str | None: ...

    def device_state(self, agent_id: str, state: str) -> Awaitable[str | None]: ...


class CallerNames(Protocol):
    """The asyncio ``workorders.store.WorkOrderStore``: the caller's name, if any."""

    def get_by_call(self, call_id: str) -> Awaitable[WorkOrder | None]: ...


class AsteriskTelephony:
    """ARI for live routing: originate callbacks, check channels, follow softphones."""

    def __init__(
        self, ari: ARI, router: RoutingEvents, agi_address: str,
        context: str = "hotline-callback", workorders: CallerNames | None = None,
    ) -> None:
        self.ari = ari
        self.router = router  # the asyncio LiveRouter (device states go straight to it)
        self.agi_address = agi_address  # this instance's FastAGI host:port
        self.context = context
        self.workorders = workorders  # asyncio WorkOrderStore: the caller's name, if any

    async def originate_callback(
        self, call_id: str, agent_endpoint: str, number: str, ring_timeout_s: float
    ) -> Mapping[str, object]:
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

    def on_channel_destroyed(self, event: Mapping[str, Any]) -> asyncio.Future[bool] | None:
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

    def on_dial(self, event: Mapping[str, Any]) -> asyncio.Future[bool] | None:
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

    def on_device_state(self, event: Mapping[str, Any]) -> asyncio.Future[str | None] | None:
        """ARI ``DeviceStateChanged`` -> the agent's availability (see routing.live)."""
        device = event.get("device_state", {})
        agent_id = self.router.agent_for_device(device.get("name", ""))
        if agent_id is None:
            return None
        task = asyncio.ensure_future(self.router.device_state(agent_id, device.get("state", "")))
        task.add_done_callback(_log_failure)
        return task


def _log_failure(task: asyncio.Future[T]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("device state not applied: %s", task.exception())


async def _wait(result: Awaitable[T]) -> T:
    """Await a Deferred (ARI) from asyncio code, as an asyncio Future."""
    if isinstance(result, Deferred):
        future: asyncio.Future[T] = result.asFuture(asyncio.get_event_loop())
        return await future
    return await result
