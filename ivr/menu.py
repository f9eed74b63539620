"""Walking the DTMF menu: a pure function over the menu config and the caller's keys.

The call flow asks :func:`start` for the first step, plays what the step says, collects the
caller's digits and hands them to :func:`advance`, until the step is a :class:`Request` (the
caller chose a request category), :class:`ToOperator` or :class:`ChangeLanguage` (the caller
chose another language: the flow starts over in it, from its ``languages`` entry menu). No
I/O here: the flow does that.

Wrong keys and silence replay the menu with a short notice, at most ``retries`` times per
menu; after that the caller goes to the operator instead of looping forever.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A language code as Asterisk's CHANNEL(language) spells it ("ko", "en", "pt_BR"); it also
# names the config files (intents.<code>.yaml, prompts.<code>.yaml) and the prompts' directory.
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")


def check_language_code(code: str) -> str:
    if not LANGUAGE_CODE.fullmatch(code):
        raise ValueError(
            f"{code!r} is not a language code (two or three lowercase letters, optionally "
            "_ and a country: ko, en, pt_BR)"
        )
    return code


class MenuOption(BaseModel):
    """One key of a menu: exactly one of request, menu, operator, back or language."""

    model_config = ConfigDict(extra="forbid")

    label: str = ""
    request: str | None = None
    urgency: Literal["urgent", "important", "normal"] | None = None
    menu: str | None = None
    operator: bool = False
    back: bool = False
    language: str | None = None  # "press 9 for Korean": start over in that language

    @model_validator(mode="after")
    def _one_action(self) -> MenuOption:
        actions = [self.request is not None, self.menu is not None, self.operator, self.back,
                   self.language is not None]
        if sum(actions) != 1:
            raise ValueError(
                "an option needs exactly one of: request, menu, operator, back, language"
            )
        return self


class Menu(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    timeout_s: float = Field(5.0, gt=0, le=60)
    max_digits: int = Field(1, ge=1, le=20)
    retries: int = Field(2, ge=0, le=5)
    # Card or identity digits: a recorded call's recording is muted while this step runs,
    # and the digits are never kept (not in the menu path either). Without options the step
    # collects up to max_digits keys and ends the walk (:class:`Collected`).
    sensitive: bool = False
    options: dict[str, MenuOption]

    @model_validator(mode="after")
    def _keys_are_dtmf(self) -> Menu:
        for key in self.options:
            if not key or any(c not in "0123456789*#" for c in key):
                raise ValueError(f"option key {key!r} is not a DTMF key sequence")
        if self.sensitive and any(o.request is not None or o.language is not None
                                  for o in self.options.values()):
            # Its keys would be kept in the work order's menu path.
            raise ValueError("a sensitive menu collects digits: no request or language "
                             "options (menu, back or operator only)")
        return self


class SurveyConfig(BaseModel):
    """The post-call satisfaction survey, by DTMF, when the agent hangs up first."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    csat_prompt: str = "survey-csat"  # "rate us from 1 to 5"
    nps_prompt: str = "survey-nps"  # "from 0 to 10, would you recommend us"
    timeout_s: float = Field(5.0, gt=0, le=30)


class LanguageLine(BaseModel):
    """One more language of the hotline (``languages.<code>`` in menus.yaml).

    Its callers are recognized with ``intents.<code>.yaml`` and hear ``prompts.<code>.yaml``;
    ``entry`` is the first menu of their DTMF menu tree (default: the top-level ``entry``,
    whose prompts are then heard in this language).
    """

    model_config = ConfigDict(extra="forbid")

    entry: str | None = None


class MenusConfig(BaseModel):
    """``config/menus.yaml``."""

    model_config = ConfigDict(extra="forbid")

    entry: str
    # The language of callers who reach ``entry``: intents.yaml and prompts.yaml speak it.
    language: str = "en"
    # More languages: code -> its line. A call's language comes from the dialplan
    # (HOTLINE_LANGUAGE) or from a menu option with ``language: <code>``.
    languages: dict[str, LanguageLine] = Field(default_factory=dict)
    menus: dict[str, Menu]
    survey: SurveyConfig = SurveyConfig()

    @field_validator("language")
    @classmethod
    def _language_code(cls, code: str) -> str:
        return check_language_code(code)

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, languages: dict[str, LanguageLine]) -> dict[str, LanguageLine]:
        for code in languages:
            check_language_code(code)
        return languages

    @model_validator(mode="after")
    def _references_exist(self) -> MenusConfig:
        if self.entry not in self.menus:
            raise ValueError(f"entry menu {self.entry!r} is not defined under menus")
        if self.language in self.languages:
            raise ValueError(
                f"languages.{self.language}: {self.language!r} is already the language of "
                "the top-level entry (intents.yaml, prompts.yaml)"
            )
        for code, line in self.languages.items():
            if line.entry is not None and line.entry not in self.menus:
                raise ValueError(
                    f"languages.{code}.entry: menu {line.entry!r} is not defined under menus"
                )
        for name, menu in self.menus.items():
            for key, option in menu.options.items():
                if option.menu is not None and option.menu not in self.menus:
                    raise ValueError(
                        f"menus.{name}.options.{key}: submenu {option.menu!r} is not defined"
                    )
                if option.language is not None and option.language not in self.codes:
                    raise ValueError(
                        f"menus.{name}.options.{key}: language {option.language!r} is not "
                        f"{self.language!r} nor declared under languages"
                    )
        for name in self.reachable():
            if self.menus[name].sensitive:
                raise ValueError(
                    f"menus.{name}: sensitive, yet reachable from the caller's menu before "
                    "the queue: sensitive steps run after the conversation (recordings.yaml "
                    "capture after_agent_menu), where the recording can be muted"
                )
        return self

    def reachable(self) -> set[str]:
        """The menus a caller can reach from an entry menu (before the queue)."""
        seen: set[str] = set()
        todo = [self.entry, *(line.entry for line in self.languages.values() if line.entry)]
        while todo:
            name = todo.pop()
            if name in seen or name not in self.menus:
                continue
            seen.add(name)
            todo += [o.menu for o in self.menus[name].options.values() if o.menu is not None]
        return seen

    @property
    def codes(self) -> tuple[str, ...]:
        """Every language of the hotline, the default one first."""
        return (self.language, *self.languages)

    def entry_of(self, language: str | None) -> str:
        """The first menu of callers speaking ``language`` (unknown or None: the default)."""
        line = self.languages.get(language or "")
        return line.entry if line is not None and line.entry else self.entry


# --- steps the walker returns -----------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """Play ``prompt`` (after ``notice``, if any) and collect up to ``max_digits`` keys."""

    menu: str
    prompt: str
    timeout_s: float
    max_digits: int
    notice: str | None = None  # "invalid-choice" or "no-input" before the replay


@dataclass(frozen=True)
class Request:
    """The caller chose a request category."""

    category: str
    urgency: str | None
    path: tuple[str, ...]


@dataclass(frozen=True)
class ToOperator:
    """Send the caller to the operator: chosen, or too many wrong keys or silences."""

    reason: Literal["chosen", "retries"]
    path: tuple[str, ...]


@dataclass(frozen=True)
class ChangeLanguage:
    """The caller chose another language: start over in it (speech, then its menus)."""

    language: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class Collected:
    """A sensitive step without options took the caller's digits; ``path`` is the keys
    before it (the digits themselves never go into a path)."""

    menu: str
    digits: str = field(repr=False)
    path: tuple[str, ...]


Step = Prompt | Request | ToOperator | ChangeLanguage | Collected


@dataclass(frozen=True)
class MenuState:
    """Where the caller is: the menu stack (for ``back``), keys pressed, failures here."""

    stack: tuple[str, ...]
    path: tuple[str, ...] = ()
    failures: int = 0

    @property
    def menu(self) -> str:
        return self.stack[-1]


def _prompt(config: MenusConfig, state: MenuState, notice: str | None = None) -> Prompt:
    menu = config.menus[state.menu]
    return Prompt(state.menu, menu.prompt, menu.timeout_s, menu.max_digits, notice)


def start(config: MenusConfig, language: str | None = None) -> tuple[MenuState, Step]:
    """The first step of a call: the prompt of the entry menu of the caller's language."""
    state = MenuState(stack=(config.entry_of(language),))
    return state, _prompt(config, state)


def start_at(config: MenusConfig, menu: str) -> tuple[MenuState, Step]:
    """The first step of a walk from ``menu`` (after the conversation: ``after_agent_menu``)."""
    state = MenuState(stack=(menu,))
    return state, _prompt(config, state)


def advance(
    config: MenusConfig, state: MenuState, digits: str | None
) -> tuple[MenuState, Step]:
    """The next step after the caller pressed ``digits`` (``None`` or ``""``: silence)."""
    menu = config.menus[state.menu]
    if menu.sensitive and not menu.options and digits:
        return state, Collected(state.menu, digits, state.path)
    option = menu.options.get(digits) if digits else None
    if option is None or not digits:  # (an option implies digits: said for the type checker)
        failures = state.failures + 1
        if failures > menu.retries:
            return replace(state, failures=failures), ToOperator("retries", state.path)
        notice = "invalid-choice" if digits else "no-input"
        state = replace(state, failures=failures)
        return state, _prompt(config, state, notice)

    path = (*state.path, "*" * len(digits) if menu.sensitive else digits)
    if option.request is not None:
        return replace(state, path=path), Request(option.request, option.urgency, path)
    if option.operator:
        return replace(state, path=path), ToOperator("chosen", path)
    if option.language is not None:
        return replace(state, path=path), ChangeLanguage(option.language, path)
    if option.menu is not None:
        state = MenuState(stack=(*state.stack, option.menu), path=path)
        return state, _prompt(config, state)
    # back: to the previous menu, or replay the entry menu when already at the top
    stack = state.stack[:-1] or state.stack
    state = MenuState(stack=stack, path=path)
    return state, _prompt(config, state)


def load_menus(data: Mapping[str, object]) -> MenusConfig:
    return MenusConfig.model_validate(data)
