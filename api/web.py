"""The twisted.web shell of :class:`api.app.Api`: one leaf resource that turns a
``twisted.web`` request into an :class:`~api.app.ApiRequest`, runs the answer as an asyncio
Task (the services await ``redis.asyncio``, see :mod:`ivr.aio`) and writes it as JSON.

The body is read up to the limit plus one byte, and a declared ``Content-Length`` past the
limit is refused without reading. Response headers carry constants only (``Allow``,
``WWW-Authenticate``, the content type): nothing the client sent is echoed in a header.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web import resource, server

from api.app import Api, ApiRequest, ApiResponse
from api.channel import GuardedSite, HTTPLimits
from api.routes import BinaryAnswer
from hotline.text import as_text
from ivr.aio import deferred

__all__ = ["ApiResource", "make_site"]

Runner = Callable[[Coroutine[Any, Any, ApiResponse]], "Deferred[ApiResponse]"]

_FIXED_HEADERS = {
    b"content-type": b"application/json",
    b"x-content-type-options": b"nosniff",
    b"cache-control": b"no-store",
}


class RawResource(Protocol):
    """A resource that renders a raw route itself (prometheus_client's ``MetricsResource``)."""

    def render(self, request: server.Request) -> bytes | int: ...


class ApiResource(resource.Resource):
    """Every path of the site; ``raw`` maps a raw route's path (``/metrics``) to the resource
    that renders it. ``run`` drives the answer's coroutine (tests: ``defer.ensureDeferred``)."""

    isLeaf = True

    def __init__(self, api: Api, raw: Mapping[str, RawResource] | None = None,
                 run: Runner = deferred) -> None:
        resource.Resource.__init__(self)
        self.api = api
        self.raw = dict(raw or {})
        self.run = run

    def render(self, request: server.Request) -> Any:
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)
        d = self.run(self.api.respond(self._request(request)))
        d.addCallback(self._write, request, gone)
        d.addErrback(self._failed, request, gone)
        return server.NOT_DONE_YET

    def _request(self, request: server.Request) -> ApiRequest:
        headers = {
            name.decode("latin-1").lower(): values[0].decode("latin-1")
            for name, values in request.requestHeaders.getAllRawHeaders() if values
        }
        return ApiRequest(
            method=request.method.decode("latin-1"),
            # a byte that is not UTF-8 becomes U+FFFD, which no id pattern accepts: a 400, not a 500
            parts=[as_text(p, "replace") for p in (request.postpath or []) if p],
            query={
                as_text(k, "replace"): [as_text(v, "replace") for v in vs]
                for k, vs in (request.args or {}).items()
            },
            headers=headers,
            body=self._body(request, headers.get("content-length", "")),
            address=_address(request),
        )

    def _body(self, request: server.Request, declared: str) -> bytes:
        limit = self.api.max_body
        if declared.isdigit() and int(declared) > limit:
            return b"\0" * (limit + 1)  # refused as too large, without reading it
        content = getattr(request, "content", None)  # absent until a body was received
        if content is None:
            return b""
        body: bytes = content.read(limit + 1)
        return body

    def _write(self, response: ApiResponse, request: server.Request,
               gone: list[Failure]) -> None:
        if gone:
            return
        route = response.route
        if route is not None and route.raw and response.status == 200:
            self._render_raw(route.path, request)
            return
        if isinstance(response.body, BinaryAnswer):
            self._write_binary(response.body, request)
            return
        request.setResponseCode(response.status)
        for raw_name, raw_value in _FIXED_HEADERS.items():
            request.setHeader(raw_name, raw_value)
        for name, value in response.headers.items():
            request.setHeader(name.encode("ascii"), value.encode("ascii"))
        request.write(json.dumps(response.body, default=str).encode())
        request.finish()

    @staticmethod
    def _write_binary(answer: BinaryAnswer, request: server.Request) -> None:
        """Chunks as they come (decrypted audio from memory; nothing is written to disk)."""
        request.setResponseCode(200)
        request.setHeader(b"content-type", answer.media_type.encode("ascii"))
        request.setHeader(b"content-length", str(answer.length).encode("ascii"))
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"no-store")
        for chunk in answer.chunks:
            request.write(chunk)
        request.finish()

    def _render_raw(self, path: str, request: server.Request) -> None:
        body = self.raw[path].render(request)
        if isinstance(body, bytes):
            request.write(body)
            request.finish()

    def _failed(self, failure: Failure, request: server.Request, gone: list[Failure]) -> None:
        """A bug in writing the answer itself: a bare 500, the log has the rest."""
        from twisted.logger import Logger

        Logger().failure("writing the API's answer failed", failure)
        if gone or request.finished:
            return
        request.setResponseCode(500)
        request.setHeader(b"content-type", b"application/json")
        request.write(b'{"error": "internal error", "id": "internal"}')
        request.finish()


def _address(request: server.Request) -> str:
    peer = request.getClientAddress()
    return str(getattr(peer, "host", "") or peer)


def make_site(api: Api, raw: Mapping[str, RawResource] | None = None,
              limits: HTTPLimits | None = None, reactor: Any = None) -> server.Site:
    """The API's site, its connections bounded by ``limits`` (:mod:`api.channel`)."""
    return GuardedSite(ApiResource(api, raw), limits, reactor)
