"""``GET /api/queues``: per queue waiting calls, longest wait, agents by state, service level."""

from __future__ import annotations

from typing import Any

from access import Permission
from api.routes import Call, Route
from api.schemas import Queues
from api.seams import RouterView
from api.services import queue_report


def routes(router: RouterView) -> list[Route]:
    async def get_queues(call: Call) -> dict[str, Any]:
        return await queue_report(router)

    return [Route("GET", "/api/queues", Permission.QUEUES_READ, get_queues,
                  "Per queue: waiting, longest wait, agents by state (off_schedule: available "
                  "outside their schedule), service level today", Queues)]
