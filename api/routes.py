"""The route table: each route's method, path, permission, schemas and handler.

A path is written with its parameters in braces (``/api/agents/{agent_id}/{action}``); a
parameter may list the values it matches (``{action:login|logout|pause|resume}``), so an
unknown action is an unknown route (404), as it always was, while a malformed id is a bad
request (400, from the path schema). Matching is pure: segments in, a route and its raw
parameters out, or the methods the path allows (for 405).

A handler receives a :class:`Call`: the validated parameters and the :class:`Actor` (who asks,
from where, when). A route whose permission depends on the object (an agent's state, a work
order) is ``scoped``: its service calls :meth:`Actor.authorize` with the object's scope; any
other route is authorized on the whole collection before its handler runs. Either way the
dispatcher refuses to answer a route that was not authorized (fail closed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from access import AccessDenied, Identity, Permission, Scope, authorize
from api.errors import ApiError, NotAuthenticated
from api.schemas import NoParameters

__all__ = ["Actor", "BinaryAnswer", "Call", "Handler", "Match", "Route", "RouteTable"]


@dataclass
class Actor:
    """Who makes the request (``None`` on a public route), from which address, and when."""

    identity: Identity | None
    address: str
    now: float
    authorized: bool = field(default=False, init=False)

    def authorize(self, permission: Permission, scope: Scope | None = None) -> Identity:
        """:func:`access.authorize`, remembered; returns the identity for the audit trail."""
        if self.identity is None:
            raise NotAuthenticated("this endpoint needs a bearer token")
        authorize(self.identity, permission, scope)
        self.authorized = True
        return self.identity

    def may(self, permission: Permission, scope: Scope | None = None) -> bool:
        """Whether :meth:`authorize` would pass (for filtering a collection)."""
        try:
            self.authorize(permission, scope)
        except AccessDenied:
            return False
        return True


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it: validated schemas, no HTTP object."""

    actor: Actor
    path: BaseModel
    query: BaseModel
    body: BaseModel | None


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class BinaryAnswer:
    """An answer that is not JSON (a recording's decrypted audio): ``length`` bytes of
    ``media_type`` in chunks, written by :mod:`api.web` as they come, never to a file."""

    media_type: str
    length: int
    chunks: Iterator[bytes]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    permission: Permission
    handler: Handler
    summary: str
    response: Any  # a pydantic model (or type) describing the answer, for the document
    path_schema: type[BaseModel] = NoParameters
    query_schema: type[BaseModel] = NoParameters
    body_schema: type[BaseModel] | None = None
    scoped: bool = False  # the service authorizes against the object's scope
    errors: tuple[type[ApiError], ...] = ()
    audit: str | None = None  # the audit action this route records, for the document
    raw: bool = False  # answered by another resource (e.g. /metrics' Prometheus text)
    media_type: str = "application/json"  # else the handler answers a BinaryAnswer

    @property
    def segments(self) -> list[str]:
        return [s for s in self.path.split("/") if s]

    def match(self, parts: Sequence[str]) -> dict[str, str] | None:
        """The raw path parameters if ``parts`` is this route's path, else ``None``."""
        segments = self.segments
        if len(parts) != len(segments):
            return None
        params: dict[str, str] = {}
        for part, segment in zip(parts, segments, strict=True):
            if segment.startswith("{"):
                name, _, choices = segment.strip("{}").partition(":")
                if choices and part not in choices.split("|"):
                    return None
                params[name] = part
            elif part != segment:
                return None
        return params

    @property
    def openapi_path(self) -> str:
        return "/" + "/".join(
            "{" + s.strip("{}").partition(":")[0] + "}" if s.startswith("{") else s
            for s in self.segments
        )


@dataclass(frozen=True)
class Match:
    route: Route | None
    params: dict[str, str]
    allowed: list[str]  # methods of the routes with this path (when ``route`` is None)


class RouteTable:
    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        seen = set()
        for route in self.routes:
            key = (route.method, route.path)
            if key in seen:
                raise ValueError(f"route {route.method} {route.path} declared twice")
            seen.add(key)

    def match(self, method: str, parts: Sequence[str]) -> Match:
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(parts)
            if params is None:
                continue
            if route.method == method:
                return Match(route, params, [])
            allowed.append(route.method)
        return Match(None, {}, sorted(set(allowed)))
