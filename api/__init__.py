"""The hotline's HTTP API: routes declared per domain (:mod:`api.resources`), a service layer
with no HTTP object (:mod:`api.services`), typed errors with stable ids (:mod:`api.errors`),
pydantic schemas (:mod:`api.schemas`), access on every route (:mod:`access`), an OpenAPI 3.1
document generated from the route table (``GET /api/openapi.json``), and the twisted.web shell
(:mod:`api.web`).

=======================================  ==================  ======================================
``GET  /health``                         public              Redis reachable, ARI state, calls
``GET  /metrics``                        public              Prometheus text format
``GET  /api/openapi.json``               public              this API, as OpenAPI 3.1
``GET  /api/queues``                     queues:read         per queue: waiting, longest wait,
                                                             agents by state, service level
``GET  /api/agents``                     agents:read         agents' live state (own/team/all)
``POST /api/agents/<id>/<action>``       agents:state        login, logout, pause
                                                             (``?reason=break``), resume
``GET  /api/decisions``                  decisions:read      the last routing decisions
``GET  /api/calls/<call_id>/workorder``  workorders:read     the work order of a call (audited)
``GET  /api/workorders/<id>``            workorders:read     one work order (audited)
``GET  /api/reports/orders``             queues:read         work-order KPIs per day, queue,
                                                             category, urgency, agent
                                                             (``?from=&to=``, UTC days)
=======================================  ==================  ======================================
"""

from api.app import MAX_BODY_BYTES, Api, ApiRequest, ApiResponse, build_api, build_routes
from api.seams import (
    AuditTrail,
    HealthSource,
    LoggedAudit,
    NoTokens,
    RouterView,
    WorkOrderDesk,
    WorkOrderReader,
)
from api.services import queue_report

__all__ = [
    "MAX_BODY_BYTES",
    "Api",
    "ApiRequest",
    "ApiResponse",
    "AuditTrail",
    "HealthSource",
    "LoggedAudit",
    "NoTokens",
    "RouterView",
    "WorkOrderDesk",
    "WorkOrderReader",
    "build_api",
    "build_routes",
    "queue_report",
]
