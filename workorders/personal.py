"""Which values of a work order are personal data, and how they are sealed on the way out.

Personal: the caller's number and name, the transcript of what they said, and the text of
notes (``note`` events keep it in their history entry's ``details["text"]``; ``update``
events and the creation keep a changed transcript in ``details["transcript"]``). Each is
sealed field by field (:class:`FieldCipher`, :mod:`privacy.fields` in the service) before it
reaches Redis or the spool file, and opened when read back, so the model and every output
see plaintext. In Redis and in spooled creations the owner bound to a sealed value is the
order's call id: known before Redis allocates the order id, and kept when a spooled order is
renumbered on replay. In spooled updates it is the operation id (the record's own identity).

The events stream gets none of these values: :func:`public_details` leaves them out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

#: Hash fields (``workorders.store``) that hold personal data, and the field name they are
#: sealed under.
HASH_FIELDS: Mapping[str, str] = {
    "caller_number": "caller_number",
    "caller_name": "caller_name",
    "transcript": "transcript",
}
#: History ``details`` (and update ``changes``) that hold personal data.
DETAIL_FIELDS: Mapping[str, str] = {"transcript": "transcript", "text": "note"}


class FieldCipher(Protocol):
    """Seals personal fields for an owner and opens them (``privacy.fields.FieldCipher``)."""

    def seal(self, owner: str, field: str, value: str) -> str: ...

    def open(self, owner: str, field: str, text: str) -> str: ...

    def blind_index(self, number: str) -> str | None: ...

    def is_sealed(self, text: str) -> bool: ...


Transform = Callable[[str, str, str], str]  # (owner, field, value) -> value
EntryTransform = Callable[[Mapping[str, Any], str, FieldCipher], dict[str, Any]]


def seal_hash(fields: Mapping[str, str], owner: str, cipher: FieldCipher) -> dict[str, str]:
    """Hash fields with the personal ones sealed."""
    return {
        name: cipher.seal(owner, HASH_FIELDS[name], value) if name in HASH_FIELDS else value
        for name, value in fields.items()
    }


def open_hash(fields: Mapping[str, str], cipher: FieldCipher) -> dict[str, str]:
    """Hash fields read from Redis with the personal ones opened (owner: their call id)."""
    owner = fields.get("call_id", "")
    return {
        name: cipher.open(owner, HASH_FIELDS[name], value) if name in HASH_FIELDS else value
        for name, value in fields.items()
    }


def seal_details(details: Mapping[str, Any], owner: str, cipher: FieldCipher) -> dict[str, Any]:
    """History details (or update changes) with their personal strings sealed."""
    return {k: _apply(cipher.seal, owner, k, v) for k, v in details.items()}


def open_details(details: Mapping[str, Any], owner: str, cipher: FieldCipher) -> dict[str, Any]:
    return {k: _apply(cipher.open, owner, k, v) for k, v in details.items()}


def seal_entry(entry: Mapping[str, Any], owner: str, cipher: FieldCipher) -> dict[str, Any]:
    """A history entry's dict (``HistoryEntry.to_dict``) with its personal details sealed."""
    return {**entry, "details": seal_details(entry.get("details") or {}, owner, cipher)}


def open_entry(entry: Mapping[str, Any], owner: str, cipher: FieldCipher) -> dict[str, Any]:
    return {**entry, "details": open_details(entry.get("details") or {}, owner, cipher)}


def seal_order(data: Mapping[str, Any], cipher: FieldCipher) -> dict[str, Any]:
    """An order's dict (``WorkOrder.to_dict``) with every personal value sealed."""
    return _order(data, cipher.seal, cipher, seal_entry)


def open_order(data: Mapping[str, Any], cipher: FieldCipher) -> dict[str, Any]:
    return _order(data, cipher.open, cipher, open_entry)


def public_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """History details for the events stream: the personal values left out."""
    return {k: v for k, v in details.items() if k not in DETAIL_FIELDS}


def _apply(transform: Transform, owner: str, name: str, value: Any) -> Any:
    if name in DETAIL_FIELDS and isinstance(value, str):
        return transform(owner, DETAIL_FIELDS[name], value)
    return value


def _order(
    data: Mapping[str, Any], transform: Transform, cipher: FieldCipher, entry: EntryTransform
) -> dict[str, Any]:
    owner = str(data.get("call_id", ""))
    out = dict(data)
    caller = dict(data.get("caller") or {})
    for key, field in (("number", "caller_number"), ("name", "caller_name")):
        if isinstance(caller.get(key), str):
            caller[key] = transform(owner, field, caller[key])
    out["caller"] = caller
    if isinstance(data.get("transcript"), str):
        out["transcript"] = transform(owner, "transcript", data["transcript"])
    out["history"] = [entry(h, owner, cipher) for h in data.get("history") or ()]
    return out
