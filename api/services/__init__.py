"""The API's service layer: what each endpoint does, over the router, the work-order store
and the audit trail (the Protocols of :mod:`api.seams`), with no HTTP or Twisted object.

Each service authorizes against the object it touches (:meth:`api.routes.Actor.authorize`)
and records in the audit trail every read of personal data and every change made for
someone else.
"""

from api.services.agents import AgentService
from api.services.decisions import recent_decisions
from api.services.health import health
from api.services.queues import queue_report
from api.services.workorders import WorkOrderService

__all__ = ["AgentService", "WorkOrderService", "health", "queue_report", "recent_decisions"]
