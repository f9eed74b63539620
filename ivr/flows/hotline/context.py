"""What each step of the hotline flow works with: the call's own state (:class:`Call`, one
per call) and what every call shares (:class:`Shared`: config, stores, clock, prompts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ivr.agi import AGISession
from ivr.flows.hotline.seams import Clock, Recorder, Router, Speech, WorkOrders
from ivr.languages import language_of
from routing.live import CallRequest, QueueEntry
from workorders.model import WorkOrder

if TYPE_CHECKING:
    from ivr.config import HotlineConfig

Stage = Literal[
    "welcome", "speech", "menu", "order",  # before the queue: a hangup here is an abandon
    "queue", "callback-number", "callback", "ringing", "connected", "survey", "ended",
]
"""Where a call is, for metrics and for what a hangup there means."""

BEFORE_QUEUE: frozenset[Stage] = frozenset({"welcome", "speech", "menu", "order"})
"""Stages where a hangup is counted abandoned at that stage (in the queue, the queue step
counts it)."""

Request = dict[str, Any]
"""What the caller asked for, as the work order takes it: category, urgency, menu_path,
language, and what speech heard (transcript, confidence, engine)."""


@dataclass
class Call:
    """One call through the hotline flow: who calls, in which language, where the call is,
    and its work order and place in the queue once it has them."""

    session: AGISession
    call_id: str
    caller_number: str
    caller_name: str
    language: str | None = None  # None until chosen: the default language's prompts
    stage: Stage = "welcome"
    request_type: str = ""
    urgency: str = ""
    order: WorkOrder | None = None
    entry: QueueEntry | None = None
    # What the call was queued with (its arrival time kept): queued again from it when the
    # store lost it.
    request: CallRequest | None = None
    # Recording: whether this call is to be recorded (the queue records, the caller did not
    # opt out), the id once MixMonitor runs, and whether it was cut (AMI away).
    to_record: bool = False
    after_agent_menu: str | None = None
    recording_id: str | None = None
    recording_cut: bool = False
    # Routing's store unreachable while the caller waits in line: since when (None: it
    # answers), and the end of the wait the queue allows (None: no bound; before the call
    # is queued: the grace for joining it).
    store_away_since: float | None = None
    hold_until: float | None = None

    @classmethod
    def on(cls, session: AGISession) -> Call:
        """The call on this AGI session, as its header describes it."""
        env = session.env
        return cls(session, env.get("uniqueid", ""), env.get("callerid", ""),
                   env.get("calleridname", ""))

    @property
    def work_order(self) -> WorkOrder:
        """The call's work order; the steps after its creation ask for it."""
        if self.order is None:
            raise RuntimeError(f"call {self.call_id}: no work order yet")
        return self.order

    @property
    def queued(self) -> QueueEntry:
        """The call's place in the queue; the steps after enqueueing ask for it."""
        if self.entry is None:
            raise RuntimeError(f"call {self.call_id}: not queued yet")
        return self.entry


@dataclass
class Shared:
    """Everything every call needs, injected: config getter, stores, clock, prompt paths."""

    config: Callable[[], HotlineConfig]  # the config in force (reload-safe)
    workorders: WorkOrders
    router: Router
    clock: Clock
    sound: Callable[[str], str]  # prompt name -> path Asterisk plays
    speech: Speech | None = None
    recorder: Recorder | None = None  # None: no call is recorded
    poll_interval_ms: int = 500

    def prompt(self, call: Call, name: str) -> str:
        """The prompt ``name`` in the call's language, as Asterisk plays it."""
        return self.sound(language_of(self.config(), call.language).sound(name))

    async def record(self, call: Call, event: str, actor: str, **changes: object) -> None:
        """An event on the call's work order, now."""
        await self.workorders.update(
            call.work_order.id, self.clock.seconds(), event, actor, **changes
        )
