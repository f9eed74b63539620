"""``GET /health``: for load balancers and the container's health check; no token needed."""

from __future__ import annotations

from typing import Any

from access import Permission
from api.routes import Call, Route
from api.schemas import Health
from api.seams import HealthSource
from api.services import health


def routes(source: HealthSource) -> list[Route]:
    async def get_health(call: Call) -> dict[str, Any]:
        return await health(source)

    return [Route("GET", "/health", Permission.PUBLIC, get_health,
                  "Redis reachable, ARI state, calls in progress", Health)]
