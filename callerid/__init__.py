"""Caller identity on its way to Asterisk and SIP: which numbers may be dialled or shown, and
how a caller-controlled name is made safe for a display name.

One module for the rules every room applies (the hotline flow showing the caller to the
agent, callbacks dialling and presenting numbers, the routing schema validating
``callback.caller_id``), so a rule is changed in one place. Pure: no Twisted, no Redis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

DIALABLE = re.compile(r"^\+?[0-9*#]{2,32}$")
"""A callback number the trunk may dial; anything else is refused before it reaches Dial."""

PRESENTABLE_NUMBER_PATTERN = r"\+?[0-9]{2,31}"
PRESENTABLE_NUMBER = re.compile(PRESENTABLE_NUMBER_PATTERN + r"\Z")
"""A number the customer's phone may be shown: digits, an optional leading ``+``."""

DISPLAY_NAME_FORBIDDEN = frozenset('"\\<>()[],|;')
"""Characters a callback's display name may not hold: it travels unquoted inside Dial's
``f(...)`` option (``callbacks.flow.customer_display``), where these would be read as
syntax by ``ast_app_parse_options`` or ``ast_callerid_parse``."""


def displayable_name(name: str, limit: int = 64) -> str:
    """A caller name safe for a SIP display name: printable, no quotes or backslashes."""
    cleaned = "".join(" " if not c.isprintable() else c for c in name)
    cleaned = cleaned.replace('"', "'").replace("\\", "/")
    return " ".join(cleaned.split())[:limit]


def presentable_name(name: str) -> bool:
    """True when ``name`` may go unquoted into Dial's ``f(...)`` option as it is."""
    return not any(c in DISPLAY_NAME_FORBIDDEN or not c.isprintable() for c in name)


def dialled_number(env: Mapping[str, str]) -> str:
    """The number the caller dialled (``agi_dnid``: the SIP request URI's user on a trunk or a
    phone), "" when Asterisk does not know it (``unknown``, a Local or originated channel) or
    it is no phone number. ``agi_extension`` is no help: the dialplan's ``hotline-inbound``
    jumps to ``s@hotline`` before the AGI runs. A callback shows this number to the customer
    (``callbacks.policy.CallbackPolicy.presented``); it comes from the caller's side, so only
    digits with an optional leading ``+`` are kept."""
    dnid = env.get("dnid", "")
    return dnid if PRESENTABLE_NUMBER.match(dnid) else ""


__all__ = [
    "DIALABLE",
    "DISPLAY_NAME_FORBIDDEN",
    "PRESENTABLE_NUMBER",
    "PRESENTABLE_NUMBER_PATTERN",
    "dialled_number",
    "displayable_name",
    "presentable_name",
]
