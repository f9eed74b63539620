"""Walking the DTMF menu: a pure function over the menu config and the caller's keys.

The call flow asks :func:`start` for the first step, plays what the step says, collects the
caller's digits and hands them to :func:`advance`, until the step is a :class:`Request` (the
caller chose a request category) or :class:`ToOperator`. No I/O here: the flow does that.

Wrong keys and silence replay the menu with a short notice, at most ``retries`` times per
menu; after that the caller goes to the operator instead of looping forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class MenuOption(BaseModel):
    """One key of a menu: exactly one of request, menu, operator or back."""

    model_config = ConfigDict(extra="forbid")

    label: str = ""
    request: str | None = None
    urgency: Literal["urgent", "important", "normal"] | None = None
    menu: str | None = None
    operator: bool = False
    back: bool = False

    @model_validator(mode="after")
    def _one_action(self) -> MenuOption:
        actions = [self.request is not None, self.menu is not None, self.operator, self.back]
        if sum(actions) != 1:
            raise ValueError("an option needs exactly one of: request, menu, operator, back")
        return self


class Menu(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    timeout_s: float = Field(5.0, gt=0, le=60)
    max_digits: int = Field(1, ge=1, le=20)
    retries: int = Field(2, ge=0, le=5)
    options: dict[str, MenuOption]

    @model_validator(mode="after")
    def _keys_are_dtmf(self) -> Menu:
        for key in self.options:
            if not key or any(c not in "0123456789*#" for c in key):
                raise ValueError(f"option key {key!r} is not a DTMF key sequence")
        return self


class SurveyConfig(BaseModel):
    """The post-call satisfaction survey, by DTMF, when the agent hangs up first."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    csat_prompt: str = "survey-csat"  # "rate us from 1 to 5"
    nps_prompt: str = "survey-nps"  # "from 0 to 10, would you recommend us"
    timeout_s: float = Field(5.0, gt=0, le=30)


class MenusConfig(BaseModel):
    """``config/menus.yaml``."""

    model_config = ConfigDict(extra="forbid")

    entry: str
    menus: dict[str, Menu]
    survey: SurveyConfig = SurveyConfig()

    @model_validator(mode="after")
    def _references_exist(self) -> MenusConfig:
        if self.entry not in self.menus:
            raise ValueError(f"entry menu {self.entry!r} is not defined under menus")
        for name, menu in self.menus.items():
            for key, option in menu.options.items():
                if option.menu is not None and option.menu not in self.menus:
                    raise ValueError(
                        f"menus.{name}.options.{key}: submenu {option.menu!r} is not defined"
                    )
        return self


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


Step = Prompt | Request | ToOperator


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


def start(config: MenusConfig) -> tuple[MenuState, Step]:
    """The first step of a call: the entry menu's prompt."""
    state = MenuState(stack=(config.entry,))
    return state, _prompt(config, state)


def advance(
    config: MenusConfig, state: MenuState, digits: str | None
) -> tuple[MenuState, Step]:
    """The next step after the caller pressed ``digits`` (``None`` or ``""``: silence)."""
    menu = config.menus[state.menu]
    option = menu.options.get(digits) if digits else None
    if option is None:
        failures = state.failures + 1
        if failures > menu.retries:
            return replace(state, failures=failures), ToOperator("retries", state.path)
        notice = "invalid-choice" if digits else "no-input"
        state = replace(state, failures=failures)
        return state, _prompt(config, state, notice)

    path = (*state.path, digits)
    if option.request is not None:
        return replace(state, path=path), Request(option.request, option.urgency, path)
    if option.operator:
        return replace(state, path=path), ToOperator("chosen", path)
    if option.menu is not None:
        state = MenuState(stack=(*state.stack, option.menu), path=path)
        return state, _prompt(config, state)
    # back: to the previous menu, or replay the entry menu when already at the top
    stack = state.stack[:-1] or state.stack
    state = MenuState(stack=stack, path=path)
    return state, _prompt(config, state)


def load_menus(data: Mapping[str, object]) -> MenusConfig:
    return MenusConfig.model_validate(data)
