"""``ivr call`` reads the call's work order through the HTTP API with the bearer token of
``HOTLINE_TOKEN``/``HOTLINE_TOKEN_FILE``: where it sends the request, with which header, and
what it makes of the answers (a fake opener; no sockets)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from hotline.cli import build_parser
from hotline.testcall import (
    KEYS_AT_S,
    WORDS_AT_S,
    WorkOrderReadError,
    api_base,
    build_script,
    caller_wait,
    read_work_order,
)
from ivr.config import HTTPListen, TLSFiles


class Opener:
    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.requests: list[urllib.request.Request] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> Any:
        self.requests.append(request)
        if isinstance(self.reply, Exception):
            raise self.reply
        return io.BytesIO(json.dumps(self.reply).encode())


def http_error(code: int, body: Any) -> urllib.error.HTTPError:
    return urllib.error.HTTPError(
        "http://x", code, "error", {}, io.BytesIO(json.dumps(body).encode())  # type: ignore[arg-type]
    )


def test_api_base_from_environment_then_service_yaml() -> None:
    """``$HOTLINE_API`` wins; else the http address, loopback for every interface, https
    with TLS, IPv6 in brackets."""
    assert api_base(HTTPListen(port=8090), {"HOTLINE_API": "http://h:1/"}) == "http://h:1"
    assert api_base(HTTPListen(port=8090), {}) == "http://127.0.0.1:8090"
    assert api_base(HTTPListen(host="0.0.0.0", port=8090), {}) == "http://127.0.0.1:8090"
    assert api_base(HTTPListen(host="::1", port=8090), {}) == "http://[::1]:8090"
    tls = TLSFiles(cert_file="c.pem", key_file="k.pem")
    assert api_base(HTTPListen(host="10.0.0.5", port=8443, tls=tls), {}) == (
        "https://10.0.0.5:8443")


def test_reads_the_order_with_the_token() -> None:
    """GET /api/calls/<call_id>/workorder with ``Authorization: Bearer``; 404 is "not yet"."""
    opener = Opener({"id": "7", "status": "pending"})
    assert read_work_order("http://h:1", "test-ab", "tok", opener=opener) == {
        "id": "7", "status": "pending"}
    assert opener.requests[0].full_url == "http://h:1/api/calls/test-ab/workorder"
    assert opener.requests[0].get_header("Authorization") == "Bearer tok"
    missing = Opener(http_error(404, {"error": "no work order", "id": "workorder-not-found"}))
    assert read_work_order("http://h:1", "test-ab", "tok", opener=missing) is None


def test_a_refused_token_is_an_error_naming_the_variables() -> None:
    """401 is an error with the API's reason and where the token comes from."""
    opener = Opener(http_error(401, {"error": "no Authorization header", "id": "unauthenticated"}))
    with pytest.raises(WorkOrderReadError) as caught:
        read_work_order("http://h:1", "test-ab", None, opener=opener)
    assert "no Authorization header" in str(caught.value)
    assert "HOTLINE_TOKEN_FILE" in str(caught.value)


def test_help_names_the_token_variables(capsys: pytest.CaptureFixture[str]) -> None:
    """``ivr call --help`` says where the token comes from."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["call", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "$HOTLINE_TOKEN" in out and "$HOTLINE_TOKEN_FILE" in out


def test_a_test_caller_speaks_after_the_question_unless_told() -> None:
    """``ivr call --say`` speaks after the welcome and the question (words over it would be
    asked to confirm); keys come during the welcome; ``--wait`` overrides both."""
    args = build_parser().parse_args(["call", "--say", "my internet is down"])
    assert args.wait is None
    assert caller_wait(args.wait, speaks=True) == WORDS_AT_S == 12.5
    assert caller_wait(None, speaks=False) == KEYS_AT_S == 4.0
    assert caller_wait(5.5, speaks=True) == 5.5
    script = build_script(wait=caller_wait(None, speaks=True), audio="testcalls/say-x",
                          dtmf="", raw=None)
    assert script.startswith("w12.5|ptestcalls/say-x")
