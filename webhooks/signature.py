"""What a webhook POST carries and how it is signed: Standard Webhooks 1.0 (pure, no I/O).

The field's convention (standardwebhooks.com; Stripe's ``t=...,v1=...`` scheme generalised,
used by Svix, Zapier, Twilio and others, with verifying libraries for most languages):

=====================  ============================================================================
``webhook-id``         the event's stream entry id (``1764321600000-0``): the same on every retry
                       and re-drive, so the receiver can drop a duplicate (delivery is
                       at-least-once)
``webhook-timestamp``  when this attempt was signed, integer Unix seconds
``webhook-signature``  ``v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>``;
                       space-separated when there are several
``content-type``       ``application/json``
=====================  ============================================================================

The key is the secret ``whsec_<base64>`` decoded (the part after ``whsec_``). A receiver
recomputes the HMAC over the raw body (before any JSON parsing), compares it in constant
time with each ``v1,`` signature, and refuses a timestamp more than 5 minutes from its own
clock (a captured request cannot be replayed later): :func:`verify` does exactly that.

The body (:func:`payload`)::

    {"id": "<entry id>", "type": "WOASSIGN", "timestamp": "2026-11-28T12:00:00.000000Z",
     "data": {"order_id": "7", "agent": "agent101", "details": {...}, ...}}

``type`` and ``timestamp`` are the event's ``kind`` and ``time``; ``data`` holds its other
fields (docs/contracts.md "Events"), strings as on the stream except ``details``, which is
the JSON object it encodes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from events.consumer import Entry

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
TOLERANCE_S = 300
_JSON_FIELDS = ("details",)


class InvalidSignature(ValueError):
    """The request is not what the secret's owner signed, or its timestamp is out of range."""


def payload(entry: Entry) -> bytes:
    """The POST body for a stream entry (see the module docstring), compact UTF-8 JSON."""
    data: dict[str, Any] = {
        name: value for name, value in entry.fields.items() if name not in ("kind", "time")
    }
    for name in _JSON_FIELDS:
        if name in data:
            # not JSON after all: delivered as the string it is
            with contextlib.suppress(ValueError):
                data[name] = json.loads(data[name])
    body = {"id": entry.id, "type": entry.kind, "timestamp": entry.fields.get("time", ""),
            "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` over ``<msg_id>.<timestamp>.<body>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of one attempt: id, timestamp, signature, content type."""
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: signature(key, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(
    key: bytes, headers: Mapping[str, str], body: bytes, now: float,
    tolerance_s: float = TOLERANCE_S,
) -> str:
    """The receiver's check: the message id when ``body`` was signed with ``key`` within
    ``tolerance_s`` of ``now``; :class:`InvalidSignature` otherwise. Header names are
    matched without regard to case."""
    lower = {name.lower(): value for name, value in headers.items()}
    try:
        msg_id, stamp, signatures = (
            lower[HEADER_ID], lower[HEADER_TIMESTAMP], lower[HEADER_SIGNATURE]
        )
    except KeyError as missing:
        raise InvalidSignature(f"header {missing} is missing") from None
    try:
        timestamp = int(stamp)
    except ValueError:
        raise InvalidSignature(f"{HEADER_TIMESTAMP} {stamp!r} is not Unix seconds") from None
    if abs(now - timestamp) > tolerance_s:
        raise InvalidSignature(
            f"{HEADER_TIMESTAMP} is {now - timestamp:+.0f} s from now (tolerance "
            f"{tolerance_s:g} s): a replay, or a clock out of step"
        )
    expected = signature(key, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, given) for given in signatures.split()):
        raise InvalidSignature("no signature matches")
    return msg_id
