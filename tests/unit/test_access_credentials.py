"""The pure parts of tokens and sessions: expiry durations, token subjects, the session
cookie, CSRF tokens bound to a session and the server key."""

from __future__ import annotations

import pytest

from access import Role
from access.sessions import (
    COOKIE_NAME,
    cleared_session_cookie,
    csrf_token,
    csrf_valid,
    session_cookie,
    session_id_from_cookies,
)
from access.tokens import MAX_EXPIRES_S, check_subject, parse_expires

KEY = bytes(range(32))
SID = "A" * 21 + "_-" + "b" * 20


@pytest.mark.parametrize(("text", "seconds"), [
    ("30d", 30 * 86400), ("12h", 12 * 3600), ("90m", 90 * 60), ("365d", MAX_EXPIRES_S),
    (" 1d ", 86400),
])
def test_expiry_durations(text, seconds):
    """--expires takes days, hours or minutes."""
    assert parse_expires(text) == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("366d", "longer than the maximum, 365d"), ("0d", "not a duration"),
    ("30", "not a duration"), ("1.5h", "not a duration"), ("-1d", "not a duration"),
    ("30s", "not a duration"), ("", "not a duration"),
])
def test_bad_expiry_durations_are_refused(text, message):
    """Zero, negative, fractional, unit-less, second-based or over-long expiries are refused
    with a message saying so."""
    with pytest.raises(ValueError, match=message):
        parse_expires(text)


def test_token_subjects():
    """Roles are the five; only a supervisor carries a team, and must; users and teams have a
    safe shape."""
    assert check_subject("agent101", "agent", None) is Role.AGENT
    assert check_subject("kim@example.org", "supervisor", "billing-desk") is Role.SUPERVISOR
    with pytest.raises(ValueError, match="unknown role 'boss'; one of agent, supervisor"):
        check_subject("x", "boss", None)
    with pytest.raises(ValueError, match="needs a team"):
        check_subject("x", "supervisor", None)
    with pytest.raises(ValueError, match="supervisor tokens only"):
        check_subject("agent101", "agent", "billing-desk")
    with pytest.raises(ValueError, match="team 'Billing'"):
        check_subject("x", "supervisor", "Billing")
    for user in ("", "a b", "x\r\nSet-Cookie: y", "-x", "a" * 65):
        with pytest.raises(ValueError, match="user"):
            check_subject(user, "ops", None)


def test_session_cookie_is_host_only_http_only_secure_strict():
    """The cookie hands over only the session id, with every attribute that keeps it from
    scripts, other sites and plain HTTP."""
    cookie = session_cookie(SID, 3600.5)
    assert cookie == (f"{COOKIE_NAME}={SID}; Path=/; Max-Age=3600; HttpOnly; Secure; "
                      "SameSite=Strict")
    assert COOKIE_NAME.startswith("__Host-")
    assert cleared_session_cookie().startswith(f"{COOKIE_NAME}=; Path=/; Max-Age=0;")


def test_session_id_read_from_the_cookie_header():
    """The session id is found among other cookies; a missing or misshapen one is None."""
    assert session_id_from_cookies(f"theme=dark; {COOKIE_NAME}={SID}; x=1") == SID
    assert session_id_from_cookies(None) is None
    assert session_id_from_cookies("theme=dark") is None
    assert session_id_from_cookies(f"{COOKIE_NAME}=short") is None
    assert session_id_from_cookies(f"{COOKIE_NAME}={SID}x") is None


def test_csrf_token_is_bound_to_session_and_key():
    """A CSRF token verifies for its session only, under its key only; empty or missing
    tokens never verify."""
    token = csrf_token(KEY, SID)
    assert csrf_valid(KEY, SID, token)
    assert not csrf_valid(KEY, "B" * 43, token)
    assert not csrf_valid(bytes(32), SID, token)
    assert not csrf_valid(KEY, SID, None)
    assert not csrf_valid(KEY, SID, "")
    assert not csrf_valid(KEY, SID, token[:-1])
    assert SID not in token and len(token) == 43
