"""The webhook body and its Standard Webhooks signature, as a receiver checks them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from events.consumer import Entry
from webhooks.signature import InvalidSignature, payload, signed_headers, verify

KEY = bytes(range(32))
ENTRY = Entry("1764321600000-0", {
    "kind": "WOASSIGN", "time": "2026-11-28T09:00:00.000000Z", "order_id": "7",
    "agent": "agent101", "status": "assigned",
    "details": '{"agent": "agent101", "from": "pending", "to": "assigned"}',
})
NOW = 1_764_321_600


def test_the_body_is_the_event_with_its_details_as_json() -> None:
    """The body names the entry id, the kind as ``type``, the event time as ``timestamp``,
    and every other field under ``data``, ``details`` decoded into an object."""
    body = json.loads(payload(ENTRY))
    assert body == {
        "id": "1764321600000-0", "type": "WOASSIGN", "timestamp": "2026-11-28T09:00:00.000000Z",
        "data": {"order_id": "7", "agent": "agent101", "status": "assigned",
                 "details": {"agent": "agent101", "from": "pending", "to": "assigned"}},
    }


def test_details_that_are_not_json_stay_a_string() -> None:
    """A ``details`` value that does not parse is delivered as the string it is."""
    body = json.loads(payload(Entry("1-0", {"kind": "X", "details": "{broken"})))
    assert body["data"]["details"] == "{broken"


def test_the_signature_is_hmac_sha256_over_id_timestamp_and_body() -> None:
    """``webhook-signature`` is ``v1,`` + base64 HMAC-SHA256 of ``<id>.<timestamp>.<body>``
    (Standard Webhooks), computed here independently of the module."""
    body = payload(ENTRY)
    headers = signed_headers(KEY, ENTRY.id, NOW, body)
    mac = hmac.new(KEY, f"{ENTRY.id}.{NOW}.".encode() + body, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": ENTRY.id, "webhook-timestamp": str(NOW),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "content-type": "application/json",
    }


def test_a_receiver_accepts_a_signed_request_within_five_minutes() -> None:
    """``verify`` accepts the request signed with the key up to 300 s either side of its
    clock (header names in any case), and returns the message id to deduplicate on."""
    body = payload(ENTRY)
    headers = {k.title(): v for k, v in signed_headers(KEY, ENTRY.id, NOW, body).items()}
    assert verify(KEY, headers, body, NOW + 300) == ENTRY.id
    assert verify(KEY, headers, body, NOW - 300) == ENTRY.id


@pytest.mark.parametrize(("change", "reason"), [
    (lambda h, b: (h, b + b" "), "no signature matches"),
    (lambda h, b: ({**h, "webhook-id": "2-0"}, b), "no signature matches"),
    (lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b), "no signature matches"),
    (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing"),
    (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "not Unix seconds"),
])
def test_a_receiver_refuses_a_changed_request(change, reason) -> None:
    """A changed body, id or timestamp, a missing header or a bad timestamp is refused."""
    body = payload(ENTRY)
    headers, body = change(signed_headers(KEY, ENTRY.id, NOW, body), body)
    with pytest.raises(InvalidSignature, match=reason):
        verify(KEY, headers, body, NOW)


def test_a_replayed_request_is_refused() -> None:
    """The same signed request presented 301 s later is refused: a captured request cannot
    be replayed once the tolerance has passed."""
    body = payload(ENTRY)
    headers = signed_headers(KEY, ENTRY.id, NOW, body)
    with pytest.raises(InvalidSignature, match="replay"):
        verify(KEY, headers, body, NOW + 301)


def test_another_secret_does_not_verify_and_any_listed_signature_may_match() -> None:
    """A key other than the signer's finds no match; with several space-separated
    signatures (a secret being rotated), one match is enough."""
    body = payload(ENTRY)
    headers = signed_headers(KEY, ENTRY.id, NOW, body)
    with pytest.raises(InvalidSignature):
        verify(b"x" * 32, headers, body, NOW)
    other = signed_headers(b"x" * 32, ENTRY.id, NOW, body)["webhook-signature"]
    both = {**headers, "webhook-signature": f"{other} {headers['webhook-signature']}"}
    assert verify(KEY, both, body, NOW) == ENTRY.id
