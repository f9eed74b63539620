"""A scripted stand-in for :class:`routing.live.LiveRouter`, for unit tests of call flows.

Offers come from a list given up front (``None`` = nothing yet for this poll), and every call
the flow makes is recorded in :attr:`FakeRouter.events`, queue_log style, so a test can assert
what the router was told. Set :attr:`FakeRouter.away` and every call fails as the live
router's do while Redis is unreachable (``ConnectionError``), recording nothing; set
:attr:`FakeRouter.fail_next` to N and only the next N calls fail so (an outage that ends).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from callbacks.live import CallbackVerdict
from callbacks.policy import CallbackNumber
from routing.live import Callback, CallRequest, CallStatus, Offer, QueueEntry


class FakeRouter:
    def __init__(
        self, offers: Iterable[Offer | None] = (), *, queue: str = "general",
        announce_every_s: float = 0.0, callback_key: str = "", accept_callback: bool = True,
        queued: dict[str, dict[str, str]] | None = None,
        callback_number: CallbackNumber | None = None, max_wait_s: float | None = None,
    ) -> None:
        self.max_wait_s = max_wait_s  # the queue's, in the entries enqueue returns
        self.callback_key = callback_key
        self.callback_number = callback_number or CallbackNumber()
        self.accept_callback = accept_callback
        self.queued = dict(queued or {})  # call_id -> record: calls already waiting (resume)
        self.callbacks: dict[str, Callback] = {}  # callbacks offered, for the callback flow
        self.retry_left = 1  # customer_failed: 1 (will retry) while > 0, then 2 (given up)
        self.offers = deque(offers)
        self.queue = queue
        self.announce_every_s = announce_every_s
        self.events: list[tuple[str, ...]] = []
        self.dispatches = 0
        self.waiting: dict[str, CallRequest] = {}
        self.lost: set[str] = set()  # queued calls the store lost (``forget``)
        self.away = False  # Redis unreachable: every call raises ConnectionError
        self.fail_next = 0  # this many next calls raise ConnectionError, then Redis is back
        self.failed = 0  # calls refused so far (away or fail_next)

    def _reach(self) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failed += 1
            raise ConnectionError("Redis unreachable (FakeRouter.fail_next)")
        if self.away:
            self.failed += 1
            raise ConnectionError("Redis unreachable (FakeRouter.away)")

    async def enqueue(self, call: CallRequest) -> QueueEntry:
        self._reach()
        self.lost.discard(call.call_id)
        self.waiting[call.call_id] = call
        self.events.append(("ENTERQUEUE", call.call_id, call.request_type, call.urgency))
        resumed = call.call_id in self.queued
        return QueueEntry(call.call_id, self.queue, "default", self.announce_every_s, 1, 60.0,
                          resumed=resumed, callback_key=self.callback_key,
                          callback_number=self.callback_number, max_wait_s=self.max_wait_s)

    async def dispatch(self) -> list[object]:
        self._reach()
        self.dispatches += 1
        return []

    def forget(self, call_id: str) -> None:
        """The store loses the queued call (a Redis crash): polls find no record of it until
        it is queued again."""
        self.waiting.pop(call_id, None)
        self.lost.add(call_id)

    async def poll(self, call_id: str) -> Offer | None:
        """Like the store: an offer stands (every poll sees it) until the flow reports how the
        ring went; a scripted ``None`` is one poll that found nothing yet."""
        self._reach()
        if call_id in self.lost:
            return Offer(kind="lost")
        if not self.offers:
            return None
        if self.offers[0] is None:
            self.offers.popleft()
            return None
        offer = self.offers[0]
        if offer.kind == "overflow":
            self.offers.popleft()
        return offer

    async def ring_result(
        self, call_id: str, agent_id: str, outcome: str, at: float | None = None
    ) -> bool:
        self._reach()
        self.events.append(("RING", call_id, agent_id, outcome))
        if self.offers and self.offers[0] is not None:
            self.offers.popleft()  # the offer is settled
        if outcome in ("answered", "caller_gone"):
            self.waiting.pop(call_id, None)
        return True

    async def completed(self, call_id: str, agent_id: str, by: str) -> bool:
        self._reach()
        self.events.append(("COMPLETE" + by.upper(), call_id, agent_id))
        return True

    async def abandon(self, call_id: str, stage: str) -> bool:
        self._reach()
        self.waiting.pop(call_id, None)
        self.events.append(("ABANDON", call_id, stage))
        return True

    async def overflowed(self, call_id: str, destination: str) -> bool:
        self._reach()
        self.waiting.pop(call_id, None)
        self.events.append(("EXITWITHTIMEOUT", call_id, destination))
        return True

    async def status(self, call_id: str) -> CallStatus | None:
        self._reach()
        return CallStatus(1, 60.0) if call_id in self.waiting else None

    async def request_callback(self, call_id: str, number: str) -> bool:
        self._reach()
        if not self.accept_callback:
            return False
        self.events.append(("CALLBACKREQUEST", call_id, number))
        return True

    async def waiting_call(self, call_id: str) -> dict[str, str] | None:
        self._reach()
        return self.queued.get(call_id)

    async def callback_offer(self, call_id: str) -> Callback | None:
        self._reach()
        return self.callbacks.get(call_id)

    async def callback_step(
        self, call_id: str, agent_id: str, step: str, detail: str | float = ""
    ) -> int:
        self._reach()
        self.events.append(("CALLBACK", call_id, agent_id, step, str(detail)))
        if step == "agent_answered":
            return self.callbacks[call_id].attempt + 1
        if step == "customer_failed":
            self.retry_left -= 1
            return (CallbackVerdict.RETRY if self.retry_left >= 0
                    else CallbackVerdict.GIVEN_UP)
        return 1

    def kinds(self) -> list[str]:
        return [event[0] for event in self.events]

