"""The DTMF menu walker: a pure function from (menu config, state, keys) to the next step."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ivr.menu import MenusConfig, Prompt, Request, ToOperator, advance, start

MENUS = MenusConfig.model_validate({
    "entry": "main",
    "menus": {
        "main": {"prompt": "menu-main", "retries": 1, "options": {
            "1": {"request": "inquiry"},
            "2": {"menu": "changes"},
            "0": {"operator": True},
        }},
        "changes": {"prompt": "menu-changes", "max_digits": 2, "options": {
            "1": {"request": "change"},
            "12": {"request": "change", "urgency": "important"},
            "9": {"back": True},
        }},
    },
})


def test_start_plays_the_entry_menu() -> None:
    """The first step is the entry menu's prompt with its timeout and digit count."""
    _state, step = start(MENUS)
    assert step == Prompt("main", "menu-main", 5.0, 1)


def test_request_carries_the_path_and_menu_urgency() -> None:
    """A submenu choice is a request whose path lists every key, with the option's urgency."""
    state, _ = start(MENUS)
    state, step = advance(MENUS, state, "2")
    assert step == Prompt("changes", "menu-changes", 5.0, 2)
    _state, step = advance(MENUS, state, "12")
    assert step == Request("change", "important", ("2", "12"))


def test_back_returns_to_the_previous_menu() -> None:
    """``back`` replays the menu one level up."""
    state, _ = start(MENUS)
    state, _ = advance(MENUS, state, "2")
    state, step = advance(MENUS, state, "9")
    assert isinstance(step, Prompt) and step.menu == "main"
    _state, step = advance(MENUS, state, "1")
    assert step == Request("inquiry", None, ("2", "9", "1"))


def test_wrong_key_then_silence_go_to_operator_after_retries() -> None:
    """A wrong key replays with the invalid-choice notice; silence with no-input; past the
    menu's retries the caller goes to the operator, never round in circles."""
    state, _ = start(MENUS)
    state, step = advance(MENUS, state, "7")
    assert isinstance(step, Prompt) and step.notice == "invalid-choice"
    _state, step = advance(MENUS, state, None)
    assert step == ToOperator("retries", ())


def test_operator_key() -> None:
    """The operator option is a choice, not a failure."""
    state, _ = start(MENUS)
    assert advance(MENUS, state, "0")[1] == ToOperator("chosen", ("0",))


@pytest.mark.parametrize("bad, message", [
    ({"entry": "nowhere", "menus": {}}, "entry menu 'nowhere' is not defined"),
    ({"entry": "m", "menus": {"m": {"prompt": "p", "options": {"1": {"menu": "x"}}}}},
     "submenu 'x' is not defined"),
    ({"entry": "m", "menus": {"m": {"prompt": "p", "options": {"1": {}}}}},
     "exactly one of"),
    ({"entry": "m", "menus": {"m": {"prompt": "p", "options": {"x": {"operator": True}}}}},
     "not a DTMF key"),
])
def test_bad_menus_are_refused_with_a_reason(bad: dict, message: str) -> None:
    """Dangling submenus, options with no or two actions, and non-DTMF keys are config
    errors at load, not surprises on a caller's line."""
    with pytest.raises(ValidationError, match=message):
        MenusConfig.model_validate(bad)
