"""The callback number dialogue (virtual hold): on hold, the caller presses the queue's
callback key and confirms their caller ID or keys in another number; the call keeps its
place in line with that number, and :mod:`callbacks.flow` calls them back."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from callerid import DIALABLE
from privacy.masking import mask_number

if TYPE_CHECKING:  # the hotline flow imports this module: its types only, no cycle
    from ivr.flows.hotline.context import Call, Shared
    from routing.core import CallbackNumber

log = logging.getLogger(__name__)


async def leave_number(hotline: Shared, call: Call) -> bool:
    """The caller confirms their caller ID or enters another number
    (:func:`callback_number`), which is kept with the call at its place in line. False when
    no number was confirmed, or an agent was offered the call in the meantime: the caller is
    then back on hold at the same place (or rung through at once)."""
    entry, session = call.queued, call.session
    call.stage = "callback-number"
    await session.set_music(False)
    number = await callback_number(hotline, call, entry.callback_number)
    if number is None or not await hotline.router.request_callback(call.call_id, number):
        call.stage = "queue"
        await session.set_music(True, entry.moh_class)
        return False
    call.stage = "callback"
    how = "the caller ID, confirmed" if number == call.caller_number else "entered by the caller"
    await hotline.record(call, "note", "caller", text=f"callback requested to {number} ({how})")
    await hotline.record(call, "update", "caller", outcome="callback-pending")
    return True


async def callback_number(hotline: Shared, call: Call, rule: CallbackNumber) -> str | None:
    """The number to call back, as the caller confirmed it; None when none was.

    A dialable caller ID within ``rule`` is read back digit by digit: 1 confirms it, other
    keys (ended by #) are another number. Without one the caller is asked for a number. An
    entered number is checked against ``rule``, then read back: 1 confirms, 2 (or silence)
    enters it again. ``rule.retries`` rounds at most, every wait bounded by
    ``rule.timeout_s``; after the last one the caller is told they keep their place, and
    goes back on hold. Neither a round nor the read-back of a number starts once an agent
    has been offered the call: talking to the agent now beats a callback later, and the
    agent waits at most for the caller's keys.
    """
    session, call_id, poll = call.session, call.call_id, hotline.router.poll
    caller_id = call.caller_number
    why_not = rule.problem(caller_id) if DIALABLE.match(caller_id) else "not dialable"
    offered = caller_id if why_not is None else None
    if offered is None:
        log.info("call %s: caller ID %s not offered for a callback (%s)", call_id,
                 mask_number(caller_id), why_not)
    wait_ms = int(rule.timeout_s * 1000)
    for _round in range(rule.retries):
        if await poll(call_id) is not None:
            return None
        if offered is not None:
            await session.stream_file(hotline.prompt(call, "callback-number-is"))
            await session.say_digits(offered.removeprefix("+"))
            keys = await session.get_data(
                hotline.prompt(call, "callback-confirm-or-enter"), wait_ms, rule.max_digits
            )
            if keys == "1":
                return offered
        else:
            keys = await session.get_data(
                hotline.prompt(call, "callback-enter-number"), wait_ms, rule.max_digits
            )
        if not keys:
            continue  # silence: the same question once more
        why_not = rule.problem(keys) if DIALABLE.match(keys) else "not dialable"
        if why_not is not None:
            log.info("call %s: callback number refused (%s)", call_id, why_not)
            await session.stream_file(hotline.prompt(call, "callback-number-invalid"))
            continue
        if await poll(call_id) is not None:
            return None  # an agent is ready: no read-back while they wait
        await session.stream_file(hotline.prompt(call, "callback-you-entered"))
        await session.say_digits(keys)
        answer = await session.get_data(
            hotline.prompt(call, "callback-confirm-or-reenter"), wait_ms, 1
        )
        if answer == "1":
            return keys
        offered = None  # 2, another key or silence: enter the number again
    log.info("call %s: no callback number confirmed; back on hold", call_id)
    await session.stream_file(hotline.prompt(call, "callback-number-failed"))
    return None
