"""A scripted stand-in for :class:`routing.live.LiveRouter`, for unit tests of call flows.

Offers come from a list given up front (``None`` = nothing yet for this poll), and every call
the flow makes is recorded in :attr:`FakeRouter.events`, queue_log style, so a test can assert
what the router was told.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from routing.live import CallRequest, CallStatus, Offer, QueueEntry


class FakeRouter:
    def __init__(
        self, offers: Iterable[Offer | None] = (), *, queue: str = "general",
        announce_every_s: float = 0.0,
    ) -> None:
        self.offers = deque(offers)
        self.queue = queue
        self.announce_every_s = announce_every_s
        self.events: list[tuple[str, ...]] = []
        self.waiting: dict[str, CallRequest] = {}

    async def enqueue(self, call: CallRequest) -> QueueEntry:
        self.waiting[call.call_id] = call
        self.events.append(("ENTERQUEUE", call.call_id, call.request_type, call.urgency))
        return QueueEntry(call.call_id, self.queue, "default", self.announce_every_s, 1, 60.0)

    async def poll(self, call_id: str) -> Offer | None:
        return self.offers.popleft() if self.offers else None

    async def ring_result(self, call_id: str, agent_id: str, outcome: str) -> bool:
        self.events.append(("RING", call_id, agent_id, outcome))
        if outcome in ("answered", "caller_gone"):
            self.waiting.pop(call_id, None)
        return True

    async def completed(self, call_id: str, agent_id: str, by: str) -> bool:
        self.events.append(("COMPLETE" + by.upper(), call_id, agent_id))
        return True

    async def abandon(self, call_id: str, stage: str) -> bool:
        self.waiting.pop(call_id, None)
        self.events.append(("ABANDON", call_id, stage))
        return True

    async def status(self, call_id: str) -> CallStatus | None:
        return CallStatus(1, 60.0) if call_id in self.waiting else None

    def kinds(self) -> list[str]:
        return [event[0] for event in self.events]
