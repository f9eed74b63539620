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


def to_hash(order: WorkOrder) -> dict[str, str]:
    """The order as hash fields: history left out, empty values left out."""
    data = order.to_dict(history=False)
    caller, deadlines = data.pop("caller"), data.pop("deadlines")
    data.update(caller_number=caller["number"], caller_name=caller["name"], **deadlines)
    return {
        name: value if isinstance(value, str) and name not in _JSON_FIELDS else _json(value)
        for name, value in data.items()
        if value is not None
    }


def _json(value: Any) -> str:
    """``json.dumps(value)``, the values every new order has without the call: a creation
    writes four of them."""
    if isinstance(value, list) and not value:
        return "[]"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)  # what json writes for an int
    return json.dumps(value)


def order_from_hash(flat: Mapping[str, str], history: list[dict[str, Any]]) -> WorkOrder:
    """The order from its opened hash fields and history entries."""
    data: dict[str, Any] = {
        name: json.loads(value) if name in _JSON_FIELDS else value for name, value in flat.items()
    }
    data["caller"] = {"number": data.pop("caller_number"), "name": data.pop("caller_name")}
    data["deadlines"] = {"assign_by": data.pop("assign_by"), "respond_by": data.pop("respond_by")}
    data["history"] = history
    return WorkOrder.from_dict(data)
