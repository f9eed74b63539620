"""The server and the session API, against FakeAsterisk (which parses commands like res_agi)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.logger import LogEvent, LogLevel, globalLogPublisher

from ivr.agi import (
    NO_TIMEOUT,
    AGICommandError,
    AGISession,
    AGITimeout,
    ChannelHungUp,
    FastAGIFactory,
)
from ivr.testing import HANGUP, SILENCE, FakeAsterisk, Reply, failure_of, result_of

ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)



def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def errors_logged(events: list[LogEvent]) -> list[LogEvent]:
    return [e for e in events if e.get("log_level") in (LogLevel.error, LogLevel.critical)]


# -- dispatch and session end ----------------------------------------------------------------


def test_flow_is_chosen_by_script_name_and_sees_the_call() -> None:
    """The flow registered under agi_network_script runs with env, args and script name."""
    seen: list[AGISession] = []

    async def flow(session: AGISession) -> None:
        seen.append(session)

    fake = FakeAsterisk(script="survey", args=["agent101", "x y"], env={"callerid": "5550100"})
    result_of(fake.run(flow))
    (session,) = seen
    assert session.script == "survey"
    assert session.args == ["agent101", "x y"]
    assert session.env["callerid"] == "5550100"
    assert session.uniqueid == "1700000000.1"
    assert fake.agi_status == "SUCCESS"


def test_script_query_string_is_not_part_of_the_name() -> None:
    """agi://host/hotline?lang=en dispatches to 'hotline'."""
    ran: list[str] = []

    async def flow(session: AGISession) -> None:
        ran.append(session.script)

    fake = FakeAsterisk(env={"network_script": "hotline?lang=en"})
    result_of(fake.run(flow))
    assert ran == ["hotline"]


def test_unknown_script_fails_the_agi_without_running_anything(
    log_events: list[LogEvent],
) -> None:
    """No flow for the script: logged with the uniqueid, no command sent, FAILURE so the
    dialplan falls back to the operator."""
    before = metric("hotline_agi_unknown_scripts_total")
    factory = FastAGIFactory({"hotline": _never_called}, clock=task.Clock())
    fake = FakeAsterisk(script="nosuchflow")
    done = fake.connect(factory.buildProtocol(ADDRESS))
    result_of(done)
    assert fake.commands == []
    assert fake.agi_status == "FAILURE"
    assert metric("hotline_agi_unknown_scripts_total") == before + 1
    assert any(
        e.get("script") == "nosuchflow" and e.get("uniqueid") == "1700000000.1" for e in log_events
    )


async def _never_called(session: AGISession) -> None:
    raise AssertionError("no flow should run")


def test_flow_that_returns_closes_with_success() -> None:
    """The session ends when the flow's coroutine ends: connection closed, AGISTATUS=SUCCESS."""

    async def flow(session: AGISession) -> None:
        await session.answer()

    fake = FakeAsterisk()
    result_of(fake.run(flow))
    assert fake.closed
    assert fake.verbs == ["ANSWER"]
    assert fake.agi_status == "SUCCESS"


def test_flow_error_is_logged_with_the_uniqueid_and_fails_the_agi(
    log_events: list[LogEvent],
) -> None:
    """A flow raising anything but a hangup: logged with the call's uniqueid and traceback,
    counted, FAILURE for the dialplan; run() surfaces the exception to the test."""
    before = metric("hotline_agi_flow_errors_total")

    async def flow(session: AGISession) -> None:
        await session.answer()
        raise KeyError("menu config")

    fake = FakeAsterisk(env={"uniqueid": "1700000042.9"})
    failure_of(fake.run(flow), KeyError)
    assert fake.agi_status == "FAILURE"
    assert metric("hotline_agi_flow_errors_total") == before + 1
    (event,) = errors_logged(log_events)
    assert event["uniqueid"] == "1700000042.9"
    assert event["log_failure"].check(KeyError)


def test_flow_ending_by_hangup_is_quiet() -> None:
    """ChannelHungUp out of a flow is the normal end of many calls: no error is logged."""
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:

        async def flow(session: AGISession) -> None:
            await session.stream_file("welcome")
            await session.stream_file("never-played")

        fake = FakeAsterisk(answers={"STREAM FILE": HANGUP})
        result_of(fake.run(flow))
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert errors_logged(events) == []
    assert fake.verbs == ["STREAM FILE"]
    assert fake.agi_status == "HANGUP"


def test_a_failing_flow_does_not_touch_other_calls() -> None:
    """Two calls on one factory: one flow raises, the other completes normally."""

    async def flow(session: AGISession) -> None:
        await session.answer()
        if session.env["callerid"] == "666":
            raise RuntimeError("boom")
        await session.set_variable("HOTLINE_NEXT", "done")

    factory = FastAGIFactory({"hotline": flow}, clock=task.Clock())
    bad = FakeAsterisk(env={"callerid": "666", "uniqueid": "1.1"})
    good = FakeAsterisk(env={"callerid": "5551234", "uniqueid": "1.2"})
    bad_done = bad.connect(factory.buildProtocol(ADDRESS))
    good_done = good.connect(factory.buildProtocol(ADDRESS))
    result_of(bad_done)
    result_of(good_done)
    assert bad.agi_status == "FAILURE"
    assert good.agi_status == "SUCCESS"
    assert good.variables == {"HOTLINE_NEXT": "done"}


def test_sessions_are_counted() -> None:
    """hotline_agi_sessions_total counts every call whose header was read."""
    before = metric("hotline_agi_sessions_total")

    async def flow(session: AGISession) -> None:
        return None

    for _ in range(3):
        result_of(FakeAsterisk().run(flow))
    assert metric("hotline_agi_sessions_total") == before + 3


def test_flow_keeps_running_after_hangup_for_dead_channel_work() -> None:
    """After the caller hangs up the flow may still set variables (CDR, work order id)."""

    async def flow(session: AGISession) -> None:
        with pytest.raises(ChannelHungUp):
            await session.get_data("menu", 3000, 1)
        # Asterisk sends result=-1 before its HANGUP line, so hung_up may lag the exception.
        await session.set_variable("HOTLINE_CATEGORY", "billing")

    fake = FakeAsterisk(answers={"GET DATA": HANGUP})
    result_of(fake.run(flow))
    assert fake.variables == {"HOTLINE_CATEGORY": "billing"}
    assert fake.session is not None and fake.session.hung_up
    assert fake.agi_status == "HANGUP"


def test_when_hung_up_wakes_a_flow_waiting_on_something_else() -> None:
    """A flow waiting (e.g. in a queue) learns of the hangup from when_hung_up()."""
    queue_position: defer.Deferred[int] = defer.Deferred()

    async def flow(session: AGISession) -> None:
        first = await defer.DeferredList(
            [queue_position, session.when_hung_up()], fireOnOneCallback=True
        )
        assert first[1] == 1  # the hangup came first
        await session.set_variable("ABANDONED", "1")

    fake = FakeAsterisk()
    done = fake.run(flow)
    assert not done.called
    fake.hangup()
    result_of(done)
    assert fake.variables == {"ABANDONED": "1"}


def test_asterisk_disconnecting_mid_command_ends_the_flow_as_a_hangup() -> None:
    """Asterisk closing the socket while a command runs is a hangup for the flow."""

    async def flow(session: AGISession) -> None:
        await session.exec_("Dial", "PJSIP/agent101", timeout=NO_TIMEOUT)

    fake = FakeAsterisk(answers={"EXEC": SILENCE})
    done = fake.run(flow)
    assert not done.called
    fake.disconnect()
    result_of(done)
    assert fake.session is not None and fake.session.hung_up


# -- the command API ---------------------------------------------------------------------


def run_flow(flow, **fake_kwargs) -> FakeAsterisk:  # type: ignore[no-untyped-def]
    fake = FakeAsterisk(**fake_kwargs)
    result_of(fake.run(flow))
    return fake


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("1", "1"), ("1234", "1234"), ("*9", "*9"), (None, None), (Reply("200 result="), "")],
)
def test_get_data_returns_digits_or_none_on_timeout(answer: object, expected: object) -> None:
    """GET DATA: the digits entered; None when nothing was entered before the timeout;
    '' when the caller pressed # alone."""
    got: list[str | None] = []

    async def flow(session: AGISession) -> None:
        got.append(await session.get_data("menu", 3000, 4))

    fake = run_flow(flow, answers={"GET DATA": answer})
    assert got == [expected]
    assert fake.commands == [("GET", "DATA", "menu", "3000", "4")]


def test_get_data_keeps_digits_entered_before_a_timeout() -> None:
    """'200 result=12 (timeout)' means two digits, then silence: the digits count."""
    got: list[str | None] = []

    async def flow(session: AGISession) -> None:
        got.append(await session.get_data("menu", 3000, 4))

    run_flow(flow, answers={"GET DATA": Reply("200 result=12 (timeout)")})
    assert got == ["12"]


def test_digit_commands_return_the_digit_or_none() -> None:
    """STREAM FILE, WAIT FOR DIGIT and SAY NUMBER return the digit pressed, or None."""
    got: list[str | None] = []

    async def flow(session: AGISession) -> None:
        got.append(await session.stream_file("welcome", "0123456789*#"))
        got.append(await session.stream_file("welcome"))
        got.append(await session.wait_for_digit(5000))
        got.append(await session.wait_for_digit(5000))
        got.append(await session.say_number(42, "#"))

    fake = run_flow(
        flow,
        answers={"STREAM FILE": ["#", None], "WAIT FOR DIGIT": ["7", None], "SAY NUMBER": "#"},
    )
    assert got == ["#", None, "7", None, "#"]
    assert fake.commands[0] == ("STREAM", "FILE", "welcome", "0123456789*#")
    assert fake.commands[2] == ("WAIT", "FOR", "DIGIT", "5000")
    assert fake.commands[4] == ("SAY", "NUMBER", "42", "#")


def test_say_digits_reads_a_number_back_and_refuses_anything_else() -> None:
    """SAY DIGITS says a digit string (argc 4: the escape digits word is always sent) and
    returns the key that interrupted it; text other than digits, * and # never leaves."""
    got: list[str | None] = []
    refused: list[str] = []

    async def flow(session: AGISession) -> None:
        got.append(await session.say_digits("0105551234"))
        got.append(await session.say_digits("5550199", "1"))
        for bad in ("", "555 0199", "+15550199", '555"; HANGUP'):
            try:
                await session.say_digits(bad)
            except ValueError:
                refused.append(bad)

    fake = run_flow(flow, answers={"SAY DIGITS": [None, "1"]})
    assert got == [None, "1"]
    assert fake.calls("SAY DIGITS") == [("0105551234", ""), ("5550199", "1")]
    assert len(refused) == 4


def test_variables_round_trip_and_unset_is_none() -> None:
    """SET VARIABLE then GET VARIABLE gives the value back; an unset variable is None;
    a variable set to the empty string is ''."""
    got: list[str | None] = []

    async def flow(session: AGISession) -> None:
        await session.set_variable("HOTLINE_NEXT", "operator")
        await session.set_variable("EMPTY", "")
        got.append(await session.get_variable("HOTLINE_NEXT"))
        got.append(await session.get_variable("EMPTY"))
        got.append(await session.get_variable("NEVER_SET"))

    fake = run_flow(flow)
    assert got == ["operator", "", None]
    assert fake.variables == {"HOTLINE_NEXT": "operator", "EMPTY": ""}


def test_function_variables_need_allow_function() -> None:
    """CDR(userfield) can be written, and CALLERID(num) read, only when the code says so."""
    got: list[str | None] = []

    async def flow(session: AGISession) -> None:
        await session.set_variable("CDR(userfield)", "wo-17", allow_function=True)
        got.append(await session.get_variable("CALLERID(num)", allow_function=True))
        with pytest.raises(ValueError):
            await session.get_variable("CALLERID(num)")

    fake = run_flow(flow, answers={"GET VARIABLE": "5551234"})
    assert got == ["5551234"]
    assert fake.commands[0] == ("SET", "VARIABLE", "CDR(userfield)", "wo-17")


def test_exec_returns_the_application_result() -> None:
    """EXEC joins the application arguments into one word; the app sees them split back."""
    got: list[int] = []

    async def flow(session: AGISession) -> None:
        got.append(await session.exec_("Dial", "PJSIP/agent101", "30", "U(sub^a,b)"))
        got.append(await session.exec_("Answer"))

    fake = run_flow(flow, answers={"EXEC": [0, 3]})
    assert got == [0, 3]
    assert fake.exec_calls == [("Dial", ["PJSIP/agent101", "30", "U(sub^a,b)"]), ("Answer", [])]


def test_exec_of_a_missing_application_is_a_command_error() -> None:
    """result=-2 means no such application."""

    async def flow(session: AGISession) -> None:
        await session.exec_("NoSuchApp", "x")

    fake = FakeAsterisk(answers={"EXEC": -2})
    error = failure_of(fake.run(flow), AGICommandError).value
    assert "NoSuchApp" in str(error)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.answer(),
        lambda s: s.exec_("Dial", "PJSIP/agent101"),
        lambda s: s.say_number(5),
        lambda s: s.wait_for_digit(100),
    ],
)
def test_result_minus_one_is_a_hangup(call) -> None:  # type: ignore[no-untyped-def]
    """A channel command returning -1 (the caller went away) raises ChannelHungUp."""
    outcome: list[type] = []

    async def flow(session: AGISession) -> None:
        try:
            await call(session)
        except ChannelHungUp as e:
            outcome.append(type(e))

    run_flow(flow, answers={v: -1 for v in ("ANSWER", "EXEC", "SAY NUMBER", "WAIT FOR DIGIT")})
    assert outcome == [ChannelHungUp]


def test_channel_commands_after_hangup_fail_without_a_round_trip() -> None:
    """Once HANGUP was seen, channel commands fail at once; nothing is sent for them."""
    outcome: list[str] = []

    async def flow(session: AGISession) -> None:
        await session.when_hung_up()
        for name, call in [
            ("answer", session.answer),
            ("stream", lambda: session.stream_file("x")),
            ("music", lambda: session.set_music(True)),
        ]:
            try:
                await call()
            except ChannelHungUp:
                outcome.append(name)
        await session.verbose("caller left")

    fake = FakeAsterisk()
    done = fake.run(flow)
    fake.hangup()
    result_of(done)
    assert outcome == ["answer", "stream", "music"]
    assert fake.commands == [("VERBOSE", "caller left", "1")]


def test_set_music_and_verbose_words() -> None:
    """set_music and verbose send the words res_agi expects."""

    async def flow(session: AGISession) -> None:
        await session.set_music(True, "hotline")
        await session.set_music(False)
        await session.verbose("hello world", 3)
        await session.hangup()

    fake = run_flow(flow)
    assert fake.commands == [
        ("SET", "MUSIC", "on", "hotline"),
        ("SET", "MUSIC", "off", "default"),
        ("VERBOSE", "hello world", "3"),
        ("HANGUP",),
    ]


def test_wrong_usage_is_a_command_error_with_the_usage_text() -> None:
    """The generic command() passes Asterisk's 520 usage block back as AGICommandError."""

    async def flow(session: AGISession) -> None:
        await session.command("WAIT FOR DIGIT")

    fake = FakeAsterisk()
    error = failure_of(fake.run(flow), AGICommandError).value
    assert error.code == 520
    assert "Usage: WAIT FOR DIGIT" in error.text


def test_command_timeout_default_and_per_command() -> None:
    """Commands time out after the session default; a command may ask for its own timeout.
    A timed-out session is closed with FAILURE."""

    async def flow(session: AGISession) -> None:
        await session.command("NOOP", timeout=2.5)

    fake = FakeAsterisk(answers={"NOOP": SILENCE})
    done = fake.run(flow)
    fake.clock.advance(2.4)
    assert not done.called
    fake.clock.advance(0.2)
    failure_of(done, AGITimeout)
    assert fake.agi_status == "FAILURE"


def test_get_data_waits_longer_than_its_own_digit_timeout() -> None:
    """GET DATA's reply timeout covers the prompt plus Asterisk's own wait for each digit."""

    async def flow(session: AGISession) -> None:
        await session.get_data("menu", 10_000, 4)

    fake = FakeAsterisk(answers={"GET DATA": SILENCE})
    done = fake.run(flow)
    fake.clock.advance(60 + 4 * 10)
    assert not done.called
    fake.clock.advance(20)
    failure_of(done, AGITimeout)


# -- the fake itself ---------------------------------------------------------------------


def test_fake_answer_callables_get_the_command_arguments() -> None:
    """A callable answer is called with the command's arguments, one string each."""
    calls: list[tuple[str, ...]] = []

    def get_data(prompt: str, timeout_ms: str, max_digits: str) -> str:
        calls.append((prompt, timeout_ms, max_digits))
        return "42"

    got: list[str | None] = []

    async def flow(session: AGISession) -> None:
        got.append(await session.get_data("menu", 3000, 2))

    run_flow(flow, answers={"GET DATA": get_data})
    assert calls == [("menu", "3000", "2")]
    assert got == ["42"]


def test_fake_stops_a_runaway_flow() -> None:
    """A flow polling in a loop against the instant fake would never end; past max_commands
    the fake disconnects and run() fails with a clear AssertionError."""

    async def flow(session: AGISession) -> None:
        while True:
            await session.wait_for_digit(100)

    fake = FakeAsterisk(max_commands=50)
    failure = failure_of(fake.run(flow), AssertionError)
    assert "50 commands" in str(failure.value)
    assert len(fake.commands) == 50


def test_fake_lists_the_arguments_of_one_verb() -> None:
    """calls(verb) gives each command's arguments without the command's own words."""

    async def flow(session: AGISession) -> None:
        await session.stream_file("welcome", "12")
        await session.set_variable("A", "1")
        await session.stream_file("bye")

    fake = run_flow(flow)
    assert fake.calls("STREAM FILE") == [("welcome", "12"), ("bye", "")]
    assert fake.calls("set variable") == [("A", "1")]
