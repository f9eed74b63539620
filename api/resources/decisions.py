"""``GET /api/decisions``: the last routing decisions with their explanations."""

from __future__ import annotations

from typing import Any

from access import Permission
from api.routes import Call, Route
from api.schemas import Decisions
from api.seams import RouterView
from api.services import recent_decisions


def routes(router: RouterView) -> list[Route]:
    async def get_decisions(call: Call) -> list[dict[str, Any]]:
        return recent_decisions(router)

    return [Route("GET", "/api/decisions", Permission.DECISIONS_READ, get_decisions,
                  "The last routing decisions of this instance, with their explanations",
                  Decisions)]
