"""The numbers in the routing state are personal data: sealed before Redis sees them.

A queued call's hash keeps the caller's number (``caller_number``) and, for a callback, the
number to call back (``callback_number``); the ``ENTERQUEUE``, ``CALLBACKREQUEST`` and
``CALLBACKATTEMPT`` events on ``hotline:events`` copy them. The service standard wants
personal data encrypted at rest (AES-256): the router seals each number with the service's
personal-data cipher (:class:`privacy.fields.FieldCipher`, AES-256-GCM, the call as owner and
the field's name as associated data, so a sealed number cannot be moved to another call or
field) before the Lua scripts write it, and opens it only where it is dialled or shown.

An event's reader that holds the ``workorders-pii`` data key opens a number with
``FieldCipher.open("call:<call_id>", field, value)``, ``field`` being ``caller_number`` for
``ENTERQUEUE``'s ``caller`` and ``callback_number`` for the callbacks' ``number``. A value written
before numbers were sealed is plain and passes through ``open`` unchanged.
"""

from __future__ import annotations

from typing import Protocol

CALLER = "caller_number"
CALLBACK_NUMBER = "callback_number"


class NumberCipher(Protocol):
    """Seals and opens one field of one owner (``privacy.fields.FieldCipher`` is one)."""

    def seal(self, owner: str, field: str, value: str) -> str: ...
    def open(self, owner: str, field: str, text: str) -> str: ...


class PlainNumbers:
    """No sealing: for tools and tests that run a router without the service's keys. ``ivr
    serve`` always hands the router its cipher (``hotline.service.Hotline``)."""

    def seal(self, owner: str, field: str, value: str) -> str:
        return value

    def open(self, owner: str, field: str, text: str) -> str:
        return text


def owner(call_id: str) -> str:
    return f"call:{call_id}"


def sealed(cipher: NumberCipher, call_id: str, field: str, number: str) -> str:
    """``number`` sealed for ``field`` of the call; no number (anonymous caller) stays ""."""
    return cipher.seal(owner(call_id), field, number) if number else ""


def opened(cipher: NumberCipher, call_id: str, field: str, text: str) -> str:
    return cipher.open(owner(call_id), field, text) if text else ""
