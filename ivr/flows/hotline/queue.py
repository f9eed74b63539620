"""The queue: the call's place in line, music on hold and position announcements until an
agent is found (or the caller leaves a number, or the call overflows), and a call that comes
back after its instance was lost."""

from __future__ import annotations

import logging

from callbacks.dialogue import leave_number
from callerid import dialled_number
from ivr.agi import ChannelHungUp
from ivr.flows.hotline.context import Call, Shared
from ivr.flows.hotline.record import consent
from ivr.flows.hotline.ring import ring
from ivr.languages import language_of
from routing.live import CallRequest

log = logging.getLogger(__name__)


async def resumes(hotline: Shared, call: Call) -> bool:
    """Whether the call was already queued (its instance died, the dialplan re-entered it
    here through the backup FastAGI): then it skips welcome and menu and waits at its
    original place, with its work order, request and language taken back.

    Only a call the dialplan hands to the backup can be one: on its first attempt (AGI
    argument ``primary``) nothing is asked, so a new caller's welcome never waits on Redis
    (a Redis that does not answer would hold it for the socket timeout). A dialplan that
    names no attempt is asked as before."""
    if call.session.args[:1] == ["primary"]:
        return False
    try:
        queued = await hotline.router.waiting_call(call.call_id)
        order = await hotline.workorders.get_by_call(call.call_id) if queued else None
    except Exception as exc:  # Redis away: a new call as usual (work order spooled)
        log.warning("call %s: cannot tell whether it was queued before: %s", call.call_id, exc)
        return False
    if queued is None or order is None:
        return False
    log.info("call %s: resumed in queue %s after its instance was lost", call.call_id,
             queued.get("queue"))
    call.order = order
    call.language = language_of(hotline.config(), order.language).code
    call.request_type = queued.get("request_type") or order.category.value
    call.urgency = queued.get("urgency") or order.urgency.value
    return True


async def enqueue(hotline: Shared, call: Call) -> None:
    """Into the queue its request routes to, in the caller's language (agents' ``languages``
    decide who may take it); the work order names the queue."""
    call.stage = "queue"
    call.entry = await hotline.router.enqueue(
        CallRequest(
            call_id=call.call_id,
            request_type=call.request_type,
            urgency=call.urgency,
            caller_number=call.caller_number,
            entered_at=hotline.clock.seconds(),
            language=call.language,
            dialled_number=dialled_number(call.session.env),
        )
    )
    await hotline.record(call, "update", "ivr", queue=call.entry.queue)


async def wait_in_line(hotline: Shared, call: Call) -> str:
    """Until an agent has talked with the caller: the agent id, ``callback`` (the caller
    left a number and keeps the place) or ``overflow-<destination>``. A caller who hangs up
    meanwhile leaves the queue, the work order marked abandoned."""
    entry, session = call.queued, call.session
    try:
        pressed = None
        await consent(hotline, call)  # before any agent is connected
        # The consent prompt stopped the music: the caller hears it again while the store
        # decides (a slow Redis made that a silence of seconds).
        await session.set_music(True, entry.moh_class)
        # Decide at once rather than at the next dispatcher round, and skip the hold
        # prompts when an agent is free: nobody should listen to "please hold" while an
        # agent waits for them.
        await hotline.router.dispatch()
        if not entry.resumed and await hotline.router.poll(call.call_id) is None:
            await session.stream_file(hotline.prompt(call, "please-hold"))
            if entry.callback_key and await hotline.router.poll(call.call_id) is None:
                pressed = await session.stream_file(
                    hotline.prompt(call, "callback-offer"), entry.callback_key
                )
        return await _hold(hotline, call, pressed)
    except ChannelHungUp:
        if call.stage in ("queue", "callback-number"):
            await hotline.router.abandon(call.call_id, "queue")
            await hotline.record(call, "note", "caller", text="caller hung up in the queue")
            await hotline.record(call, "update", "caller", outcome="abandoned")
        raise


async def _hold(hotline: Shared, call: Call, pressed: str | None) -> str:
    """Music on hold, polling the shared store every ``poll_interval_ms``: the store, not
    this process, decides (several service instances share one agent pool)."""
    entry, session = call.queued, call.session
    await session.set_music(True, entry.moh_class)
    next_announcement = hotline.clock.seconds() + entry.announce_every_s
    digit = pressed
    while True:
        if digit is None:
            digit = await session.wait_for_digit(hotline.poll_interval_ms)
        if digit and digit == entry.callback_key and await leave_number(hotline, call):
            return "callback"
        digit = None
        offer = await hotline.router.poll(call.call_id)
        if offer is None:
            now = hotline.clock.seconds()
            if entry.announce_every_s and now >= next_announcement:
                next_announcement = now + entry.announce_every_s
                await _announce_position(hotline, call)
            continue
        await session.set_music(False)
        if offer.kind == "overflow":
            return f"overflow-{offer.destination}"
        if await ring(hotline, call, offer):
            return offer.agent_id
        await session.set_music(True, entry.moh_class)


async def _announce_position(hotline: Shared, call: Call) -> None:
    status = await hotline.router.status(call.call_id)
    if status is None:
        return
    session = call.session
    await session.set_music(False)
    await session.stream_file(hotline.prompt(call, "position-is"))
    await session.say_number(status.position)
    if status.estimated_wait_s is not None:
        await session.stream_file(hotline.prompt(call, "estimated-wait-minutes"))
        await session.say_number(max(1, round(status.estimated_wait_s / 60)))
    await session.set_music(True, call.queued.moh_class)
