"""``ivr agent``: argument handling, the requests it sends, and its errors (a fake opener
stands in for the HTTP API; no sockets)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from hotline.agentcli import EXIT_BAD_REQUEST, EXIT_REFUSED, EXIT_UNREACHABLE, main
from hotline.cli import build_parser


class FakeAPI:
    """An opener answering each request with the next scripted reply; records requests."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.requests: list[urllib.request.Request] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> Any:
        self.requests.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return io.BytesIO(json.dumps(reply).encode())


def http_error(code: int, body: Any) -> urllib.error.HTTPError:
    return urllib.error.HTTPError(
        "http://x", code, "error", {}, io.BytesIO(json.dumps(body).encode())  # type: ignore[arg-type]
    )


def run(argv: list[str], api: FakeAPI, environ: dict[str, str] | None = None
        ) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["agent", *argv])
    code = main(args, opener=api, environ=environ or {}, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_pause_posts_the_action_with_its_reason() -> None:
    """``ivr agent pause agent101 --reason break`` POSTs to the default API address with the
    reason in the query, and prints the agent's new state."""
    api = FakeAPI({"agent": "agent101", "status": "paused"})
    code, out, err = run(["pause", "agent101", "--reason", "break"], api)
    assert (code, err) == (0, "")
    request = api.requests[0]
    assert request.get_method() == "POST"
    assert request.full_url == "http://127.0.0.1:8090/api/agents/agent101/pause?reason=break"
    assert out == "agent101: paused (break)\n"


def test_api_address_from_option_then_environment() -> None:
    """``--api`` wins over ``$HOTLINE_API``, which wins over the default; agent ids are
    URL-quoted so an odd id cannot reach another endpoint."""
    api = FakeAPI({"agent": "a/b", "status": "available"}, {"agent": "x", "status": "available"})
    run(["resume", "a/b"], api, environ={"HOTLINE_API": "http://10.0.0.5:9000/"})
    run(["login", "x", "--api", "http://127.0.0.1:8091"], api,
        environ={"HOTLINE_API": "http://10.0.0.5:9000"})
    assert [r.full_url for r in api.requests] == [
        "http://10.0.0.5:9000/api/agents/a%2Fb/resume",
        "http://127.0.0.1:8091/api/agents/x/login",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pause", "agent101"], "pause needs --reason"),
        (["resume", "agent101", "--reason", "break"], "--reason applies to pause"),
        (["login"], "login needs an AGENT"),
    ],
)
def test_bad_command_lines_are_refused_before_anything_is_sent(argv, message) -> None:
    """A pause without a reason code, a reason on another action, or an action without its
    agent: exit 2 with the problem named, and no request made."""
    api = FakeAPI()
    code, out, err = run(argv, api)
    assert code == EXIT_BAD_REQUEST
    assert message in err and out == ""
    assert api.requests == []


def test_unknown_action_is_an_argparse_error() -> None:
    """Only login, logout, pause, resume and list exist."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["agent", "break", "agent101"])


def test_refused_transition_exits_1_with_the_services_reason() -> None:
    """A 409 (e.g. resume of an agent who is not paused) exits 1 and shows the service's
    explanation, which names the agent's current state."""
    api = FakeAPI(http_error(409, {"error": "resume refused: agent agent101 is on_call"}))
    code, _out, err = run(["resume", "agent101"], api)
    assert code == EXIT_REFUSED
    assert err == "ivr agent: resume refused: agent agent101 is on_call\n"


def test_unknown_agent_or_reason_exits_2_with_the_services_reason() -> None:
    """A 400 (unknown agent or pause reason) exits 2 and shows the valid reasons the
    service lists."""
    api = FakeAPI(http_error(400, {"error": "unknown pause reason 'nap'; one of ['break']"}))
    code, _out, err = run(["pause", "agent101", "--reason", "nap"], api)
    assert code == EXIT_BAD_REQUEST
    assert "pause agent101: unknown pause reason 'nap'; one of ['break']" in err


def test_service_down_exits_3_with_a_hint() -> None:
    """Connection refused: exit 3, naming the address tried and how to change it."""
    api = FakeAPI(urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")))
    code, _out, err = run(["list", "--api", "http://127.0.0.1:1"], api)
    assert code == EXIT_UNREACHABLE
    assert "cannot reach the hotline service at http://127.0.0.1:1" in err
    assert "is `ivr serve` running?" in err


def test_service_error_and_non_json_answers_exit_3() -> None:
    """A 503 (Redis away) or an answer that is not JSON (something else on the port) is
    reported as the service being unusable, not as a refusal."""
    api = FakeAPI(http_error(503, {"error": "Redis unreachable"}))
    code, _out, err = run(["logout", "agent101"], api)
    assert code == EXIT_UNREACHABLE and "503: Redis unreachable" in err

    class NotJSON(FakeAPI):
        def __call__(self, request: urllib.request.Request, timeout: float) -> Any:
            return io.BytesIO(b"<html>hello</html>")

    code, _out, err = run(["list"], NotJSON())
    assert code == EXIT_UNREACHABLE and "did not answer JSON" in err


AGENTS = {
    "agent102": {"status": "available", "pause_reason": "", "call_id": ""},
    "agent101": {"status": "paused", "pause_reason": "break", "call_id": ""},
    "agent103": {"status": "on_call", "pause_reason": "", "call_id": "1764300000.12"},
}


def test_list_prints_a_table_sorted_by_agent() -> None:
    """``list`` shows every agent, sorted, with status, pause reason and current call."""
    code, out, _err = run(["list"], FakeAPI(AGENTS))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["AGENT", "STATUS", "REASON", "CALL"]
    assert [line.split() for line in lines[1:]] == [
        ["agent101", "paused", "break"],
        ["agent102", "available"],
        ["agent103", "on_call", "1764300000.12"],
    ]


def test_list_one_agent_and_json() -> None:
    """``list AGENT --json`` prints only that agent's live hash as JSON; an unknown agent
    exits 2."""
    code, out, _err = run(["list", "agent101", "--json"], FakeAPI(AGENTS))
    assert code == 0 and json.loads(out) == {"agent101": AGENTS["agent101"]}
    code, _out, err = run(["list", "agent999"], FakeAPI(AGENTS))
    assert code == EXIT_BAD_REQUEST and "unknown agent 'agent999'" in err


def test_token_from_environment_is_sent_as_bearer(tmp_path) -> None:
    """``$HOTLINE_TOKEN`` is sent as ``Authorization: Bearer <token>``; without it, the token
    in the file named by ``$HOTLINE_TOKEN_FILE`` (its trailing newline dropped)."""
    api = FakeAPI({"agent": "agent101", "status": "available"})
    run(["login", "agent101"], api, {"HOTLINE_TOKEN": "hot-123"})
    assert api.requests[0].get_header("Authorization") == "Bearer hot-123"
    token_file = tmp_path / "token"
    token_file.write_text("from-file-456\n")
    api = FakeAPI({"agent101": {"status": "available"}})
    run(["list"], api, {"HOTLINE_TOKEN_FILE": str(token_file)})
    assert api.requests[0].get_header("Authorization") == "Bearer from-file-456"
    api = FakeAPI({"agent101": {"status": "available"}})
    run(["list"], api, {})
    assert api.requests[0].get_header("Authorization") is None


def test_refused_token_exits_4_and_says_where_the_token_comes_from(tmp_path) -> None:
    """A 401 exits 4 naming HOTLINE_TOKEN and HOTLINE_TOKEN_FILE; a 403 exits 4 with the
    API's reason; an unreadable token file exits 4 before anything is sent."""
    api = FakeAPI(http_error(401, {"error": "the token is unknown", "id": "unauthenticated"}))
    code, _, err = run(["login", "agent101"], api, {"HOTLINE_TOKEN": "x"})
    assert code == 4
    assert "the token is unknown" in err and "HOTLINE_TOKEN_FILE" in err
    api = FakeAPI(http_error(403, {"error": "agents:state on agent agent102: role agent "
                                            "reaches its own only", "id": "forbidden"}))
    code, _, err = run(["pause", "agent102", "--reason", "break"], api, {"HOTLINE_TOKEN": "x"})
    assert code == 4 and "reaches its own only" in err
    api = FakeAPI()
    code, _, err = run(["list"], api, {"HOTLINE_TOKEN_FILE": str(tmp_path / "missing")})
    assert code == 4 and "HOTLINE_TOKEN_FILE" in err and api.requests == []


def test_help_names_the_token_variables(capsys) -> None:
    """``ivr agent --help`` says where the token comes from."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["agent", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "$HOTLINE_TOKEN" in out and "$HOTLINE_TOKEN_FILE" in out
