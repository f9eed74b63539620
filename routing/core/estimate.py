"""What a waiting caller is told and what drives relaxation: position, estimated wait and
the projected service level (formulas in ``routing.core``)."""

from __future__ import annotations

import math

from routing.core.config import QueueConfig, RoutingConfig
from routing.core.snapshot import QueueStats, Snapshot


def queue_position(snapshot: Snapshot, call_id: str) -> int:
    """1-based position of the call in its queue's routing order."""
    call = snapshot.call(call_id)
    return snapshot.in_queue(call.queue).index(call) + 1


def _per_call_seconds(snapshot: Snapshot, queue: QueueConfig) -> float:
    stats = snapshot.stats.get(queue.name) or QueueStats()
    return stats.aht(queue.aht_s) + queue.wrapup_s


def free_agents(snapshot: Snapshot, queue: QueueConfig) -> int:
    """Available agents whose skills match the queue's ``skills``."""
    key = ("free", queue.name)
    count = snapshot._memo.get(key)
    if count is None:
        # Set operations in C pass over the agents lacking every anchor skill (most of them).
        anchors, fit = queue.skills.anchors(), queue.skills.fit
        count = sum(
            1 for a in snapshot.available if not anchors.isdisjoint(a.skills) and fit(a.skills)
        )
        snapshot._memo[key] = count
    return count


def _wait_ahead(
    snapshot: Snapshot, queue: QueueConfig, position: int, config: RoutingConfig
) -> float:
    serving = snapshot.serving(queue, config)
    if serving == 0:
        return math.inf
    behind_free = position - free_agents(snapshot, queue)
    if behind_free <= 0:
        return 0.0
    return behind_free * _per_call_seconds(snapshot, queue) / serving


def estimated_wait(snapshot: Snapshot, call_id: str, config: RoutingConfig) -> float:
    """Estimated remaining wait (s): ``max(position - free, 0) * (AHT + wrap-up) / serving``.

    ``free`` is the number of available agents matching the queue's skills (0 whenever the
    router has settled, since it would have offered them the call); ``inf`` when nobody
    serves the queue. See the module docstring.
    """
    call = snapshot.call(call_id)
    queue = config.queues[call.queue]
    return _wait_ahead(snapshot, queue, queue_position(snapshot, call_id), config)


def projected_service_level(snapshot: Snapshot, queue_name: str, config: RoutingConfig) -> float:
    """Projected service level of the queue (formula in the module docstring); 1.0 when there
    is nothing to count yet."""
    key = ("projected", queue_name)
    cached: float | None = snapshot._memo.get(key)
    if cached is not None:
        return cached
    queue = config.queues[queue_name]
    stats = snapshot.stats.get(queue_name) or QueueStats()
    waiting = snapshot.in_queue(queue_name)
    within = 0
    serving = snapshot.serving(queue, config) if waiting else 0
    if serving:
        # Inline _wait_ahead: this loop runs over every waiting call of the queue.
        free = free_agents(snapshot, queue)
        per_position = _per_call_seconds(snapshot, queue) / serving
        latest = snapshot.now - queue.service_level.threshold_s
        # The first ``free`` calls have nothing ahead of them; the rest wait for their
        # position behind the free agents: ``max(position - free, 0) * per_position``.
        for call in waiting[:free]:
            if latest <= call.entered_at:
                within += 1
        for ahead, call in enumerate(waiting[free:], 1):
            if ahead * per_position + latest <= call.entered_at:
                within += 1
    total = stats.answered + stats.abandoned + stats.overflowed + len(waiting)
    result = (stats.answered_within + within) / total if total else 1.0
    snapshot._memo[key] = result
    return result
