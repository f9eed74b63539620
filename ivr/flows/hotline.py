"""The ``hotline`` call flow: welcome, speech or DTMF menu, work order, queue, agent, survey.

One coroutine per call, driven by the FastAGI session (``agi://host/hotline``). Every step
that waits on the caller is bounded, and every way out leaves a verdict in ``HOTLINE_NEXT``
for the dialplan, so the caller is never left in dead air: when anything here fails, the
dialplan's fallback sends the call to the operator (see ``asterisk/extensions.conf``).

The flow holds no routing logic and no storage logic: it asks the menu walker (pure), the
speech gateway, the work-order store and the live router, and turns their answers into AGI
commands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.interfaces import IReactorTime

from callerid import DIALABLE, dialled_number, displayable_name
from ivr import menu as menu_walker
from ivr.agi import NO_TIMEOUT, AGISession, ChannelHungUp
from ivr.languages import all_languages, call_language, language_of

log = logging.getLogger(__name__)

ALL_DIGITS = "0123456789*#"


class WorkOrders(Protocol):
    async def create_for_call(
        self, call_id: str, caller_number: str, caller_name: str, now: float, **fields: Any
    ) -> Any: ...

    async def update(
        self, order_id: str, now: float, event: str, actor: str, **changes: Any
    ) -> Any: ...

    async def get_by_call(self, call_id: str) -> Any: ...


class Router(Protocol):
    """What the flow needs from live routing (``routing.live.LiveRouter``)."""

    async def enqueue(self, call: Any) -> Any: ...

    async def dispatch(self) -> Any: ...

    async def poll(self, call_id: str) -> Any: ...

    async def ring_result(self, call_id: str, agent_id: str, outcome: str) -> Any: ...

    async def connected(self, call_id: str, agent_id: str) -> Any: ...

    async def completed(self, call_id: str, agent_id: str, by: str) -> Any: ...

    async def abandon(self, call_id: str, stage: str) -> Any: ...

    async def status(self, call_id: str) -> Any: ...

    async def request_callback(self, call_id: str, number: str) -> bool: ...

    async def waiting_call(self, call_id: str) -> dict[str, str] | None: ...


class Speech(Protocol):
    """``ivr.speech.gateway.SpeechGateway``: a request dict, the digits pressed, or None."""

    async def listen(
        self, session: AGISession, language: str | None = None
    ) -> dict[str, Any] | str | None: ...


@dataclass
class HotlineFlow:
    """Everything one call needs, injected: config getter, stores, clock, prompt paths."""

    config: Callable[[], Any]  # returns the current HotlineConfig (reload-safe)
    workorders: WorkOrders
    router: Router
    clock: IReactorTime
    sound: Callable[[str], str]  # prompt name -> path Asterisk plays
    speech: Speech | None = None
    poll_interval_ms: int = 500
    active: dict[str, str] = field(default_factory=dict)  # call_id -> stage, for metrics
    languages: dict[str, str] = field(default_factory=dict)  # call_id -> language code

    async def __call__(self, session: AGISession) -> None:
        call_id = session.env.get("uniqueid", "")
        self.active[call_id] = "welcome"
        try:
            await self._run(session, call_id)
        except ChannelHungUp:
            stage = self.active.get(call_id, "?")
            log.info("call %s: caller hung up during %s", call_id, stage)
            if stage in ("menu", "welcome", "speech", "order"):
                await self.router.abandon(call_id, stage)
        finally:
            self.active.pop(call_id, None)
            self.languages.pop(call_id, None)

    def _sound(self, session: AGISession, name: str) -> str:
        """The prompt ``name`` in the call's language, as Asterisk plays it."""
        language = language_of(self.config(), self.languages.get(session.uniqueid))
        return self.sound(language.sound(name))

    async def _set_language(self, session: AGISession, cfg: Any, code: str) -> None:
        """The call speaks ``code`` from now on: prompts, speech, menus, and Asterisk's own
        sounds (CHANNEL(language): digits of the queue position, ...)."""
        self.languages[session.uniqueid] = code
        if len(all_languages(cfg)) > 1:
            await session.set_variable("CHANNEL(language)", code, allow_function=True)

    async def _dialplan_language(self, session: AGISession, cfg: Any) -> str:
        """The language the dialplan gave this line (HOTLINE_LANGUAGE), on a hotline with
        several; one language: no question asked."""
        if len(all_languages(cfg)) <= 1:
            return language_of(cfg, None).code
        return call_language(cfg, await session.get_variable("HOTLINE_LANGUAGE"))

    # --- the call, step by step ----------------------------------------------------------------

    async def _run(self, session: AGISession, call_id: str) -> None:
        cfg = self.config()
        caller_number = session.env.get("callerid", "")
        caller_name = session.env.get("calleridname", "")
        await session.answer()
        if await self._resume(session, call_id):
            return
        await self._set_language(session, cfg, await self._dialplan_language(session, cfg))
        before: list[str] = []  # keys pressed in the languages the caller left
        while True:  # once per language the caller chooses ("press 9 for Korean")
            language = self.languages[call_id]
            self.active[call_id] = "welcome"
            pressed = await session.stream_file(self._sound(session, "welcome"), ALL_DIGITS)
            request: dict[str, Any] | None = None
            if self.speech is not None and not pressed:
                self.active[call_id] = "speech"
                heard = await self.speech.listen(session, language)
                if isinstance(heard, str):
                    pressed = heard  # a key instead of words: straight into the menu
                else:
                    request = heard
            if request is not None:
                break
            self.active[call_id] = "menu"
            step = await self._walk_menu(session, cfg, pressed, language)
            if not isinstance(step, menu_walker.ChangeLanguage):
                break
            log.info("call %s: caller chose language %s", call_id, step.language)
            before.extend(step.path)
            await self._set_language(session, cfg, step.language)
        to_operator = None
        if request is None:
            if isinstance(step, menu_walker.ToOperator):
                # The operator still gets a work order: the caller wanted something.
                to_operator = "menu-" + step.reason
                request = {"category": "other", "urgency": "normal",
                           "menu_path": list(step.path)}
            else:
                request = {
                    "category": step.category,
                    "urgency": step.urgency or _urgency_of(
                        language_of(cfg, self.languages[call_id]).intents, step.category
                    ),
                    "menu_path": list(step.path),
                }
        elif request["category"] == "operator":
            to_operator = "asked"
            request = {**request, "category": "other"}
        request = {**request, "language": self.languages[call_id],
                   "menu_path": [*before, *request["menu_path"]]}

        self.active[call_id] = "order"
        order = await self.workorders.create_for_call(
            call_id, caller_number, caller_name, self.clock.seconds(), **request
        )
        for name, value in (
            ("HOTLINE_CATEGORY", request["category"]),
            ("HOTLINE_URGENCY", request["urgency"]),
            ("HOTLINE_WORKORDER", order.id),
        ):
            await session.set_variable(name, value)
        if to_operator is not None:
            await self._record(order, "update", "ivr", queue="operator",
                               outcome=f"operator-{to_operator}")
            await self._to_operator(session, call_id, to_operator)
            return
        await self._queue_and_connect(session, call_id, order, request)

    async def _resume(self, session: AGISession, call_id: str) -> bool:
        """A call already queued (its instance died, the dialplan re-entered it here through
        the backup FastAGI) skips welcome and menu and waits at its original place."""
        try:
            queued = await self.router.waiting_call(call_id)
            order = await self.workorders.get_by_call(call_id) if queued else None
        except Exception as exc:  # Redis away: a new call as usual (work order spooled)
            log.warning("call %s: cannot tell whether it was queued before: %s", call_id, exc)
            return False
        if queued is None or order is None:
            return False
        log.info("call %s: resumed in queue %s after its instance was lost", call_id,
                 queued.get("queue"))
        self.languages[call_id] = language_of(self.config(), order.language).code
        request = {"category": queued.get("request_type") or _text(order.category),
                   "urgency": queued.get("urgency") or _text(order.urgency),
                   "menu_path": list(order.menu_path)}
        await self._queue_and_connect(session, call_id, order, request)
        return True

    async def _walk_menu(
        self, session: AGISession, cfg: Any, pressed: str | None, language: str | None = None
    ) -> menu_walker.Request | menu_walker.ToOperator | menu_walker.ChangeLanguage:
        state, step = menu_walker.start(cfg.menus, language)
        digits = pressed
        while True:
            if digits is None:
                assert isinstance(step, menu_walker.Prompt)
                if step.notice:
                    await session.stream_file(self._sound(session, step.notice))
                digits = await session.get_data(
                    self._sound(session, step.prompt), int(step.timeout_s * 1000),
                    step.max_digits,
                )
            state, step = menu_walker.advance(cfg.menus, state, digits or None)
            digits = None
            if not isinstance(step, menu_walker.Prompt):
                return step

    async def _to_operator(self, session: AGISession, call_id: str, reason: str) -> None:
        log.info("call %s: to the operator (%s)", call_id, reason)
        await session.stream_file(self._sound(session, "operator-transfer"))
        await session.set_variable("HOTLINE_NEXT", "operator")

    async def _queue_and_connect(
        self, session: AGISession, call_id: str, order: Any, request: dict[str, Any]
    ) -> None:
        from routing.live import CallRequest  # the live router's own data type

        self.active[call_id] = "queue"
        entry = await self.router.enqueue(
            CallRequest(
                call_id=call_id,
                request_type=request["category"],
                urgency=request["urgency"],
                caller_number=session.env.get("callerid", ""),
                entered_at=self.clock.seconds(),
                dialled_number=dialled_number(session.env),
            )
        )
        await self.workorders.update(
            order.id, self.clock.seconds(), "update", "ivr", queue=entry.queue
        )
        try:
            pressed = None
            # Decide at once rather than at the next dispatcher round, and skip the hold
            # prompts when an agent is free: nobody should listen to "please hold" while an
            # agent waits for them.
            await self.router.dispatch()
            if not entry.resumed and await self.router.poll(call_id) is None:
                await session.stream_file(self._sound(session, "please-hold"))
                if entry.callback_key and await self.router.poll(call_id) is None:
                    pressed = await session.stream_file(
                        self._sound(session, "callback-offer"), entry.callback_key
                    )
            verdict = await self._wait_for_agent(session, call_id, entry, order, pressed)
        except ChannelHungUp:
            if self.active.get(call_id) in ("queue", "callback-number"):
                await self.router.abandon(call_id, "queue")
                await self._record(order, "note", "caller", text="caller hung up in the queue")
                await self._record(order, "update", "caller", outcome="abandoned")
            raise
        if verdict == "callback":
            await session.set_variable("HOTLINE_NEXT", "done")
            await session.stream_file(self._sound(session, "callback-confirmed"))
            return
        if verdict.startswith("overflow-"):
            destination = verdict.removeprefix("overflow-")
            await self._record(order, "update", "ivr", outcome=f"overflow-{destination}")
            await self._to_operator(session, call_id, "overflow")
            return
        await session.set_variable("HOTLINE_NEXT", "done")
        await self._survey(session, order)

    async def _record(self, order: Any, event: str, actor: str, **changes: Any) -> None:
        await self.workorders.update(order.id, self.clock.seconds(), event, actor, **changes)

    async def _wait_for_agent(
        self, session: AGISession, call_id: str, entry: Any, order: Any,
        pressed: str | None = None,
    ) -> str:
        """Music on hold until an agent has talked with the caller; returns the agent id,
        ``callback`` (the caller left a number and keeps the place) or an overflow verdict.

        The wait polls the shared store every ``poll_interval_ms``: the store, not this
        process, decides (several service instances share one agent pool).
        """
        await session.set_music(True, entry.moh_class)
        next_announcement = self.clock.seconds() + entry.announce_every_s
        digit = pressed
        while True:
            if digit is None:
                digit = await session.wait_for_digit(self.poll_interval_ms)
            if digit and digit == entry.callback_key and await self._leave_number(
                session, call_id, order, entry
            ):
                return "callback"
            digit = None
            offer = await self.router.poll(call_id)
            if offer is None:
                now = self.clock.seconds()
                if entry.announce_every_s and now >= next_announcement:
                    next_announcement = now + entry.announce_every_s
                    await self._announce_position(session, call_id, entry.moh_class)
                continue
            await session.set_music(False)
            if offer.kind == "overflow":
                return f"overflow-{offer.destination}"
            if await self._ring(session, call_id, offer, order):
                return offer.agent_id
            await session.set_music(True, entry.moh_class)

    async def _leave_number(
        self, session: AGISession, call_id: str, order: Any, entry: Any
    ) -> bool:
        """Virtual hold: the caller confirms their caller ID or enters another number
        (:meth:`_callback_number`), which is kept with the call at its place in line. False
        when no number was confirmed, or an agent was offered the call in the meantime: the
        caller is then back on hold at the same place (or rung through at once)."""
        self.active[call_id] = "callback-number"
        await session.set_music(False)
        number = await self._callback_number(session, call_id, entry.callback_number)
        if number is None or not await self.router.request_callback(call_id, number):
            self.active[call_id] = "queue"
            await session.set_music(True, entry.moh_class)
            return False
        self.active[call_id] = "callback"
        caller_id = session.env.get("callerid", "")
        how = "the caller ID, confirmed" if number == caller_id else "entered by the caller"
        await self._record(order, "note", "caller",
                           text=f"callback requested to {number} ({how})")
        await self._record(order, "update", "caller", outcome="callback-pending")
        return True

    async def _callback_number(self, session: AGISession, call_id: str, rule: Any) -> str | None:
        """The number to call back, as the caller confirmed it; None when none was.

        A dialable caller ID within ``rule`` (``routing.core.CallbackNumber``) is read back
        digit by digit: 1 confirms it, other keys (ended by #) are another number. Without
        one the caller is asked for a number. An entered number is checked against ``rule``,
        then read back: 1 confirms, 2 (or silence) enters it again. ``rule.retries`` rounds
        at most, every wait bounded by ``rule.timeout_s``; after the last one the caller is
        told they keep their place, and goes back on hold. Neither a round nor the read-back
        of a number starts once an agent has been offered the call: talking to the agent now
        beats a callback later, and the agent waits at most for the caller's keys.
        """
        caller_id = session.env.get("callerid", "")
        why_not = rule.problem(caller_id) if DIALABLE.match(caller_id) else "not dialable"
        offered = caller_id if why_not is None else None
        if offered is None:
            log.info("call %s: caller ID %r not offered for a callback (%s)", call_id,
                     caller_id, why_not)
        wait_ms = int(rule.timeout_s * 1000)
        for _round in range(rule.retries):
            if await self.router.poll(call_id) is not None:
                return None
            if offered is not None:
                await session.stream_file(self._sound(session, "callback-number-is"))
                await session.say_digits(offered.removeprefix("+"))
                keys = await session.get_data(
                    self._sound(session, "callback-confirm-or-enter"), wait_ms, rule.max_digits
                )
                if keys == "1":
                    return offered
            else:
                keys = await session.get_data(
                    self._sound(session, "callback-enter-number"), wait_ms, rule.max_digits
                )
            if not keys:
                continue  # silence: the same question once more
            why_not = rule.problem(keys) if DIALABLE.match(keys) else "not dialable"
            if why_not is not None:
                log.info("call %s: callback number refused (%s)", call_id, why_not)
                await session.stream_file(self._sound(session, "callback-number-invalid"))
                continue
            if await self.router.poll(call_id) is not None:
                return None  # an agent is ready: no read-back while they wait
            await session.stream_file(self._sound(session, "callback-you-entered"))
            await session.say_digits(keys)
            answer = await session.get_data(
                self._sound(session, "callback-confirm-or-reenter"), wait_ms, 1
            )
            if answer == "1":
                return keys
            offered = None  # 2, another key or silence: enter the number again
        log.info("call %s: no callback number confirmed; back on hold", call_id)
        await session.stream_file(self._sound(session, "callback-number-failed"))
        return None

    async def _ring(self, session: AGISession, call_id: str, offer: Any, order: Any) -> bool:
        """Ring the agent; True once they talked with the caller.

        ``Dial`` runs until the conversation is over (option ``g``: we get the caller back
        when the agent hangs up), so its outcome is read afterwards from DIALSTATUS,
        DIALEDTIME and ANSWEREDTIME, which can be read even when the caller hung up.
        """
        self.active[call_id] = "ringing"
        await self._safe_caller_name_for_agent(session)
        dial_started = self.clock.seconds()
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
        self.active[call_id] = "connected" if outcome == "answered" else "queue"
        answered_at = None
        if outcome == "answered":
            # Normally recorded live from ARI's Dial event; this is the fallback when ARI is
            # away: Dial's own timers say how long it rang before the answer.
            rang_ms = _ms(await session.get_variable("DIALEDTIME_MS")) - _ms(
                await session.get_variable("ANSWEREDTIME_MS")
            )
            dialled = self.clock.seconds() - dial_started
            answered_at = dial_started + min(max(rang_ms / 1000, 0.0), dialled)
        await self.router.ring_result(call_id, offer.agent_id, outcome, answered_at)
        if outcome == "caller_gone":
            self.active[call_id] = "ended"
            await self._record(order, "note", "caller", text="caller hung up while ringing")
            await self._record(order, "update", "caller", outcome="abandoned")
            raise ChannelHungUp("caller hung up while the agent's phone rang")
        if outcome != "answered":
            await self._record(
                order, "note", "router", text=f"agent {offer.agent_id}: {outcome}"
            )
            return False
        await self._record(order, "assign", "router", agent=offer.agent_id)
        await self._record(order, "start", offer.agent_id)
        by = "caller" if caller_gone else "agent"
        await self.router.completed(call_id, offer.agent_id, by=by)
        dialled = self.clock.seconds() - dial_started
        await self._record(
            order, "note", offer.agent_id, text=f"conversation ended after {dialled:.0f} s in Dial"
        )
        if caller_gone:
            self.active[call_id] = "ended"
            raise ChannelHungUp("caller hung up after the conversation")
        return True

    async def _safe_caller_name_for_agent(self, session: AGISession) -> None:
        """The agent's phone shows the caller's name in a SIP header: control characters,
        quotes and backslashes there break softphones (the work order keeps it verbatim)."""
        name = session.env.get("calleridname", "")
        shown = displayable_name(name)
        if shown != name:
            await session.set_variable("CALLERID(name)", shown, allow_function=True)

    async def _survey(self, session: AGISession, order: Any) -> None:
        """Post-call satisfaction: CSAT 1-5, then NPS 0-10 (two keys: 1 then 0 for 10)."""
        survey = self.config().menus.survey
        if not survey.enabled:
            await session.stream_file(self._sound(session, "goodbye"))
            return
        self.active[order.call_id] = "survey"
        wait_ms = int(survey.timeout_s * 1000)
        csat = await session.get_data(self._sound(session, survey.csat_prompt), wait_ms, 1)
        if csat and csat in "12345":
            await self._record(order, "update", "caller", csat=int(csat))
            nps = await session.get_data(self._sound(session, survey.nps_prompt), wait_ms, 2)
            if nps and nps.isdigit() and int(nps) <= 10:
                await self._record(order, "update", "caller", nps=int(nps))
        await session.stream_file(self._sound(session, "goodbye"))

    async def _announce_position(self, session: AGISession, call_id: str, moh: str) -> None:
        status = await self.router.status(call_id)
        if status is None:
            return
        await session.set_music(False)
        await session.stream_file(self._sound(session, "position-is"))
        await session.say_number(status.position)
        if status.estimated_wait_s is not None:
            await session.stream_file(self._sound(session, "estimated-wait-minutes"))
            await session.say_number(max(1, round(status.estimated_wait_s / 60)))
        await session.set_music(True, moh)


DIAL_OUTCOMES = {
    "ANSWER": "answered",
    "NOANSWER": "no_answer",
    "BUSY": "busy",
    "CONGESTION": "rejected",
    "CHANUNAVAIL": "unavailable",
    "CANCEL": "caller_gone",
}


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


def _urgency_of(intents: Any, category: str) -> str:
    """The category's urgency from the caller's intents file (urgent / important / normal)."""
    known = intents.categories.get(category)
    return known.urgency if known is not None else "normal"


def _ms(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0

