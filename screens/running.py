"""Durations that run on screen: time in state, time waited, a wrap-up's countdown.

They change every second, and everything else on a screen changes only when something
happens. So a running duration is sent as where it counts from (``since``) or to
(``until``), as epoch seconds on the service's clock, with its text as of the board it was
made from; the page's script (``screens/static/screens.js``) advances the text every second.
The text is left out of the value's equality: a view model whose only change is the second
equals the last one, so nothing is rendered or sent again (a wallboard's agents table of a
few hundred rows would otherwise be rendered and sent every second to every wallboard).
What still depends on the time, the colour a threshold gives it, is part of the value: it
is rendered again when it crosses one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from screens.i18n import Strings
from screens.settings import Level

__all__ = ["Running", "elapsed", "remaining"]


@dataclass(frozen=True)
class Running:
    """A running duration: ``text`` as of the board's time, counting up from ``since`` or
    down to ``until`` (one of them; neither: the text stays), coloured by ``level``."""

    text: str = field(compare=False)
    level: str = Level.OK
    since: float | None = None
    until: float | None = None


def elapsed(t: Strings, since: float | None, now: float, level: str = Level.OK) -> Running:
    """Time since ``since`` (an em dash without one)."""
    return Running(t.duration(now - since if since is not None else None), level, since)


def remaining(t: Strings, until: float, now: float, level: str = Level.OK) -> Running:
    """Time left until ``until``, never below zero."""
    return Running(t.duration(max(0.0, until - now)), level, until=until)
