"""The last routing decisions this instance made, with the routing core's explanations."""

from __future__ import annotations

from typing import Any

from api.seams import RouterView


def recent_decisions(router: RouterView) -> list[dict[str, Any]]:
    return router.decisions
