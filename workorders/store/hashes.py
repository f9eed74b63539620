"""A work order as the fields of its Redis hash, and back (history apart, in its own list).

Strings are stored as they are, numbers, lists and flags as JSON; empty values are left out.
Sealing the personal fields is the caller's job (``workorders.personal``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from workorders.model import WorkOrder

_JSON_FIELDS = frozenset(
    {"menu_path", "confidence", "csat", "nps", "escalations", "contacts", "legal_hold"}
)


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client may or may not decode replies)."""
    return value.decode() if isinstance(value, bytes) else value


def to_hash(order: WorkOrder) -> dict[str, str]:
    """The order as hash fields: history left out, empty values left out."""
    data = order.to_dict()
    caller, deadlines = data.pop("caller"), data.pop("deadlines")
    data.pop("history")
    data.update(caller_number=caller["number"], caller_name=caller["name"], **deadlines)
    return {
        name: value if isinstance(value, str) and name not in _JSON_FIELDS else json.dumps(value)
        for name, value in data.items()
        if value is not None
    }


def order_from_hash(flat: Mapping[str, str], history: list[dict[str, Any]]) -> WorkOrder:
    """The order from its opened hash fields and history entries."""
    data: dict[str, Any] = {
        name: json.loads(value) if name in _JSON_FIELDS else value for name, value in flat.items()
    }
    data["caller"] = {"number": data.pop("caller_number"), "name": data.pop("caller_name")}
    data["deadlines"] = {"assign_by": data.pop("assign_by"), "respond_by": data.pop("respond_by")}
    data["history"] = history
    return WorkOrder.from_dict(data)
