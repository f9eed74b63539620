"""Differential tests: our parsing against pyst2 0.5.1's AGI class, an independent reader of
the same protocol. Both get the same bytes; where pyst2 cannot follow, a test says why."""

from __future__ import annotations

import io
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from asterisk import agi as pyst2
from ivr.agi import AGISession, ChannelHungUp, parse_reply
from ivr.testing import FakeAsterisk, Reply, failure_of, parse_agi_args, result_of

HEADERS = [
    {"callerid": "5551234", "calleridname": "Eve"},
    {"calleridname": "Dr. Who: Time Lord", "accountcode": "", "extension": "100"},
    {"calleridname": 'Mallory "the" \\ ${EVIL}', "dnid": "unknown", "rdnis": "100"},
    {"calleridname": "Zoë 名前", "language": "ko"},
]
ARGS = [[], ["one"], ["a b", "", "c:d"]]


@pytest.fixture(autouse=True)
def keep_sighup_handler() -> Iterator[None]:
    """pyst2's AGI() installs a SIGHUP handler; put the old one back."""
    previous = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, previous)


def pyst2_agi(stream: bytes) -> pyst2.AGI:
    return pyst2.AGI(
        stdin=io.StringIO(stream.decode("utf-8")), stdout=io.StringIO(), stderr=io.StringIO()
    )


@pytest.mark.parametrize("env", HEADERS)
@pytest.mark.parametrize("args", ARGS)
def test_header_parses_the_same(env: dict[str, str], args: list[str]) -> None:
    """Every header and argument pyst2 reads, we read with the same value. (pyst2 strips
    surrounding whitespace and keeps the agi_ prefix and args in one dict; we keep values raw
    and args apart, so the comparison strips and maps names.)"""
    fake = FakeAsterisk(env=env, args=args)
    theirs = pyst2_agi(fake.header).env
    seen: list[AGISession] = []

    async def flow(session: AGISession) -> None:
        seen.append(session)

    result_of(fake.run(flow))
    (session,) = seen
    ours = {f"agi_{k}": v.strip() for k, v in session.env.items()}
    ours.update({f"agi_arg_{i}": a.strip() for i, a in enumerate(session.args, 1)})
    assert ours == theirs


REPLIES = [
    "200 result=0",
    "200 result=1",
    "200 result=49",
    "200 result=1234",
    "200 result=*12",
    "200 result=1 (value)",
    "200 result=1 (two words)",
    "200 result=1 ()",
    "200 result=1 ((nested))",
    "200 result=1 (a) endpos=5)",
    "200 result=5 (timeout)",
    "200 result=0 endpos=8000",
    "200 result=35 endpos=12345",
    "200 result=1 (timeout) endpos=16000",
    "200 result=1 (dtmf) endpos=160",
]


@pytest.mark.parametrize("line", REPLIES)
def test_success_replies_parse_the_same(line: str) -> None:
    """For 200 replies, result text, data and endpos agree with pyst2's get_result()."""
    theirs = pyst2_agi(b"\n" + line.encode() + b"\n").get_result()
    ours = parse_reply(line.encode())
    assert theirs["result"] == (ours.result_text, ours.data or "")
    if ours.endpos is None:
        assert "endpos" not in theirs
    else:
        assert theirs["endpos"] == (str(ours.endpos), "")


@pytest.mark.parametrize(
    "line", ["200 result=-1", "200 result=-1 endpos=0", "200 result=-1 Gosub label not found"]
)
def test_minus_one_is_an_error_for_both(line: str) -> None:
    """result=-1: pyst2 raises AGIAppError ('error or hangup'); our channel commands raise
    ChannelHungUp, and the raw reply carries result -1."""
    with pytest.raises(pyst2.AGIAppError):
        pyst2_agi(b"\n" + line.encode() + b"\n").get_result()
    assert parse_reply(line.encode()).result == -1


def test_510_and_520_are_errors_for_both() -> None:
    """510 and a multi-line 520 block are command errors for both; the usage text agrees."""
    with pytest.raises(pyst2.AGIInvalidCommand):
        pyst2_agi(b"\n510 Invalid or unknown command\n").get_result()
    block = (
        b"520-Invalid command syntax.  Proper usage follows:\n Usage: X\n520 End of proper usage.\n"
    )
    with pytest.raises(pyst2.AGIUsageError) as theirs:
        pyst2_agi(b"\n" + block).get_result()

    async def flow(session: AGISession) -> None:
        await session.command("NOOP")

    fake = FakeAsterisk(answers={"NOOP": Reply(block.decode().rstrip("\n"))})
    ours = failure_of(fake.run(flow)).value
    assert [line.strip() for line in ours.text.splitlines()] == [
        line.strip()[4:] if line.startswith("520") else line.strip()
        for line in str(theirs.value).strip().splitlines()
    ]


# -- the session methods, command words and results side by side --------------------------

Case = tuple[
    str, Callable[[pyst2.AGI], Any], Callable[[AGISession], Any], str, Callable[[Any], Any]
]
CASES: list[Case] = [
    ("GET DATA", lambda a: a.get_data("menu", 3000, 4), lambda s: s.get_data("menu", 3000, 4),
     "200 result=123", str),
    ("GET DATA", lambda a: a.get_data("menu", 3000, 4), lambda s: s.get_data("menu", 3000, 4),
     "200 result=7 (timeout)", str),
    ("WAIT FOR DIGIT", lambda a: a.wait_for_digit(5000), lambda s: s.wait_for_digit(5000),
     "200 result=55", str),
    ("WAIT FOR DIGIT", lambda a: a.wait_for_digit(5000), lambda s: s.wait_for_digit(5000),
     "200 result=0", lambda v: v or ""),
    ("SAY NUMBER", lambda a: a.say_number(42, "#"), lambda s: s.say_number(42, "#"),
     "200 result=35", str),
    ("SET VARIABLE", lambda a: a.set_variable("X", "two words"),
     lambda s: s.set_variable("X", "two words"), "200 result=1", lambda v: v),
    ("GET VARIABLE", lambda a: a.get_variable("X"), lambda s: s.get_variable("X"),
     "200 result=1 (some value)", str),
    ("GET VARIABLE", lambda a: a.get_variable("X"), lambda s: s.get_variable("X"),
     "200 result=0", lambda v: v or ""),
    ("VERBOSE", lambda a: a.verbose("hello there", 2), lambda s: s.verbose("hello there", 2),
     "200 result=1", lambda v: v),
    ("ANSWER", lambda a: a.answer(), lambda s: s.answer(), "200 result=0", lambda v: v),
    ("EXEC", lambda a: a.appexec("Playback", "beep"), lambda s: s.exec_("Playback", "beep"),
     "200 result=0", str),
]  # fmt: skip


@pytest.mark.parametrize(("verb", "theirs", "ours", "reply", "normalise"), CASES)
def test_session_methods_agree_with_pyst2(
    verb: str,
    theirs: Callable[[pyst2.AGI], Any],
    ours: Callable[[AGISession], Any],
    reply: str,
    normalise: Callable[[Any], Any],
) -> None:
    """For plain arguments, both send the same words (as res_agi parses them) and read the same
    result from the same reply (pyst2 says '' where we say None)."""
    agi = pyst2_agi(b"\n" + reply.encode() + b"\n")
    their_result = theirs(agi)
    their_words = tuple(parse_agi_args(agi.stdout.getvalue().rstrip("\n")))

    got: list[Any] = []

    async def flow(session: AGISession) -> None:
        got.append(await ours(session))

    fake = FakeAsterisk(answers={verb: Reply(reply)})
    result_of(fake.run(flow))
    assert fake.commands == [their_words]
    assert normalise(got[0]) == their_result


def test_where_pyst2_cannot_follow() -> None:
    """pyst2 cannot be the reference for these, so they are pinned down against our parser only:
    - a bare HANGUP line (AGISIGHUP over FastAGI): pyst2 was written for AGI over a pipe, where
      hangup is a SIGHUP signal; it reads the line as a reply and fails on int('');
    - 511 (dead channel): pyst2 predates it and raises AGIUnknownError;
    - GET DATA with no digits, '200 result= (timeout)': pyst2's regex needs a non-empty value,
      so it drops the '(timeout)' and cannot tell a timeout from a lone '#'."""
    with pytest.raises(ValueError):
        pyst2_agi(b"\nHANGUP\n").get_result()
    with pytest.raises(pyst2.AGIUnknownError):
        pyst2_agi(b"\n511 Command Not Permitted on a dead channel\n").get_result()
    assert pyst2_agi(b"\n200 result= (timeout)\n").get_result() == {"result": ("", "")}

    got: list[Any] = []

    async def flow(session: AGISession) -> None:
        got.append(await session.get_data("menu", 3000, 4))
        got.append(await session.get_data("menu", 3000, 4))
        got.append(await session.wait_for_digit(5000))
        got.append(session.hung_up)
        try:
            await session.command("STREAM FILE", "x", "")
        except ChannelHungUp:
            got.append("511 is a hangup")

    fake = FakeAsterisk(
        answers={
            "WAIT FOR DIGIT": Reply("HANGUP\n200 result=49"),
            "GET DATA": [Reply("200 result= (timeout)"), Reply("200 result=")],
            "STREAM FILE": Reply("511 Command Not Permitted on a dead channel"),
        }
    )
    result_of(fake.run(flow))
    assert got == [None, "", "1", True, "511 is a hangup"]


def test_pyst2_does_not_escape_and_we_do() -> None:
    """Why we do not send commands through pyst2: its _quote() wraps in quotes without
    escaping, so a quote in caller data splits the argument; ours stays one argument."""
    name = 'Eve" "extra'
    agi = pyst2_agi(b"\n200 result=1\n")
    agi.set_variable("NAME", name)
    assert parse_agi_args(agi.stdout.getvalue().rstrip("\n"))[2:] == ["NAME", "Eve", "extra"]

    async def flow(session: AGISession) -> None:
        await session.set_variable("NAME", name)

    fake = FakeAsterisk()
    result_of(fake.run(flow))
    assert fake.commands == [("SET", "VARIABLE", "NAME", name)]
