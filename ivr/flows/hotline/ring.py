"""Ringing the agent the router offered the call to: Dial, and what its outcome means for
the router and the work order."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from callerid import displayable_name
from ivr.agi import NO_TIMEOUT, ChannelHungUp
from ivr.flows.hotline.context import Call, Shared
from ivr.flows.hotline.record import start_before_dial
from routing.live import Offer

log = logging.getLogger(__name__)

DIAL_OUTCOMES = {
    "ANSWER": "answered",
    "NOANSWER": "no_answer",
    "BUSY": "busy",
    "CONGESTION": "rejected",
    "CHANUNAVAIL": "unavailable",
    "CANCEL": "caller_gone",
}
"""Dial's DIALSTATUS -> the ring outcome the router takes (anything else: unavailable)."""


async def ring(hotline: Shared, call: Call, offer: Offer) -> bool:
    """Ring the agent; True once they talked with the caller.

    ``Dial`` runs until the conversation is over (option ``g``: we get the caller back when
    the agent hangs up), so its outcome is read afterwards from DIALSTATUS, DIALEDTIME and
    ANSWEREDTIME, which can be read even when the caller hung up.
    """
    session, now = call.session, hotline.clock.seconds
    call.stage = "ringing"
    await _safe_caller_name_for_agent(call)
    await start_before_dial(hotline, call)
    if call.recording_id is not None and hotline.recorder is not None:
        await hotline.recorder.ringing(call.call_id, offer.agent_id)
    dial_started = now()
    caller_gone = False
    try:
        await session.exec_(
            "Dial", offer.endpoint, str(int(offer.ring_timeout_s)), "gU(hotline-answered)",
            timeout=NO_TIMEOUT,
        )
    except ChannelHungUp:
        caller_gone = True
    status = (await session.get_variable("DIALSTATUS")) or ""
    outcome = DIAL_OUTCOMES.get(status, "unavailable")
    if caller_gone and outcome != "answered":
        outcome = "caller_gone"
    call.stage = "connected" if outcome == "answered" else "queue"
    answered_at = None
    if outcome == "answered":
        # Normally recorded live from ARI's Dial event; this is the fallback when ARI is
        # away: Dial's own timers say how long it rang before the answer.
        rang_ms = _ms(await session.get_variable("DIALEDTIME_MS")) - _ms(
            await session.get_variable("ANSWEREDTIME_MS")
        )
        dialled = now() - dial_started
        answered_at = dial_started + min(max(rang_ms / 1000, 0.0), dialled)
    if outcome == "answered":
        # The order records the answer first: routing's report goes to Redis, which may be
        # away (the order's store spools its writes; the live sweep settles the agent). The
        # agent who answered owns the order: ARI's Dial event normally did this at the
        # answer (ivr.flows.hotline.answer); this is the fallback, applied once either way.
        await hotline.workorders.answered(call.call_id, offer.agent_id, now())
        await tell_routing(call, "the answer", hotline.router.ring_result(
            call.call_id, offer.agent_id, outcome, answered_at))
    else:
        await hotline.router.ring_result(call.call_id, offer.agent_id, outcome, answered_at)
    if answered_at is not None and hotline.recorder is not None:
        await hotline.recorder.answered(call.call_id, offer.agent_id, answered_at, now())
    if outcome == "caller_gone":
        call.stage = "ended"
        await hotline.record(call, "note", "caller", text="caller hung up while ringing")
        await hotline.record(call, "update", "caller", outcome="abandoned")
        raise ChannelHungUp("caller hung up while the agent's phone rang")
    if outcome != "answered":
        await hotline.record(call, "note", "router", text=f"agent {offer.agent_id}: {outcome}")
        return False
    by = "caller" if caller_gone else "agent"
    await tell_routing(call, "the end of the conversation",
                        hotline.router.completed(call.call_id, offer.agent_id, by=by))
    dialled = now() - dial_started
    await hotline.record(
        call, "note", offer.agent_id, text=f"conversation ended after {dialled:.0f} s in Dial"
    )
    if caller_gone:
        call.stage = "ended"
        raise ChannelHungUp("caller hung up after the conversation")
    return True


async def tell_routing(call: Call, what: str, report: Awaitable[bool]) -> None:
    """Routing told of what happened to the call (a conversation, a hangup in line, an
    overflow): if Redis cannot take it, the call goes on (survey, work order, the operator)
    and routing settles it by itself once Redis is back (its sweep finds the call's channel
    gone, ``routing/live_sweep.py``)."""
    try:
        await report
    except Exception as exc:
        log.warning("call %s: routing not told of %s (%s); its sweep settles the call",
                    call.call_id, what, exc)


async def _safe_caller_name_for_agent(call: Call) -> None:
    """The agent's phone shows the caller's name in a SIP header: control characters,
    quotes and backslashes there break softphones (the work order keeps it verbatim)."""
    shown = displayable_name(call.caller_name)
    if shown != call.caller_name:
        await call.session.set_variable("CALLERID(name)", shown, allow_function=True)


def _ms(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0
