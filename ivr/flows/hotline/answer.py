"""The answer, live: ARI's ``Dial`` event with ``dialstatus`` ANSWER gives the call's work
order to the agent who answered, at that moment.

The hotline flow itself learns the outcome only when ``Dial`` returns, after the conversation
(:mod:`.ring`, which reports the answer again as a fallback for when ARI is away). Both go
through ``WorkOrderStore.answered``, whose operation ids make the pair (and any instance
seeing the same event) apply ``assign`` and ``start`` once.

The agent is read from the answering channel (``peer``): ``PJSIP/agent103-0000000a`` is the
endpoint ``PJSIP/agent103``, matched to the agent whose softphone it is
(``LiveRouter.agent_for_device``). A Dial whose peer is no agent (the operator, a callback's
customer leg) or whose caller is not a call with a work order changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from workorders.model import WorkOrder

log = logging.getLogger(__name__)


class AnsweredOrders(Protocol):
    """The asyncio ``workorders.store.WorkOrderStore``, as the answer uses it."""

    def answered(self, call_id: str, agent: str, now: float) -> Awaitable[WorkOrder | None]: ...


class AssignOnAnswer:
    """ARI ``Dial`` handler: the answering agent takes the call's order (run as a Task)."""

    def __init__(
        self,
        workorders: AnsweredOrders,
        agent_for_device: Callable[[str], str | None],
        clock: Callable[[], float],
    ) -> None:
        self.workorders = workorders
        self.agent_for_device = agent_for_device
        self.clock = clock

    def on_dial(self, event: Mapping[str, Any]) -> asyncio.Future[WorkOrder | None] | None:
        if event.get("dialstatus") != "ANSWER":
            return None
        call_id = str((event.get("caller") or {}).get("id", ""))
        agent = self.agent_for_device(endpoint_of(str((event.get("peer") or {}).get("name", ""))))
        if not call_id or agent is None:
            return None
        task = asyncio.ensure_future(self.workorders.answered(call_id, agent, self.clock()))
        task.add_done_callback(_log_failure)
        return task


def endpoint_of(channel: str) -> str:
    """The endpoint of a channel name: ``PJSIP/agent103-0000000a`` -> ``PJSIP/agent103``."""
    endpoint, dash, _ = channel.rpartition("-")
    return endpoint if dash else channel


def _log_failure(task: asyncio.Future[WorkOrder | None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("answering agent not recorded on the work order (the flow will retry "
                    "when Dial returns): %s", task.exception())
