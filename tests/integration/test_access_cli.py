"""``ivr tokens`` against a real redis-server: create prints the token once and records it in
the audit log, list never shows a secret, revoke confirms, bad requests exit 2 with a clear
message and write nothing, and a token change the audit log cannot record is not made.

The command runs ``asyncio.run`` itself (as from a shell), so each test runs it in a thread:
the test's own thread has the reactor's loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from access.cli import main
from access.testing import RecordingAudit, env_token_key, unwired_audit
from hotline.cli import build_parser

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
KEY = bytes.fromhex("22" * 32)
T0 = 1_800_000_000.0
TOKEN = re.compile(r"hlt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


class Run:
    """One ``ivr tokens ...`` with its exit code, stdout and stderr."""

    def __init__(self, redis_url: str, prefix: str, audit: RecordingAudit) -> None:
        self.redis_url, self.prefix, self.audit = redis_url, prefix, audit

    def __call__(self, *argv: str, audit_source=None, key: bytes | None = KEY,
                 now: float = T0) -> tuple[int, str, str]:
        args = build_parser().parse_args(
            ["--config", str(CONFIG_DIR), "tokens", *argv, "--redis", self.redis_url])
        keys = {"HOTLINE_TOKEN_KEY": base64.b64encode(key).decode()} if key else {}
        out, err = io.StringIO(), io.StringIO()
        with ThreadPoolExecutor(1) as pool:
            code = pool.submit(
                main, args,
                audit=lambda _cfg: audit_source or (lambda _redis, _prefix: self.audit),
                token_key=lambda _cfg: env_token_key(keys),
                environ={"HOTLINE__REDIS__KEY_PREFIX": f"'{self.prefix}'"},  # YAML
                clock=lambda: now, operator="root", out=out, err=err,
            ).result()
        return code, out.getvalue(), err.getvalue()


@pytest.fixture
def run(redis_server, prefix):
    return Run(redis_server.url, prefix, RecordingAudit())


@pytest.fixture
def client(redis_server):
    with redis.Redis.from_url(redis_server.url) as c:
        yield c


def test_create_prints_the_token_once_and_list_never(run, client, prefix):
    """create prints the token and its id and expiry, keeps only its HMAC under the service's
    key, and records token.create; list, in text and JSON, shows the token but not its
    secret."""
    code, out, err = run("create", "--user", "agent101", "--role", "agent", "--expires", "12h")
    assert (code, err) == (0, "")
    (token,) = TOKEN.findall(out)
    token_id = token[4:20]
    assert out.count(token) == 1
    assert f"id: {token_id}  user: agent101  role: agent  expires: 2027-01-15T20:00:00Z" in out
    stored = client.hget(f"{prefix}access:token:{token_id}", "hash").decode()
    assert stored == hmac.new(KEY, token.encode(), hashlib.sha256).hexdigest()
    assert run.audit.entries == [{
        "user": "root", "role": "ops", "action": "token.create", "obj": f"token:{token_id}",
        "address": "cli", "now": T0, "reason": None,
        "details": {"user": "agent101", "role": "agent", "team": "",
                    "expires": "2027-01-15T20:00:00Z"},
    }]
    code, listing, _ = run("list")
    assert code == 0 and token_id in listing and "active" in listing
    code, as_json, _ = run("list", "--json")
    assert code == 0 and [t["id"] for t in json.loads(as_json)] == [token_id]
    for text in (listing, as_json):
        assert token[21:] not in text and stored not in text


def test_create_json_and_supervisor_team(run):
    """--json prints the token with what list shows; a supervisor token carries its team."""
    code, out, _ = run("create", "--user", "kim", "--role", "supervisor", "--team",
                       "network-desk", "--json")
    assert code == 0
    created = json.loads(out)
    assert TOKEN.fullmatch(created["token"])
    assert (created["user"], created["role"], created["team"], created["status"]) == (
        "kim", "supervisor", "network-desk", "active")
    assert created["expires"] == "2027-02-14T08:00:00Z"  # 30 days by default


def test_revoke_confirms_and_is_recorded(run):
    """revoke names the token it revoked, records token.revoke, and list shows it revoked;
    an unknown id exits 2."""
    _, out, _ = run("create", "--user", "ops1", "--role", "ops")
    token_id = TOKEN.findall(out)[0][4:20]
    code, out, err = run("revoke", token_id, now=T0 + 5)
    assert (code, out, err) == (0, f"revoked token {token_id} (user ops1, role ops)\n", "")
    assert [e["action"] for e in run.audit.entries] == ["token.create", "token.revoke"]
    assert run.audit.entries[1]["obj"] == f"token:{token_id}"
    assert "revoked" in run("list")[1]
    code, _, err = run("revoke", "0123456789abcdef")
    assert code == 2 and "no token '0123456789abcdef'" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--user", "x", "--role", "boss"], "unknown role 'boss'; one of agent, supervisor"),
    (["--user", "agent109", "--role", "agent"], "must be an agent of agents.yaml"),
    (["--user", "kim", "--role", "supervisor"], "a supervisor token needs a team"),
    (["--user", "kim", "--role", "supervisor", "--team", "sales-desk"],
     "unknown team 'sales-desk'; the teams of agents.yaml: billing-desk, network-desk"),
    (["--user", "agent101", "--role", "agent", "--team", "billing-desk"],
     "a team applies to supervisor tokens only"),
    (["--user", "a b", "--role", "ops"], "user 'a b' must be"),
    (["--user", "ops1", "--role", "ops", "--expires", "400d"], "longer than the maximum, 365d"),
    (["--user", "ops1", "--role", "ops", "--expires", "soon"], "not a duration like 30d"),
])
def test_bad_requests_exit_2_and_write_nothing(run, client, prefix, argv, message):
    """A bad role, user, team or expiry is refused with a clear message and exit 2, before
    Redis or the audit log is touched."""
    code, out, err = run("create", *argv)
    assert (code, out) == (2, "")
    assert err.startswith("ivr tokens: ") and message in err
    assert list(client.scan_iter(f"{prefix}*")) == [] and run.audit.entries == []


def test_no_token_change_without_the_audit_log(run, client, prefix):
    """A creation the audit log fails to record is revoked and its token never printed; with
    no audit log wired nothing is created at all (exit 3)."""
    run.audit.fail = OSError("disk full")
    code, out, err = run("create", "--user", "ops1", "--role", "ops")
    assert code == 3 and out == "" and "disk full" in err and "it was revoked" in err
    run.audit.fail = None
    code, listing, _ = run("list")
    assert code == 0 and "revoked" in listing and "active" not in listing
    before = set(client.scan_iter(f"{prefix}*"))
    code, out, err = run("create", "--user", "ops1", "--role", "ops", audit_source=unwired_audit)
    assert code == 3 and out == "" and "no audit log is wired" in err
    assert set(client.scan_iter(f"{prefix}*")) == before


def test_missing_key_or_redis_exit_3(run, prefix):
    """Without the tokens' key, or with Redis unreachable, the command exits 3 saying so."""
    code, _, err = run("list", key=None)
    assert code == 3 and "set HOTLINE_TOKEN_KEY" in err
    run.redis_url = "redis://127.0.0.1:1/0"
    code, _, err = run("list")
    assert code == 3 and "cannot use Redis at redis://127.0.0.1:1/0" in err
