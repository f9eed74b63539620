"""What the API needs from the rest of the service, as Protocols: the live router, the
work-order store, the audit log, the health figures. The service passes the real ones
(:class:`routing.live.LiveRouter`, :class:`workorders.store.WorkOrderStore`, the audit log),
unit tests small fakes.

:class:`NoTokens` is the authenticator until a token store is wired in: it refuses every
token, so an API without one is closed, never open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from access import Authenticator, Identity, Unauthenticated
from routing.core import RoutingConfig, Snapshot
from workorders.model import Event, WorkOrder
from workorders.query import Cursor, OrderFilter

__all__ = [
    "AuditTrail",
    "Authenticator",
    "HealthSource",
    "LoggedAudit",
    "NoTokens",
    "RouterView",
    "Teams",
    "WorkOrderDesk",
    "WorkOrderReader",
]

log = logging.getLogger(__name__)


class RouterView(Protocol):
    """The part of :class:`routing.live.LiveRouter` the API reads and drives."""

    decisions: list[dict[str, Any]]

    def config(self) -> RoutingConfig: ...

    async def snapshot(self) -> Snapshot: ...

    async def agents(self) -> dict[str, dict[str, str]]: ...

    async def agent_action(
        self, agent_id: str, action: str, reason: str = ""
    ) -> tuple[str, bool]: ...


Teams = Callable[[str], "str | None"]
"""An agent's team (agents.yaml), ``None`` without one: the scope of supervisors."""


class WorkOrderReader(Protocol):
    async def get(self, order_id: str) -> WorkOrder | None: ...

    async def get_by_call(self, call_id: str) -> WorkOrder | None: ...


class WorkOrderDesk(WorkOrderReader, Protocol):
    """What the work-order routes read and change (:class:`workorders.store.WorkOrderStore`)."""

    async def find(
        self, f: OrderFilter, now: float, *, limit: int = ..., after: Cursor | None = None,
        history: bool = True,
    ) -> tuple[list[WorkOrder], Cursor | None]: ...

    async def update(
        self, order_id: str, now: float, event: Event | str, actor: str, **changes: Any
    ) -> WorkOrder | None: ...

    async def merge(
        self, survivor_id: str, merged_id: str, now: float, actor: str
    ) -> tuple[WorkOrder, WorkOrder]: ...

    async def set_legal_hold(
        self, order_id: str, held: bool, now: float, actor: str, reason: str
    ) -> WorkOrder: ...


class AuditTrail(Protocol):
    """The audit log's ``record`` (issue 10's contract); returns the entry's id."""

    async def record(
        self, *, user: str, role: str, action: str, obj: str, address: str, now: float,
        reason: str | None = None, details: Mapping[str, str] | None = None,
    ) -> str: ...


class SpooledAuditTrail(AuditTrail, Protocol):
    """An audit trail that keeps entries locally while Redis is away (``audit.log.AuditLog``);
    the service calls ``replay_spool`` periodically to chain them once Redis is back."""

    async def replay_spool(self) -> int: ...


class HealthSource(Protocol):
    """The figures of ``GET /health``, from the running service."""

    async def redis_ok(self) -> bool: ...

    def ari_state(self) -> str: ...

    def calls(self) -> int: ...

    def speech_streams(self) -> int | None: ...


class NoTokens:
    """An :class:`access.Authenticator` that knows no token: every request is refused."""

    async def authenticate(self, authorization: str | None, now: float) -> Identity:
        raise Unauthenticated("no token store is configured: the API accepts no token")


class LoggedAudit:
    """An :class:`AuditTrail` that writes each entry to the service log only, until the audit
    log proper is wired in (with :class:`NoTokens` nothing reaches it anyway)."""

    def __init__(self) -> None:
        self._count = 0

    async def record(
        self, *, user: str, role: str, action: str, obj: str, address: str, now: float,
        reason: str | None = None, details: Mapping[str, str] | None = None,
    ) -> str:
        self._count += 1
        log.info("audit: %s (%s) %s %s from %s at %.3f reason=%s details=%s", user, role,
                 action, obj, address, now, reason, dict(details or {}))
        return f"log-{self._count}"

    async def replay_spool(self) -> int:
        return 0  # every entry went to the log at once: nothing waits
