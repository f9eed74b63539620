"""Per-queue figures: the answer of ``GET /api/queues`` and the source of /metrics' gauges."""

from __future__ import annotations

from typing import Any

from api.seams import RouterView
from routing import core


async def queue_report(router: RouterView) -> dict[str, Any]:
    """Per queue: calls waiting, longest wait, agents by state, service level today."""
    cfg = router.config()
    snapshot = await router.snapshot()
    out: dict[str, Any] = {}
    for name, queue in cfg.queues.items():
        waiting = snapshot.by_queue.get(name, [])
        states: dict[str, int] = {}
        for agent in snapshot.agents.values():
            if queue.skills.fit(agent.skills):
                shown = snapshot.shown_status(agent)  # available but off schedule: apart
                states[shown] = states.get(shown, 0) + 1
        stats = snapshot.stats.get(name) or core.QueueStats()
        out[name] = {
            "waiting": len(waiting),
            "longest_wait_s": round(
                max((snapshot.now - c.entered_at for c in waiting), default=0), 1
            ),
            "agents": states,
            "service_level_today": stats.service_level,
            "answered": stats.answered,
            "abandoned": stats.abandoned,
            "target": {"percent": queue.service_level.target * 100,
                       "within_s": queue.service_level.threshold_s},
        }
    return out
