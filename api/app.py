"""The API as a coroutine from request to answer, with no Twisted in it: match the route,
read and bound the body, authenticate, authorize, validate, call the resource, turn any error
into its JSON answer. :mod:`api.web` is the twisted.web shell around it.

Order of the checks, so that a client learns no more than it may: the route (404/405), the
body's size (413), the token (401), the permission on the collection for routes that are not
scoped (403), then the request's schemas (400/415), then the service, which authorizes scoped
routes against the object they touch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from access import Authenticator, Permission, team_of
from api.errors import (
    BadRequest,
    BodyTooLarge,
    Internal,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
    as_api_error,
    status_of,
)
from api.resources import (
    agents,
    decisions,
    health,
    metrics,
    openapi,
    queues,
    reports,
    workorders,
)
from api.routes import Actor, Call, Route, RouteTable
from api.seams import AuditTrail, HealthSource, RouterView, Teams, WorkOrderDesk
from api.services import AgentService, WorkOrderService
from api.services.reports import OrderReports
from workorders.clocks import ClockPolicy

if TYPE_CHECKING:
    from recordings.library import RecordingLibrary
    from recordings.recorder import CallRecorder

__all__ = ["MAX_BODY_BYTES", "Api", "ApiRequest", "ApiResponse", "build_api", "build_routes"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # the largest body any route takes is a note (4000 characters)
_SHOWN_PATH = 200  # characters of an unknown path repeated in its 404


@dataclass(frozen=True)
class ApiRequest:
    """A request as the API sees it: decoded, no HTTP object. ``headers`` by lower-case
    name; ``query`` every value of each parameter."""

    method: str
    parts: Sequence[str]
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    address: str = ""


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    route: Route | None = None  # the route answered (raw routes are rendered by their resource)


class Api:
    def __init__(self, routes: Sequence[Route], authenticator: Authenticator,
                 clock: Callable[[], float], *, max_body: int = MAX_BODY_BYTES) -> None:
        self.table = RouteTable(routes)
        self.authenticator = authenticator
        self.clock = clock
        self.max_body = max_body

    async def respond(self, request: ApiRequest) -> ApiResponse:
        route: Route | None = None
        try:
            route = self._route(request)
            if route.raw:
                return ApiResponse(200, None, route=route)
            return ApiResponse(200, await self._answer(route, request), route=route)
        except Exception as exc:
            error = as_api_error(exc)
            if isinstance(error, Internal) and error is not exc:
                log.error("%s %s failed", request.method, _shown(request.parts), exc_info=exc)
            return ApiResponse(status_of(error), error.body(), error.headers, route)

    def _route(self, request: ApiRequest) -> Route:
        match = self.table.match(request.method, request.parts)
        if match.route is not None:
            return match.route
        path = _shown(request.parts)
        if match.allowed:
            raise MethodNotAllowed(
                f"{request.method} is not allowed on {path}; allowed: {', '.join(match.allowed)}",
                match.allowed,
            )
        raise NotFound(f"no such endpoint: {request.method} {path}")

    async def _answer(self, route: Route, request: ApiRequest) -> Any:
        if len(request.body) > self.max_body:
            raise BodyTooLarge(f"the body is larger than {self.max_body} bytes")
        now = self.clock()
        actor = Actor(None, request.address, now)
        if route.permission is Permission.PUBLIC:
            actor.authorized = True
        else:
            actor.identity = await self.authenticator.authenticate(
                request.headers.get("authorization"), now
            )
            if not route.scoped:
                actor.authorize(route.permission)
        params = route.match(request.parts) or {}
        call = Call(
            actor=actor,
            path=_validated(route.path_schema, params, "path"),
            query=_validated(route.query_schema, _single(request.query), "query"),
            body=_body(route, request),
        )
        answer = await route.handler(call)
        if not actor.authorized:
            # a scoped route whose service forgot to authorize: refuse, never hand it out
            raise AssertionError(f"{route.method} {route.path} answered without authorization")
        return answer


def _shown(parts: Sequence[str]) -> str:
    path = "/" + "/".join(parts)
    return path if len(path) <= _SHOWN_PATH else path[:_SHOWN_PATH] + "..."


def _single(query: Mapping[str, Sequence[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, values in query.items():
        if len(values) != 1:
            raise BadRequest(f"query parameter {name[:40]!r} given {len(values)} times")
        out[name] = values[0]
    return out


def _validated(schema: type[BaseModel], data: Mapping[str, Any], where: str) -> BaseModel:
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(f"{where}: {_reasons(exc)}") from None


def _body(route: Route, request: ApiRequest) -> BaseModel | None:
    if not request.body.strip():
        return None
    if route.body_schema is None:
        raise BadRequest(f"{route.method} {route.openapi_path} takes no body")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body: malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("body: a JSON object is expected")
    return _validated(route.body_schema, data, "body")


def _reasons(exc: ValidationError) -> str:
    """pydantic's reasons without the input values (nothing the client sent is echoed)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'value'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    )


def build_routes(
    *, router: RouterView, workorders_store: WorkOrderDesk, health_source: HealthSource,
    audit: AuditTrail, teams: Teams | None = None, recordings: RecordingLibrary | None = None,
    clock_policy: Callable[[], ClockPolicy] = ClockPolicy, recorder: CallRecorder | None = None,
) -> list[Route]:
    """Every route of the API, in the order of the document. ``teams``: an agent's team,
    by default from the routing config in force (:func:`access.team_of`); ``recordings``:
    the audited recordings library (``/api/recordings``; without it, no such routes).
    ``clock_policy``: the work-order clocks in force, for the KPIs (default: the shipped
    targets)."""
    if teams is None:
        def teams(agent_id: str) -> str | None:
            return team_of(router.config(), agent_id)

    table: list[Route] = []
    table += health.routes(health_source)
    table += metrics.routes()
    table += openapi.routes(lambda: table)
    table += queues.routes(router)
    table += agents.routes(AgentService(router, audit, teams))
    table += decisions.routes(router)
    table += workorders.routes(
        WorkOrderService(workorders_store, audit, teams, agents=lambda: router.config().agents)
    )
    table += reports.routes(OrderReports(workorders_store, clock_policy))
    if recordings is not None:
        from api.resources import recordings as recording_routes
        from api.services.recordings import RecordingService

        table += recording_routes.routes(RecordingService(recordings))
    if recorder is not None:
        from api.resources import recordings as recording_routes
        from api.services.recordings import RecordingPauses

        table += recording_routes.pause_routes(RecordingPauses(recorder, audit, teams))
    return table


def build_api(
    *, router: RouterView, workorders_store: WorkOrderDesk, health_source: HealthSource,
    authenticator: Authenticator, audit: AuditTrail, clock: Callable[[], float],
    teams: Teams | None = None, max_body: int = MAX_BODY_BYTES,
    recordings: RecordingLibrary | None = None,
    clock_policy: Callable[[], ClockPolicy] = ClockPolicy, recorder: CallRecorder | None = None,
) -> Api:
    routes = build_routes(router=router, workorders_store=workorders_store,
                          health_source=health_source, audit=audit, teams=teams,
                          recordings=recordings, clock_policy=clock_policy, recorder=recorder)
    return Api(routes, authenticator, clock, max_body=max_body)
