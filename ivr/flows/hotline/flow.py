"""The call, step by step: choose (welcome, speech or menu), the work order, then the
operator or the queue, the agent and the survey."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ivr.agi import AGISession, ChannelHungUp
from ivr.flows.hotline.choose import choose
from ivr.flows.hotline.context import BEFORE_QUEUE, Call, Shared
from ivr.flows.hotline.queue import enqueue, resumes, wait_in_line
from ivr.flows.hotline.record import after_agent, finish
from ivr.flows.hotline.ring import tell_routing
from ivr.flows.hotline.survey import survey
from routing.core import OPERATOR

log = logging.getLogger(__name__)


@dataclass
class HotlineFlow(Shared):
    """The ``hotline`` flow: one :class:`Call` per AGI session, kept while the call runs."""

    calls: dict[str, Call] = field(default_factory=dict, init=False, repr=False)

    @property
    def active(self) -> dict[str, str]:
        """Each running call's stage, by call id (for metrics)."""
        return {call_id: call.stage for call_id, call in self.calls.items()}

    async def __call__(self, session: AGISession) -> None:
        call = Call.on(session)
        self.calls[call.call_id] = call
        hung_up = True
        try:
            await self._run(call)
            hung_up = False
        except ChannelHungUp:
            log.info("call %s: caller hung up during %s", call.call_id, call.stage)
            if call.stage in BEFORE_QUEUE:
                await tell_routing(call, "the hangup",
                                   self.router.abandon(call.call_id, call.stage))
        finally:
            self.calls.pop(call.call_id, None)
            await finish(self, call, hung_up)

    async def _run(self, call: Call) -> None:
        session = call.session
        await session.answer()
        if not await resumes(self, call):
            choice = await choose(self, call)
            # Hold music from the choice until the queue or the operator prompt takes over:
            # the work order and the queue wait on Redis, and a slow Redis must not leave
            # the caller in silence (the next prompt stops the music).
            await session.set_music(True)
            request = choice.request
            call.request_type, call.urgency = request["category"], request["urgency"]
            call.stage = "order"
            call.order = await self.workorders.create_for_call(
                call.call_id, call.caller_number, call.caller_name, self.clock.seconds(),
                **request,
            )
            for name, value in (
                ("HOTLINE_CATEGORY", call.request_type),
                ("HOTLINE_URGENCY", call.urgency),
                ("HOTLINE_WORKORDER", call.order.id),
            ):
                await session.set_variable(name, value)
            if choice.to_operator is not None:
                await self.record(call, "update", "ivr", queue="operator",
                                  outcome=f"operator-{choice.to_operator}")
                await self._to_operator(call, choice.to_operator)
                return
        await self._serve(call)

    async def _serve(self, call: Call) -> None:
        """From the queue to goodbye: the caller talks with an agent, leaves a number, or
        the call overflows to the operator."""
        queued = await enqueue(self, call)
        verdict = await wait_in_line(self, call) if queued else f"overflow-{OPERATOR}"
        session = call.session
        if verdict == "callback":
            await session.set_variable("HOTLINE_NEXT", "done")
            await session.stream_file(self.prompt(call, "callback-confirmed"))
            return
        if verdict.startswith("overflow-"):
            destination = verdict.removeprefix("overflow-")
            await self.record(call, "update", "ivr", outcome=f"overflow-{destination}")
            await self._to_operator(call, "overflow")
            return
        await session.set_variable("HOTLINE_NEXT", "done")
        await after_agent(self, call)
        await survey(self, call)

    async def _to_operator(self, call: Call, reason: str) -> None:
        log.info("call %s: to the operator (%s)", call.call_id, reason)
        await call.session.stream_file(self.prompt(call, "operator-transfer"))
        await call.session.set_variable("HOTLINE_NEXT", "operator")
