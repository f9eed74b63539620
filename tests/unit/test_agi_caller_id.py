"""Caller-controlled header values arrive raw: a newline in a caller ID name must neither
break the call nor smuggle in a header."""

from __future__ import annotations

from ivr.testing import FakeAsterisk, result_of


def _env_seen(calleridname: str) -> tuple[FakeAsterisk, dict[str, str]]:
    seen: dict[str, str] = {}

    async def flow(session) -> None:
        seen.update(session.env)

    fake = FakeAsterisk(env={"calleridname": calleridname})
    result_of(fake.run(flow))
    return fake, seen


def test_newline_in_caller_id_name_is_kept_verbatim() -> None:
    """A name split over lines by a raw newline is joined back, newline included, and the
    line after the newline is not taken for a command or a header."""
    name = 'Eve "\\" ${SHELL(id)}\nSET VARIABLE HOTLINE_NEXT operator'
    fake, env = _env_seen(name)
    assert env["calleridname"] == name
    assert fake.agi_status == "SUCCESS"


def test_forged_header_in_caller_id_name_fails_safe() -> None:
    """A name whose second line looks like a header Asterisk sends later (agi_callingpres)
    makes the real header a duplicate: the session fails (AGISTATUS=FAILURE, so the dialplan
    sends the caller to the operator) instead of trusting either value."""
    fake, env = _env_seen("Mallory\nagi_callingpres: 99")
    assert env == {}
    assert fake.agi_status == "FAILURE"
