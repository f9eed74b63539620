"""``GET /metrics``: Prometheus' text format, answered by prometheus_client's own resource
(:mod:`api.web` hands the request to it); no token needed, like /health."""

from __future__ import annotations

from typing import Any

from access import Permission
from api.routes import Call, Route


async def _prometheus(call: Call) -> Any:
    raise AssertionError("answered by the Prometheus resource")


def routes() -> list[Route]:
    return [Route("GET", "/metrics", Permission.PUBLIC, _prometheus,
                  "Prometheus text format (queue gauges, AGI and speech counters)", str,
                  raw=True)]
