"""``GET /health``: is Redis reachable, is ARI connected, how busy is this instance."""

from __future__ import annotations

from typing import Any

from api.seams import HealthSource


async def health(source: HealthSource) -> dict[str, Any]:
    return {
        "redis": await source.redis_ok(),
        "ari": source.ari_state(),
        "calls": source.calls(),
        "speech_streams": source.speech_streams(),
    }
