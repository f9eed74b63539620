"""What a work order's fields may hold, checked and converted in one place: urgencies, the
request categories the config declares, scores, and the words that hold and contact events
must carry. Pure; :mod:`workorders.model` applies it to every creation and change."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from enum import StrEnum
from typing import Any, ClassVar


class Urgency(StrEnum):
    URGENT = "urgent"
    IMPORTANT = "important"
    NORMAL = "normal"


_CATEGORY_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")


class Category(str):
    """A request category: a name the config declares, not a fixed list.

    Categories are declared in ``intents.yaml`` (``categories:``, each with its urgency) and
    each has a rule in ``routing.yaml`` (``rules:``); ``ivr check-config`` holds the files to
    that (``ivr.categories``). Which names a store accepts is ``Policy.categories``. The
    constants are the shipped categories; ``.value`` is kept from when this was an enum.
    """

    INQUIRY: ClassVar[Category]
    CHANGE: ClassVar[Category]
    FAULT: ClassVar[Category]
    COMPLAINT: ClassVar[Category]
    OTHER: ClassVar[Category]

    def __new__(cls, name: object) -> Category:
        if not isinstance(name, str) or not _CATEGORY_NAME.match(name):
            raise ValueError(
                f"{name!r} is not a category name (lowercase letters, digits, '-' or '_')"
            )
        return super().__new__(cls, name)

    @property
    def value(self) -> str:
        return str.__str__(self)


Category.INQUIRY = Category("inquiry")
Category.CHANGE = Category("change")
Category.FAULT = Category("fault")
Category.COMPLAINT = Category("complaint")
Category.OTHER = Category("other")

#: The categories of the shipped config: what a ``Policy`` accepts unless told otherwise.
DEFAULT_CATEGORIES = frozenset(
    {Category.INQUIRY, Category.CHANGE, Category.FAULT, Category.COMPLAINT, Category.OTHER}
)



class WorkOrderError(ValueError):
    """A change that the work order model refuses."""


class TransitionRefused(WorkOrderError):
    """The event is not declared for the order's current status."""


class UnknownCategory(WorkOrderError):
    """The category is well formed but not one the loaded config declares."""



#: What a hold waits on, and how a contact with the customer was made.
WAITING_ON = ("customer", "third_party")
CHANNELS = ("phone", "email", "sms", "letter", "visit")


def check_history_words(event: str, changes: Mapping[str, Any]) -> None:
    """Hold and contact need their words: a wait without a reason cannot be reviewed."""
    if event == "hold":
        if changes.get("waiting_on") not in WAITING_ON:
            raise WorkOrderError(f"hold: waiting_on must be one of {list(WAITING_ON)}")
        if not isinstance(changes.get("reason"), str) or not changes["reason"].strip():
            raise WorkOrderError("hold: a reason is required")
    if event == "contact":
        if changes.get("channel") not in CHANNELS:
            raise WorkOrderError(f"contact: channel must be one of {list(CHANNELS)}")
        if not isinstance(changes.get("reached"), bool):
            raise WorkOrderError("contact: reached (true or false) is required")
    if event == "legal_hold":
        if not isinstance(changes.get("legal_hold"), bool):
            raise WorkOrderError("legal_hold: legal_hold (true to set, false to release) is "
                                 "required")
        if not isinstance(changes.get("reason"), str) or not changes["reason"].strip():
            raise WorkOrderError("legal_hold: a reason is required (it is kept in the history)")


def coerce(values: Mapping[str, Any], categories: Collection[str]) -> dict[str, Any]:
    """Validate and convert change values to the dataclass's types, with a clear message."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        try:
            out[name] = _COERCE[name](value)
        except (TypeError, ValueError) as exc:
            raise WorkOrderError(f"{name}={value!r}: {exc}") from None
    if "category" in out and out["category"] not in categories:
        raise UnknownCategory(
            f"category={out['category'].value!r}: not a category of the loaded config "
            f"(known: {', '.join(sorted(categories))}); categories are declared in "
            "intents.yaml (categories:), each with a rule in routing.yaml (rules:)"
        )
    return out


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError("a string is required")


def _score(low: int, high: int) -> Callable[[Any], int | None]:
    def check(value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"an integer from {low} to {high} is required")
        return value

    return check


def _confidence(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError("a number from 0 to 1 is required")
    return float(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("true or false is required")
    return value


def _menu_path(value: Iterable[Any]) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(step, str) for step in value):
        raise TypeError("a list of strings is required")
    return tuple(value)


# Each field a caller of ``apply`` may change, and how its value is checked and converted.
_COERCE: dict[str, Callable[[Any], object]] = {
    "category": Category,
    "urgency": Urgency,
    "queue": _optional_str,
    "agent": _optional_str,
    "outcome": _optional_str,
    "transcript": _optional_str,
    "engine": _optional_str,
    "language": _optional_str,
    "confidence": _confidence,
    "csat": _score(1, 5),
    "nps": _score(0, 10),
    "menu_path": _menu_path,
    "legal_hold": _flag,
}


