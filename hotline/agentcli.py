"""``ivr agent login|logout|pause|resume|list``: agent state through the running service.

A thin client of the HTTP API (``POST /api/agents/<id>/<action>``, ``GET /api/agents``), so
the command goes through the same atomic Redis scripts as every other state change and works
against any instance sharing the agent pool. It sends the bearer token of ``HOTLINE_TOKEN``
or of the file named by ``HOTLINE_TOKEN_FILE`` (:mod:`hotline.apitoken`). Exit codes: 0 done,
1 refused by the agent's state (HTTP 409), 2 a bad request (unknown agent or pause reason),
3 the service could not be reached, 4 no valid token or not allowed (HTTP 401, 403).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from hotline.apitoken import TOKEN_HELP, TokenFileError, api_token, authorization

DEFAULT_API = "http://127.0.0.1:8090"
ACTIONS = ("login", "logout", "pause", "resume")

EXIT_REFUSED = 1
EXIT_BAD_REQUEST = 2
EXIT_UNREACHABLE = 3
EXIT_DENIED = 4

Opener = Callable[..., Any]
"""``urllib.request.urlopen``-like: ``(request, timeout=...) -> response``; tests pass a fake."""


class AgentCommandError(Exception):
    """The command failed; ``exit_code`` says how (see the module docstring)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class AgentAPI:
    """The agent endpoints of one running service (``base``: ``http://host:port``)."""

    def __init__(self, base: str, *, opener: Opener = urllib.request.urlopen,
                 timeout: float = 5.0, token: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.opener = opener
        self.timeout = timeout
        self.token = token

    def action(self, agent_id: str, action: str, reason: str = "") -> dict[str, Any]:
        """Apply ``action`` to ``agent_id``; returns ``{"agent": ..., "status": ...}``."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        path = f"/api/agents/{urllib.parse.quote(agent_id, safe='')}/{action}"
        if reason:
            path += "?" + urllib.parse.urlencode({"reason": reason})
        result: dict[str, Any] = self._request("POST", path, what=f"{action} {agent_id}")
        return result

    def agents(self) -> dict[str, dict[str, str]]:
        agents: dict[str, dict[str, str]] = self._request("GET", "/api/agents",
                                                          what="list agents")
        return agents

    def _request(self, method: str, path: str, *, what: str,
                 body: Mapping[str, Any] | None = None) -> Any:
        headers = authorization(self.token)
        data = b"" if method == "POST" else None
        if body is not None:  # a JSON body (``ivr orders``)
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, method=method, data=data,
                                         headers=headers)
        try:
            with self.opener(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            message = _error_text(exc)
            if exc.code == 409:
                raise AgentCommandError(message, EXIT_REFUSED) from None
            if exc.code in (401, 403):
                hint = f" ({TOKEN_HELP})" if exc.code == 401 else ""
                raise AgentCommandError(f"{what}: {message}{hint}", EXIT_DENIED) from None
            if 400 <= exc.code < 500:
                raise AgentCommandError(f"{what}: {message}", EXIT_BAD_REQUEST) from None
            raise AgentCommandError(
                f"{what}: the service answered {exc.code}: {message}", EXIT_UNREACHABLE
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AgentCommandError(
                f"cannot reach the hotline service at {self.base} ({reason}); "
                "is `ivr serve` running? (--api or $HOTLINE_API)",
                EXIT_UNREACHABLE,
            ) from None
        except ValueError:
            raise AgentCommandError(
                f"{what}: {self.base} did not answer JSON; is it the hotline service?",
                EXIT_UNREACHABLE,
            ) from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.load(exc)
    except (ValueError, OSError):
        return exc.reason or f"HTTP {exc.code}"
    return str(body.get("error", body)) if isinstance(body, Mapping) else str(body)


def format_agents(agents: Mapping[str, Mapping[str, str]]) -> str:
    """One line per agent: id, status, pause reason (or ``off schedule``), current call."""
    lines = [f"{'AGENT':<14}{'STATUS':<12}{'REASON':<18}CALL"]
    for agent_id in sorted(agents):
        row = agents[agent_id]
        reason = row.get("pause_reason") or ("off schedule" if row.get("schedule") == "off" else "")
        lines.append(
            f"{agent_id:<14}{row.get('status') or '-':<12}"
            f"{reason:<18}{row.get('call_id') or ''}".rstrip()
        )
    return "\n".join(lines)


def run(args: argparse.Namespace, api: AgentAPI, out: TextIO = sys.stdout) -> None:
    """Carry out the parsed command; raises :class:`AgentCommandError` on failure."""
    if args.action == "list":
        agents = api.agents()
        if args.agent:
            if args.agent not in agents:
                raise AgentCommandError(f"unknown agent {args.agent!r}", EXIT_BAD_REQUEST)
            agents = {args.agent: agents[args.agent]}
        print(json.dumps(agents, indent=2) if args.json else format_agents(agents), file=out)
        return
    result = api.action(args.agent, args.action, args.reason or "")
    if args.json:
        print(json.dumps(result), file=out)
    else:
        reason = f" ({args.reason})" if args.action == "pause" else ""
        print(f"{result.get('agent', args.agent)}: {result.get('status')}{reason}", file=out)


def check_arguments(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line, before anything is sent; ``None`` if fine."""
    if args.action != "list" and not args.agent:
        return f"{args.action} needs an AGENT"
    if args.action == "pause" and not args.reason:
        return "pause needs --reason (a pause reason of routing.yaml, e.g. break or lunch)"
    if args.reason and args.action != "pause":
        return f"--reason applies to pause, not to {args.action}"
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Authentication: the bearer token comes from $HOTLINE_TOKEN, or from the file named "
        "by $HOTLINE_TOKEN_FILE. Exit codes: 0 done, 1 refused by the agent's state, 2 a bad "
        "request, 3 the service unreachable, 4 no valid token or not allowed."
    )
    parser.add_argument("action", choices=[*ACTIONS, "list"])
    parser.add_argument("agent", nargs="?", help="agent id (agents.yaml); optional for list")
    parser.add_argument("--reason", help="pause reason code (pause only)")
    add_api_options(parser)


def add_api_options(parser: argparse.ArgumentParser) -> None:
    """``--api`` and ``--json``, as every command over the HTTP API takes them."""
    parser.add_argument(
        "--api", default=None,
        help=f"the service's HTTP address (default: $HOTLINE_API or {DEFAULT_API})",
    )
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")


def main(
    args: argparse.Namespace,
    *,
    opener: Opener = urllib.request.urlopen,
    environ: Mapping[str, str] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    environ = os.environ if environ is None else environ
    problem = check_arguments(args)
    if problem:
        print(f"ivr agent: {problem}", file=err)
        return EXIT_BAD_REQUEST
    try:
        token = api_token(environ)
    except TokenFileError as exc:
        print(f"ivr agent: {exc}", file=err)
        return EXIT_DENIED
    api = AgentAPI(args.api or environ.get("HOTLINE_API") or DEFAULT_API, opener=opener,
                   token=token)
    try:
        run(args, api, out)
    except AgentCommandError as exc:
        print(f"ivr agent: {exc}", file=err)
        return exc.exit_code
    return 0
