"""What the caller wants: the welcome, then speech or the DTMF menu, in the caller's language
(the dialplan's, or one chosen in the menu: "press 9 for Korean" starts over in Korean)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr import menu as menu_walker
from ivr.flows.hotline.context import Call, Request, Shared
from ivr.languages import all_languages, call_language, language_of

if TYPE_CHECKING:
    from ivr.config import HotlineConfig
    from ivr.speech.schema import IntentsConfig

log = logging.getLogger(__name__)

ALL_DIGITS = "0123456789*#"


@dataclass(frozen=True)
class Choice:
    """The caller's request for the work order, and why they go to the operator instead of
    the queue (``None``: they queue)."""

    request: Request
    to_operator: str | None = None


async def choose(hotline: Shared, call: Call) -> Choice:
    """Welcome, speech or menu, once per language the caller chooses."""
    cfg = hotline.config()
    await _set_language(cfg, call, await _dialplan_language(cfg, call))
    before: list[str] = []  # keys pressed in the languages the caller left
    while True:
        call.stage = "welcome"
        pressed = await call.session.stream_file(hotline.prompt(call, "welcome"), ALL_DIGITS)
        if hotline.speech is not None and not pressed:
            call.stage = "speech"
            heard = await hotline.speech.listen(call.session, call.language)
            if isinstance(heard, dict):
                return _spoken(call, heard, before)
            if heard is not None:
                pressed = heard  # a key instead of words: straight into the menu
        call.stage = "menu"
        step = await _walk_menu(hotline, call, cfg, pressed)
        if not isinstance(step, menu_walker.ChangeLanguage):
            return _keyed(cfg, call, step, before)
        log.info("call %s: caller chose language %s", call.call_id, step.language)
        before.extend(step.path)
        await _set_language(cfg, call, step.language)


async def _set_language(cfg: HotlineConfig, call: Call, code: str) -> None:
    """The call speaks ``code`` from now on: prompts, speech, menus, and Asterisk's own
    sounds (CHANNEL(language): digits of the queue position, ...)."""
    call.language = code
    if len(all_languages(cfg)) > 1:
        await call.session.set_variable("CHANNEL(language)", code, allow_function=True)


async def _dialplan_language(cfg: HotlineConfig, call: Call) -> str:
    """The language the dialplan gave this line (HOTLINE_LANGUAGE), on a hotline with
    several; one language: no question asked."""
    if len(all_languages(cfg)) <= 1:
        return language_of(cfg, None).code
    return call_language(cfg, await call.session.get_variable("HOTLINE_LANGUAGE"))


async def _walk_menu(
    hotline: Shared, call: Call, cfg: HotlineConfig, pressed: str | None
) -> menu_walker.Request | menu_walker.ToOperator | menu_walker.ChangeLanguage:
    state, step = menu_walker.start(cfg.menus, call.language)
    digits = pressed
    while True:
        if digits is None:
            assert isinstance(step, menu_walker.Prompt)
            if step.notice:
                await call.session.stream_file(hotline.prompt(call, step.notice))
            digits = await call.session.get_data(
                hotline.prompt(call, step.prompt), int(step.timeout_s * 1000), step.max_digits,
            )
        state, step = menu_walker.advance(cfg.menus, state, digits or None)
        digits = None
        # Sensitive steps are not reachable from an entry menu (MenusConfig checks it).
        assert not isinstance(step, menu_walker.Collected)
        if not isinstance(step, menu_walker.Prompt):
            return step


def _spoken(call: Call, heard: Request, before: list[str]) -> Choice:
    """What speech understood; "operator" is a wish, not a category."""
    if heard["category"] == "operator":
        return Choice(_in_language(call, {**heard, "category": "other"}, before), "asked")
    return Choice(_in_language(call, heard, before))


def _keyed(
    cfg: HotlineConfig, call: Call, step: menu_walker.Request | menu_walker.ToOperator,
    before: list[str],
) -> Choice:
    """What the menu walk ended with. The operator still gets a work order: the caller
    wanted something."""
    if isinstance(step, menu_walker.ToOperator):
        request: Request = {"category": "other", "urgency": "normal",
                            "menu_path": list(step.path)}
        return Choice(_in_language(call, request, before), "menu-" + step.reason)
    urgency = step.urgency or _urgency_of(
        language_of(cfg, call.language).intents, step.category
    )
    request = {"category": step.category, "urgency": urgency, "menu_path": list(step.path)}
    return Choice(_in_language(call, request, before))


def _in_language(call: Call, request: Request, before: list[str]) -> Request:
    return {**request, "language": call.language,
            "menu_path": [*before, *request["menu_path"]]}


def _urgency_of(intents: IntentsConfig, category: str) -> str:
    """The category's urgency from the caller's intents file (urgent / important / normal)."""
    known = intents.categories.get(category)
    return known.urgency if known is not None else "normal"
