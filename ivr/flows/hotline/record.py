"""Recording the call: consent, MixMonitor before the first Dial, sensitive steps muted,
the menu after the agent, and the end.

MixMonitor runs on the caller's channel (the AGI's), so one recording covers every agent
attempt (a RONA retry rings a new agent channel), a transfer of the agent side and the steps
after the agent hangs up; it runs until the caller hangs up or leaves this flow. The two
legs are separate files, ``r()`` (what the caller says) and ``t()`` (what the caller hears:
the agent, prompts): the post-processing makes them one stereo file, caller left, agent
right, and each voice stays clean for a listener or a recognizer.

A sensitive step (``sensitive: true`` in menus.yaml) mutes the recording through AMI for its
duration; when AMI cannot, the flow stops MixMonitor before the step instead (fail safe: the
digits never reach the file) and the recording says it was cut there.

A callback is a new call, from the agent to the caller: :class:`CallbackRecording` records it
as one more recording of the same call id and work order (``leg: callback``), so the call
and its callbacks are listed together (``ivr recordings list --call`` or ``--order``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ivr import menu as menu_walker
from ivr.agi import AGISession, ChannelHungUp
from ivr.flows.hotline.context import Call, Shared
from ivr.flows.hotline.seams import Clock, Recorder
from recordings.capture import new_recording_id
from workorders.model import WorkOrder

__all__ = ["DECLINED", "MIXMONITOR_ID", "SENSITIVE", "CallbackRecording", "after_agent",
           "consent", "declined", "finish", "sensitive_step", "start_before_dial"]

log = logging.getLogger(__name__)

MIXMONITOR_ID = "HOTLINE_MIXMONITOR_ID"  # MixMonitor's i(): its id, for StopMixMonitor
SENSITIVE = "sensitive-step"  # the paused reason of a sensitive step
DECLINED = "caller declined recording"  # how the work order's note of an opt-out begins
CALLBACK = "callback"  # the leg of a callback's recording (recordings.recorder.CALLBACK)

T = TypeVar("T")


async def consent(hotline: Shared, call: Call) -> None:
    """Once queued, before any agent: the queue's recording notice, with its opt-out key."""
    recorder = hotline.recorder
    if recorder is None or call.queued.resumed:
        return  # a resumed call was told before its instance was lost; not recorded again
    policy = recorder.policy(call.queued.queue)
    call.after_agent_menu = policy.after_agent_menu
    if not policy.record:
        return
    key = policy.opt_out_key or ""
    pressed = await call.session.stream_file(hotline.prompt(call, policy.consent_prompt), key)
    if key and pressed == key:
        log.info("call %s: caller declined recording", call.call_id)
        await hotline.record(call, "note", "caller",
                             text=f"{DECLINED} (key {key}): not recorded")
        return
    call.to_record = True


async def start_before_dial(hotline: Shared, call: Call) -> None:
    """MixMonitor on the caller's channel, right before the first Dial (later ones: running)."""
    recorder = hotline.recorder
    if recorder is None or not call.to_record or call.recording_id is not None:
        return
    recording_id = new_recording_id()
    caller, agent = recorder.legs_for(recording_id)
    # The files' time zero, for placing paused intervals in them: when the EXEC was sent
    # (reading the clock after its reply would add the round trip and the reactor's delay).
    at = hotline.clock.seconds()
    await call.session.exec_("MixMonitor", "", f"r({caller})t({agent})i({MIXMONITOR_ID})")
    call.recording_id = recording_id
    await recorder.started(call.call_id, recording_id, call.session.env.get("channel", ""),
                           call.queued.queue, call.order.id if call.order else None,
                           call.request_type, at)


async def sensitive_step(hotline: Shared, call: Call, step: Callable[[], Awaitable[T]]) -> T:
    """Run ``step`` with the recording muted (unmuted after, also on a hangup inside it); AMI
    away: MixMonitor is stopped before the step and the recording marked cut."""
    recorder = hotline.recorder
    if recorder is None or call.recording_id is None or call.recording_cut:
        return await step()
    if not await recorder.mute(call.call_id, SENSITIVE):
        log.warning("call %s: recording not muted (AMI): stopped before the sensitive step",
                    call.call_id)
        mixmonitor = await call.session.get_variable(MIXMONITOR_ID)
        await call.session.exec_("StopMixMonitor", *([mixmonitor] if mixmonitor else []))
        call.recording_cut = True
        await recorder.cut(call.call_id)
        return await step()
    try:
        return await step()
    finally:
        await recorder.unmute(call.call_id, SENSITIVE)


async def after_agent(hotline: Shared, call: Call) -> None:
    """The queue's menu after the conversation (``after_agent_menu``), sensitive steps
    muted. Digits of a sensitive step are never kept: only that they were given."""
    if call.after_agent_menu is None:
        return
    menus = hotline.config().menus
    session = call.session
    state, step = menu_walker.start_at(menus, call.after_agent_menu)
    while isinstance(step, menu_walker.Prompt):
        prompt = step
        if prompt.notice:
            await session.stream_file(hotline.prompt(call, prompt.notice))

        def ask(prompt: menu_walker.Prompt = prompt) -> Awaitable[str | None]:
            return session.get_data(hotline.prompt(call, prompt.prompt),
                                    int(prompt.timeout_s * 1000), prompt.max_digits)

        if menus.menus[prompt.menu].sensitive:
            digits = await sensitive_step(hotline, call, ask)
        else:
            digits = await ask()
        state, step = menu_walker.advance(menus, state, digits or None)
    if isinstance(step, menu_walker.Collected):
        await hotline.record(call, "note", "caller",
                             text=f"{len(step.digits)} digits given in the sensitive step "
                                  f"{step.menu} (not kept)")


async def finish(hotline: Shared, call: Call, hung_up: bool) -> None:
    """The call leaves the flow: a caller still on the line goes on in the dialplan (the
    operator, goodbye), which is not ours to record; then the check and the ingest."""
    recorder = hotline.recorder
    if recorder is None or call.recording_id is None:
        return
    stopped = call.recording_cut  # MixMonitor no longer runs: nothing to follow after the flow
    try:
        if not hung_up and not call.recording_cut:
            mixmonitor = await call.session.get_variable(MIXMONITOR_ID)
            await call.session.exec_("StopMixMonitor", *([mixmonitor] if mixmonitor else []))
            stopped = True
    except ChannelHungUp:
        pass
    except Exception as exc:  # the recording's end never fails the call
        log.warning("call %s: StopMixMonitor failed: %s", call.call_id, exc)
    try:
        await recorder.finished(call.call_id, stopped=stopped)
    except Exception:
        log.exception("call %s: recording not handed over after the call", call.call_id)


def declined(order: WorkOrder) -> bool:
    """The caller opted out of recording on the call of ``order`` (its note, by the caller)."""
    return any(entry.event == "note" and entry.actor == "caller"
               and str(entry.details.get("text", "")).startswith(DECLINED)
               for entry in order.history)


@dataclass
class CallbackRecording:
    """Recording a callback (``callbacks.flow``): one more recording of the call's id and work
    order, ``leg: callback``.

    Recorded when the order's queue records and the caller did not opt out on the call that
    asked for the callback: the notice heard there covers the callback asked for in it, and
    an opt-out there holds for it too. No order, no recording (the opt-out cannot be known).
    MixMonitor runs on the agent's channel (the callback flow's AGI channel) from right
    before the customer is dialled until the agent's leg ends: ``r()`` is then the agent and
    ``t()`` the customer, written to the caller-first legs the post-processing expects."""

    recorder: Recorder
    clock: Clock

    async def start(self, session: AGISession, call_id: str, agent: str,
                    order: WorkOrder | None) -> str | None:
        """MixMonitor before the customer is dialled; the recording's id, or None."""
        if order is None or declined(order):
            return None
        queue = order.queue or ""
        if not self.recorder.policy(queue).record:
            return None
        recording_id = new_recording_id()
        caller, agent_leg = self.recorder.legs_for(recording_id)
        at = self.clock.seconds()  # the files' time zero (see start_before_dial)
        await session.exec_("MixMonitor", "", f"r({agent_leg})t({caller})i({MIXMONITOR_ID})")
        await self.recorder.started(call_id, recording_id, session.env.get("channel", ""),
                                    queue, order.id, order.category.value, at, CALLBACK)
        await self.recorder.ringing(call_id, agent, CALLBACK)
        return recording_id

    async def answered(self, call_id: str, agent: str, at: float, until: float) -> None:
        """The customer talked with ``agent`` from ``at`` to ``until``."""
        await self.recorder.answered(call_id, agent, at, until, CALLBACK)

    async def end(self, call_id: str) -> None:
        """The agent's leg ended: the check and the ingest (never fails the callback)."""
        try:
            await self.recorder.finished(call_id, CALLBACK)
        except Exception:
            log.exception("callback %s: recording not handed over", call_id)
