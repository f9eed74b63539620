"""Bad input to the API: each kind refused with a 4xx and a JSON reason (``{"error", "id"}``),
nothing reaching the router or the store; and a fuzz test over every route with every role
that finds no 5xx (but 503 ``unavailable`` when the store is away)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.testing import (
    ApiUnderTest,
    FakeRouter,
    FakeWorkOrders,
    answer,
    api_under_test,
    sample_orders,
)
from routing import core

JSON = {"Content-Type": "application/json"}
PAUSE = "/api/agents/agent101/pause"


def refused(under: ApiUnderTest, status: int, error_id: str, method: str, path: str,
            **kwargs: Any) -> str:
    response = answer(under.api, method, path, token=kwargs.pop("token", "tok-ops"), **kwargs)
    assert (response.status, response.body["id"]) == (status, error_id), response.body
    assert set(response.body) == {"error", "id"} and response.body["error"]
    assert under.router.actions == [] and under.audit.entries == []
    return str(response.body["error"])


def test_oversized_body_is_413(routing_config: core.RoutingConfig) -> None:
    """A body past the limit is 413 ``body-too-large``, before the token is even looked at."""
    under = api_under_test(routing_config, max_body=64)
    refused(under, 413, "body-too-large", "POST", PAUSE, body=b"{" + b" " * 64 + b"}",
            headers=JSON, token=None)


def test_malformed_json_is_400(under_test: ApiUnderTest) -> None:
    """A body that is not JSON, or JSON but no object, is 400 with the parser's reason."""
    assert "malformed JSON" in refused(under_test, 400, "bad-request", "POST", PAUSE,
                                       body=b'{"reason": ', headers=JSON)
    refused(under_test, 400, "bad-request", "POST", PAUSE, body=b'["break"]', headers=JSON)
    refused(under_test, 400, "bad-request", "POST", PAUSE, body=b"\xff\xfe", headers=JSON)


def test_unknown_fields_are_400(under_test: ApiUnderTest) -> None:
    """An unknown body field or query parameter is 400 naming it (pydantic's reason)."""
    assert "agent" in refused(under_test, 400, "bad-request", "POST", PAUSE,
                              body=b'{"reason": "break", "agent": "agent102"}', headers=JSON)
    assert "verbose" in refused(under_test, 400, "bad-request", "GET", "/api/queues?verbose=1")


def test_wrong_types_are_400(under_test: ApiUnderTest) -> None:
    """``{"reason": 5}`` is no string: 400 with pydantic's reason, nothing coerced."""
    reason = refused(under_test, 400, "bad-request", "POST", PAUSE, body=b'{"reason": 5}',
                     headers=JSON)
    assert reason.startswith("body: reason:")


def test_repeated_query_parameter_is_400(under_test: ApiUnderTest) -> None:
    """``?reason=break&reason=lunch`` is ambiguous: 400, not the first one silently."""
    refused(under_test, 400, "bad-request", "POST", PAUSE + "?reason=break&reason=lunch")


def test_body_where_none_is_taken_and_wrong_media_type(under_test: ApiUnderTest) -> None:
    """A body on a route that takes none is 400; a non-JSON body type is 415."""
    refused(under_test, 400, "bad-request", "GET", "/api/queues", body=b"{}", headers=JSON)
    refused(under_test, 415, "unsupported-media-type", "POST", PAUSE, body=b"reason=break",
            headers={"Content-Type": "application/x-www-form-urlencoded"})


@pytest.mark.parametrize("raw_id", [
    "..", "..%2F..%2Fetc%2Fpasswd", "a%2Fb", "%2E%2E", "a b", "a%00b",
    "a%0D%0ASet-Cookie:x", "<script>", "x" * 200, "caf%C3%A9", "%FF", "-leading",
])
def test_odd_ids_are_400(under_test: ApiUnderTest, raw_id: str) -> None:
    """Path traversal, slashes, spaces, NUL, CR/LF, markup, overlong, non-ASCII and bytes
    that are not UTF-8 in an id are 400 ``bad-request``, and the reason does not repeat the
    id (nothing the client sent is echoed)."""
    for method, path in (("GET", f"/api/workorders/{raw_id}"),
                         ("GET", f"/api/calls/{raw_id}/workorder"),
                         ("POST", f"/api/agents/{raw_id}/login")):
        reason = refused(under_test, 400, "bad-request", method, path)
        assert "Set-Cookie" not in reason and "<script>" not in reason


def test_unencoded_traversal_is_no_route(under_test: ApiUnderTest) -> None:
    """``/api/workorders/../../etc/passwd`` has more segments than any route: 404, never a
    path resolved against anything."""
    refused(under_test, 404, "not-found", "GET", "/api/workorders/../../etc/passwd")


def test_wrong_method_is_405_with_allow(under_test: ApiUnderTest) -> None:
    """A known path with another method is 405 ``method-not-allowed`` and ``Allow``."""
    response = answer(under_test.api, "PUT", "/api/workorders/1", token="tok-ops")
    assert (response.status, response.body["id"]) == (405, "method-not-allowed")
    assert response.headers == {"Allow": "GET"}
    response = answer(under_test.api, "GET", PAUSE, token="tok-ops")
    assert response.headers == {"Allow": "POST"}


def test_unknown_route_is_404(under_test: ApiUnderTest) -> None:
    """An unknown path is 404 ``not-found`` naming the endpoint, token or not."""
    for token in (None, "tok-ops"):
        response = answer(under_test.api, "GET", "/api/recordings", token=token)
        assert response.body == {"error": "no such endpoint: GET /api/recordings",
                                 "id": "not-found"}


SEGMENTS = st.one_of(
    st.sampled_from(["api", "agents", "queues", "decisions", "workorders", "calls",
                     "workorder", "health", "metrics", "openapi.json", "agent101", "agent103",
                     "1", "2", "c-1", "login", "pause", "resume", "logout", "..", "."]),
    st.text(max_size=12),
)
ROUTE_PATHS = st.sampled_from([
    ["health"], ["metrics"], ["api", "openapi.json"], ["api", "queues"], ["api", "agents"],
    ["api", "agents", "agent101", "pause"], ["api", "agents", "agent103", "login"],
    ["api", "decisions"], ["api", "workorders", "1"], ["api", "calls", "c-3", "workorder"],
])
TOKENS = st.sampled_from([None, "tok-agent101", "tok-supervisor-north", "tok-quality",
                          "tok-ops", "tok-auditor", "bogus"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.one_of(ROUTE_PATHS, st.lists(SEGMENTS, max_size=5)),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "x"]),
    query=st.dictionaries(st.sampled_from(["reason", "x", "", "reason[]"]),
                          st.lists(st.text(max_size=10), max_size=3), max_size=3),
    body=st.one_of(st.just(b""), st.binary(max_size=64),
                   st.sampled_from([b'{"reason": "break"}', b'{"reason": null}', b"null",
                                    b'{"reason": ["x"]}', b"{", b'{"a": 1}'])),
    headers=st.dictionaries(
        st.sampled_from(["content-type", "content-length", "x-forwarded-for", "cookie"]),
        st.one_of(st.sampled_from(["application/json", "text/plain", "-1", "99999999"]),
                  st.text(max_size=20)), max_size=3),
    token=TOKENS,
    store_away=st.booleans(),
)
def test_fuzz_finds_no_server_error(
    routing_config: core.RoutingConfig, parts: list[str], method: str,
    query: dict[str, list[str]], body: bytes, headers: dict[str, str], token: str | None,
    store_away: bool,
) -> None:
    """Random paths, methods, query strings, bodies, headers and tokens over every route and
    role: every answer is 2xx or 4xx with ``{"error", "id"}``, but 503 ``unavailable`` when
    the store and the router are away (a ConnectionError), never a 500."""
    from api.app import ApiRequest
    from api.testing import run_now

    under = api_under_test(
        routing_config, sample_orders(),
        router=FakeRouter(routing_config, down=store_away),
        store=FakeWorkOrders(sample_orders(), down=store_away),
    )
    all_headers = dict(headers)
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    response = run_now(under.api.respond(ApiRequest(
        method=method, parts=parts, query=query, headers=all_headers, body=body,
        address="192.0.2.1",
    )))
    if response.status >= 500:
        assert store_away and (response.status, response.body["id"]) == (503, "unavailable")
    if response.status >= 400:
        assert set(response.body) == {"error", "id"}
    for value in response.headers.values():
        assert "\r" not in value and "\n" not in value
