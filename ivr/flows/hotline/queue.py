"""The queue: the call's place in line, music on hold and position announcements until an
agent is found (or the caller leaves a number, or the call overflows), and a call that comes
back after its instance was lost.

Routing's store (Redis) may be unreachable while the caller waits: killed, restarting,
paused. The caller then stays in line with the music on while every poll asks again, as a
queue keeps its callers through a restart of what routes them (seconds); when the store
has been away for :data:`STORE_AWAY_GRACE_S`, or the queue's own ``max_wait_s`` (counted
from entering the queue) is over first, the call overflows to the operator: an outage is not
waited out in line, as no agent can be offered the call meanwhile. An agent is only ever
rung on an offer the store made, so nobody is rung twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from callbacks.dialogue import leave_number
from callerid import dialled_number
from ivr.agi import ChannelHungUp
from ivr.flows.hotline.context import Call, Shared
from ivr.flows.hotline.record import consent
from ivr.flows.hotline.ring import ring, tell_routing
from ivr.languages import language_of
from routing.core import OPERATOR
from routing.live import STORE_AWAY, CallRequest

log = logging.getLogger(__name__)

T = TypeVar("T")

STORE_AWAY_GRACE_S = 20.0
"""How long routing's store may stay unreachable while a caller waits before the call goes to
the operator: a Redis restart or pause (seconds) is ridden out in line; a longer outage
sends the caller to a human rather than keep them on music nobody can end."""


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


async def enqueue(hotline: Shared, call: Call) -> bool:
    """Into the queue its request routes to, in the caller's language (agents' ``languages``
    decide who may take it); the work order names the queue.

    While routing's store cannot be reached the caller hears the music (on since the choice)
    and the call is offered to the store again every poll, its arrival time kept: False when
    :data:`STORE_AWAY_GRACE_S` passed so (the call goes to the operator)."""
    request = CallRequest(
        call_id=call.call_id,
        request_type=call.request_type,
        urgency=call.urgency,
        caller_number=call.caller_number,
        entered_at=hotline.clock.seconds(),
        language=call.language,
        dialled_number=dialled_number(call.session.env),
    )
    call.request = request
    call.hold_until = request.entered_at + STORE_AWAY_GRACE_S
    while (entry := await _ask(hotline, call, hotline.router.enqueue(request))) is None:
        if hotline.clock.seconds() >= call.hold_until:
            log.warning("call %s: routing unreachable for %.1f s, the call was never queued: to "
                        "the operator", call.call_id, hotline.clock.seconds() - request.entered_at)
            return False
        await call.session.wait_for_digit(hotline.poll_interval_ms)
    call.stage = "queue"
    call.entry = entry
    call.hold_until = None if entry.max_wait_s is None else request.entered_at + entry.max_wait_s
    await hotline.record(call, "update", "ivr", queue=entry.queue)
    return True


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
        await _ask(hotline, call, hotline.router.dispatch())
        if not entry.resumed and await _ask(hotline, call,
                                            hotline.router.poll(call.call_id)) is None:
            await session.stream_file(hotline.prompt(call, "please-hold"))
            # No callback offered while the store is away: it could not take the number.
            if entry.callback_key and call.store_away_since is None:
                # The prompt stopped the music, and a store about to fail takes its retries
                # (seconds) to say so: the caller hears the music meanwhile, not silence.
                await session.set_music(True, entry.moh_class)
                if (await _ask(hotline, call, hotline.router.poll(call.call_id)) is None
                        and call.store_away_since is None):
                    pressed = await session.stream_file(
                        hotline.prompt(call, "callback-offer"), entry.callback_key
                    )
        return await _hold(hotline, call, pressed)
    except ChannelHungUp:
        if call.stage in ("queue", "callback-number"):
            await tell_routing(call, "the hangup", hotline.router.abandon(call.call_id, "queue"))
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
        if (digit and digit == entry.callback_key and call.store_away_since is None
                and await leave_number(hotline, call)):
            return "callback"
        digit = None
        offer = await _ask(hotline, call, hotline.router.poll(call.call_id))
        if offer is not None and offer.kind == "lost":
            await _queue_again(hotline, call)
            continue
        if offer is None:
            now = hotline.clock.seconds()
            if call.store_away_since is not None and now >= _give_up_at(call):
                return await _overflow_unrouted(hotline, call)
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


async def _queue_again(hotline: Shared, call: Call) -> None:
    """The store lost the waiting call (a Redis crash took its last acknowledged writes, or a
    failover went to a replica without them): no dispatcher would ever offer it, and the
    caller would hold until they gave up. Queue it again with what it was queued with, its
    arrival time kept, so it is back at its place and its wait bound unchanged; the music
    plays on. If the store is away meanwhile, the next poll asks again."""
    assert call.request is not None
    log.warning("call %s: routing has no record of the queued call (lost in a Redis crash or "
                "failover): queued again at its place", call.call_id)
    await _ask(hotline, call, hotline.router.enqueue(call.request))


async def _ask(hotline: Shared, call: Call, request: Awaitable[T]) -> T | None:
    """Routing's answer to ``request``, or None while its store cannot be reached: the caller
    stays in line and the next poll asks again (logged once an outage, and when it ends)."""
    try:
        answer = await request
    except STORE_AWAY as exc:
        if call.store_away_since is None:
            call.store_away_since = hotline.clock.seconds()
            log.warning("call %s: routing cannot be reached (%s); the caller stays in line, "
                        "overflowed to the operator if still so in %.0f s", call.call_id, exc,
                        _give_up_at(call) - call.store_away_since)
        return None
    if call.store_away_since is not None:
        log.info("call %s: routing answers again after %.1f s", call.call_id,
                 hotline.clock.seconds() - call.store_away_since)
        call.store_away_since = None
    return answer


def _give_up_at(call: Call) -> float:
    """When a call whose routing store is away goes to the operator: the grace after the
    outage began, or the end of the queue's wait if that comes first."""
    assert call.store_away_since is not None
    grace_over = call.store_away_since + STORE_AWAY_GRACE_S
    return grace_over if call.hold_until is None else min(grace_over, call.hold_until)


async def _overflow_unrouted(hotline: Shared, call: Call) -> str:
    """Routing has been unreachable for the grace (or the queue's wait is over): the operator
    takes the call, as the queue's own overflow would have sent it."""
    log.warning("call %s: routing unreachable for %.1f s: to the operator", call.call_id,
                hotline.clock.seconds() - (call.store_away_since or 0))
    await call.session.set_music(False)
    await tell_routing(call, "the overflow", hotline.router.overflowed(call.call_id, OPERATOR))
    return f"overflow-{OPERATOR}"


async def _announce_position(hotline: Shared, call: Call) -> None:
    status = await _ask(hotline, call, hotline.router.status(call.call_id))
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
