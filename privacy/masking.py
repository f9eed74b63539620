"""Caller numbers and names as logs may show them: enough to tell calls apart, no more.

``mask_number("+821012345678") == "+8210****5678"``; ``mask_name("Kim Chul-soo") == "K. C."``.
Wrap the value where a log line prints it (``log.info("... %s", mask_number(number))``); the
work order, not the log, is where the full value is kept (encrypted).
"""

from __future__ import annotations

_STARS = "****"  # always four: the mask does not tell the number's length


def mask_number(number: str) -> str:
    """The first four and last four digits, a leading ``+`` kept; shorter numbers keep only
    their last two digits. Characters other than digits are dropped."""
    digits = "".join(ch for ch in number if ch.isascii() and ch.isdigit())
    plus = "+" if number.strip().startswith("+") else ""
    if not digits:
        return "<none>" if not number.strip() else _STARS
    if len(digits) < 9:
        return plus + _STARS + digits[-2:]
    return plus + digits[:4] + _STARS + digits[-4:]


def mask_name(name: str, limit: int = 3) -> str:
    """The initials of the first ``limit`` words, each followed by a dot; a character that
    is not printable becomes ``?``."""
    words = name.split()
    if not words:
        return "<none>"
    initials = [(word[0] if word[0].isprintable() else "?") + "." for word in words[:limit]]
    return " ".join(initials) + (" ..." if len(words) > limit else "")
