"""The twisted.web shell of the API, with ``DummyRequest`` (no sockets): the bytes each route
writes are what ``json.dumps`` of the answer always wrote, errors set only constant headers,
/metrics is rendered by its own resource, a declared oversized body is refused unread."""

from __future__ import annotations

import io
import json
from typing import Any

from twisted.internet import defer
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from api.testing import ApiUnderTest, sample_orders
from api.web import ApiResource


class FakeMetrics(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        return b"# HELP hotline_queue_calls_waiting Calls waiting in the queue\n"


def render(under: ApiUnderTest, method: str, path: str, *, token: str | None = None,
           body: bytes | None = None, headers: dict[str, str] | None = None,
           args: dict[bytes, list[bytes]] | None = None,
           content: io.BytesIO | None = None) -> DummyRequest:
    from urllib.parse import unquote_to_bytes

    request = DummyRequest([unquote_to_bytes(p) for p in path.strip("/").split("/")])
    request.method = method.encode()
    request.args = args or {}
    if token:
        request.requestHeaders.addRawHeader(b"authorization", f"Bearer {token}".encode())
    for name, value in (headers or {}).items():
        request.requestHeaders.addRawHeader(name.encode(), value.encode())
    if body is not None or content is not None:
        request.content = content or io.BytesIO(body or b"")
    resource = ApiResource(under.api, {"/metrics": FakeMetrics()}, run=defer.ensureDeferred)
    resource.render(request)
    assert request.finished
    return request


def written(request: DummyRequest) -> bytes:
    return b"".join(request.written)


def test_bodies_are_what_the_api_always_wrote(under_test: ApiUnderTest) -> None:
    """Each JSON route writes ``json.dumps(answer, default=str)`` with status 200 and
    ``Content-Type: application/json``: byte for byte what ivr/http.py wrote."""
    orders = sample_orders()
    for path, expected in (
        ("/health", {"redis": True, "ari": "connected", "calls": 2, "speech_streams": 1}),
        ("/api/workorders/1", orders["1"].to_dict()),
        ("/api/calls/c-2/workorder", orders["2"].to_dict()),
        ("/api/decisions", []),
    ):
        request = render(under_test, "GET", path, token="tok-ops")
        assert request.responseCode == 200
        assert request.responseHeaders.getRawHeaders(b"content-type") == [b"application/json"]
        assert written(request) == json.dumps(expected, default=str).encode(), path


def test_agent_action_writes_the_same_bytes(under_test: ApiUnderTest) -> None:
    """``POST /api/agents/agent101/pause?reason=break`` writes ``{"agent": ..., "status": ...}``
    as before; the query arrives as twisted.web's ``args``."""
    request = render(under_test, "POST", "/api/agents/agent101/pause", token="tok-ops",
                     args={b"reason": [b"break"]}, body=b"")
    assert written(request) == b'{"agent": "agent101", "status": "paused"}'


def test_metrics_are_rendered_by_their_resource(under_test: ApiUnderTest) -> None:
    """/metrics needs no token and is written by the Prometheus resource, not as JSON."""
    request = render(under_test, "GET", "/metrics")
    assert written(request).startswith(b"# HELP hotline_queue_calls_waiting")
    assert request.responseHeaders.getRawHeaders(b"content-type") is None


def test_errors_set_constant_headers_only(under_test: ApiUnderTest) -> None:
    """401 carries ``WWW-Authenticate: Bearer``, 405 ``Allow``; the body is
    ``{"error": ..., "id": ...}``."""
    request = render(under_test, "GET", "/api/queues")
    assert request.responseCode == 401
    assert request.responseHeaders.getRawHeaders(b"www-authenticate") == [b"Bearer"]
    assert set(json.loads(written(request))) == {"error", "id"}
    request = render(under_test, "DELETE", "/api/agents", token="tok-ops")
    assert request.responseCode == 405
    assert request.responseHeaders.getRawHeaders(b"allow") == [b"GET"]


def test_header_injection_in_an_id_is_refused_and_echoed_nowhere(
    under_test: ApiUnderTest,
) -> None:
    """An id carrying CR/LF and a header (``%0D%0ASet-Cookie:...``) is 400; no response
    header holds it, and the JSON body escapes it (no raw CR or LF is written)."""
    request = render(under_test, "GET", "/api/workorders/1%0D%0ASet-Cookie:%20a=b",
                     token="tok-ops")
    assert request.responseCode == 400
    names = {name.lower() for name, _ in request.responseHeaders.getAllRawHeaders()}
    assert names == {b"content-type", b"x-content-type-options", b"cache-control"}
    assert b"\r" not in written(request) and b"\n" not in written(request)
    request = render(under_test, "GET", "/api/queues",
                     headers={"Authorization": "Bearer x\r\nSet-Cookie: a=b"})
    assert request.responseCode == 401
    assert b"Set-Cookie" not in written(request)


def test_declared_oversized_body_is_refused_unread(under_test: ApiUnderTest) -> None:
    """A ``Content-Length`` past the limit is 413 ``body-too-large`` before the body is read
    or the token checked."""

    class Unreadable(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise AssertionError("the body was read")

    request = render(under_test, "POST", "/api/agents/agent101/pause",
                     headers={"Content-Length": str(10**9)}, content=Unreadable())
    assert request.responseCode == 413
    assert json.loads(written(request))["id"] == "body-too-large"


def test_no_answer_is_written_to_a_client_gone(under_test: ApiUnderTest) -> None:
    """A client that hung up before the answer was ready gets nothing written."""
    request = DummyRequest([b"health"])
    request.method = b"GET"
    gate: defer.Deferred[None] = defer.Deferred()

    async def later(coro: Any) -> Any:
        await gate
        return await coro

    resource = ApiResource(under_test.api, run=lambda c: defer.ensureDeferred(later(c)))
    resource.render(request)
    request.processingFailed(Exception("connection lost"))
    gate.callback(None)
    assert request.written == []
