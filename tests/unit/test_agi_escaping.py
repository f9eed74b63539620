"""Escaping: whatever a string holds, Asterisk parses back exactly that string, and nothing more.

The oracle is a line-by-line port of res_agi.c's parse_args() (and of
__ast_app_separate_args() for EXEC's application arguments), in ivr.testing.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from twisted.internet import task

from ivr.agi import AGISession, FastAGIProtocol
from ivr.agi.escaping import (
    MAX_COMMAND_BYTES,
    app_arguments,
    check_variable_name,
    format_command,
    quote_argument,
)
from ivr.testing import FakeAsterisk, parse_agi_args, result_of, separate_app_args

# Text Asterisk can be sent: anything but the three characters quote_argument refuses.
safe_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"),
    max_size=60,
)
# Extra weight on the characters the parsers care about.
tricky_text = st.text(alphabet=st.sampled_from(' \t"\\,()[]${}|&x;'), max_size=40)
any_arg = st.one_of(safe_text, tricky_text)


def parse_line(line: bytes) -> list[str]:
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    return parse_agi_args(line[:-1].decode("utf-8"))


@given(st.lists(any_arg, max_size=8))
def test_any_arguments_parse_back_exactly(args: list[str]) -> None:
    """For any argument strings, res_agi's parser yields the command words then exactly them."""
    line = format_command("SET VARIABLE", args)
    assume(len(line) <= MAX_COMMAND_BYTES)
    assert parse_line(line) == ["SET", "VARIABLE", *args]


@given(any_arg)
def test_a_single_word_never_splits(arg: str) -> None:
    """A quoted word is one word, whatever spaces, tabs, quotes or backslashes it holds."""
    assert parse_agi_args(quote_argument(arg)) == [arg]


@given(st.lists(any_arg, min_size=1, max_size=6))
def test_exec_application_arguments_reach_the_application_exactly(args: list[str]) -> None:
    """EXEC's one argument, split by the application's comma parser, gives back every argument."""
    assume(args != [""])  # Asterisk cannot tell one empty argument from none
    line = format_command("EXEC", ["Dial", app_arguments(args)])
    assume(len(line) <= MAX_COMMAND_BYTES)
    words = parse_line(line)
    assert words[:2] == ["EXEC", "Dial"]
    assert len(words) == 3
    assert separate_app_args(words[2]) == args


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b", "\n", "HANGUP\n"])
def test_line_breaking_characters_are_refused(bad: str) -> None:
    """CR, LF and NUL cannot be escaped for res_agi, so they are refused, not dropped."""
    with pytest.raises(ValueError):
        quote_argument(bad)
    with pytest.raises(ValueError):
        format_command("VERBOSE", [bad])


def test_non_strings_are_refused() -> None:
    """Numbers are formatted by the session methods; a stray int is a bug, not data."""
    with pytest.raises(TypeError):
        quote_argument(5)  # type: ignore[arg-type]


def test_overlong_command_is_refused() -> None:
    """A line longer than res_agi's 2047-byte read would run its tail as a second command."""
    fits = "x" * (MAX_COMMAND_BYTES - len(b'"VERBOSE" ""\n'))
    assert len(format_command("VERBOSE", [fits])) == MAX_COMMAND_BYTES
    with pytest.raises(ValueError, match="longer than"):
        format_command("VERBOSE", [fits + "x"])


def test_asterisk_runs_the_tail_of_an_overlong_line_as_a_command() -> None:
    """Why the length check matters: the fake, like res_agi, cuts at 2047 bytes."""
    fake = FakeAsterisk()
    protocol = FastAGIProtocol(task.Clock(), lambda _protocol: None)
    fake.connect(protocol, send_header=False)
    filler = "x" * (MAX_COMMAND_BYTES - len('"VERBOSE" "'))
    protocol.transport.write(f'"VERBOSE" "{filler}HANGUP\n'.encode())
    assert [words[0] for words in fake.commands] == ["VERBOSE", "HANGUP"]


@pytest.mark.parametrize(
    "verb", ["", "GET DATA\n", "GET  DATA", " EXEC", "EXEC;", '"GET"', "GET ${X}", "ÉCHO"]
)
def test_command_names_must_be_letters(verb: str) -> None:
    """Only letters and spaces can be a command name, so data never becomes a command."""
    with pytest.raises(ValueError, match="command name"):
        format_command(verb, [])


def test_multi_word_command_names_are_separate_words() -> None:
    """'GET DATA' is two words to res_agi's find_command(), not one quoted word."""
    assert parse_line(format_command("GET DATA", ["p", "3000"])) == ["GET", "DATA", "p", "3000"]


@pytest.mark.parametrize("name", ["HOTLINE_NEXT", "_INHERITED", "__ALWAYS", "x1"])
def test_plain_variable_names_pass(name: str) -> None:
    """Plain variable names (with inheritance prefixes) are accepted as they are."""
    assert check_variable_name(name) == name


@pytest.mark.parametrize(
    "name", ["CALLERID(name)", "SHELL(rm -rf /)", "X)", "A${B}", "A B", "", "名前", "A\nB"]
)
def test_function_like_or_odd_names_are_refused(name: str) -> None:
    """A name ending in ')' writes a dialplan function; odd characters are refused too."""
    with pytest.raises(ValueError):
        check_variable_name(name)


def test_known_functions_need_an_explicit_yes() -> None:
    """Calling code may write a function it names, such as CDR(userfield)."""
    assert check_variable_name("CDR(userfield)", allow_function=True) == "CDR(userfield)"
    with pytest.raises(ValueError):
        check_variable_name("(x)", allow_function=True)
    with pytest.raises(ValueError):
        check_variable_name("CDR(a", allow_function=True)


# -- the injection corpus, end to end through the session API ------------------------------

INJECTION_CORPUS = [
    'Eve" "HANGUP',
    'Eve\\" "HANGUP',
    "Eve\\",
    "\\\\\\",
    '"""',
    "${SHELL(rm -rf /)}",
    "$[1+1]",
    "CALLERID(name)",
    "x) = 1",
    "Eve\tTab",
    "  leading and trailing  ",
    "Ünïcødé 名前",
    "a,b|c(d)[e]&f",
    "",
]


async def echo_caller_name(session: AGISession) -> None:
    name = session.env["calleridname"]
    await session.set_variable("CALLER_NAME", name)
    await session.verbose(name)
    await session.exec_("Playback", name, "noanswer")
    await session.stream_file(name)


@pytest.mark.parametrize("name", INJECTION_CORPUS)
def test_caller_name_reaches_asterisk_as_one_literal_argument(name: str) -> None:
    """Caller-controlled text stays one argument everywhere; no command or function is added."""
    fake = FakeAsterisk(env={"calleridname": name})
    result_of(fake.run(echo_caller_name))
    assert fake.verbs == ["SET VARIABLE", "VERBOSE", "EXEC", "STREAM FILE"]
    assert fake.commands[0] == ("SET", "VARIABLE", "CALLER_NAME", name)
    assert fake.commands[1] == ("VERBOSE", name, "1")
    assert fake.exec_calls == [("Playback", [name, "noanswer"])]
    assert fake.commands[3] == ("STREAM", "FILE", name, "")
    assert fake.variables == {"CALLER_NAME": name}
    assert fake.agi_status == "SUCCESS"


@pytest.mark.parametrize("name", ["Eve\nHANGUP", "Eve\r\nEXEC System rm", "Eve\0x"])
def test_caller_name_with_line_breaks_sends_nothing(name: str) -> None:
    """Text that cannot be escaped fails in our process: Asterisk receives no command at all."""

    async def flow(session: AGISession) -> None:
        await session.set_variable("CALLER_NAME", name)

    fake = FakeAsterisk()
    d = fake.run(flow)
    with pytest.raises(ValueError):
        result_of(d)
    assert fake.commands == []
    assert fake.agi_status == "FAILURE"


def test_function_name_from_data_is_refused_before_sending() -> None:
    """A variable name taken from data that ends in ')' is refused; nothing is sent."""

    async def flow(session: AGISession) -> None:
        await session.set_variable(session.env["calleridname"], "1")

    fake = FakeAsterisk(env={"calleridname": "SHELL(reboot)"})
    with pytest.raises(ValueError):
        result_of(fake.run(flow))
    assert fake.commands == []


def test_no_full_variable_evaluation_is_offered() -> None:
    """GET FULL VARIABLE evaluates ${...}; the session deliberately has no method for it."""
    assert not any("full" in name.lower() for name in dir(AGISession))


def test_hangup_in_corpus_is_not_a_channel_hangup() -> None:
    """The word HANGUP inside caller data does not make the fake (or Asterisk) hang up."""
    fake = FakeAsterisk(env={"calleridname": 'x" "HANGUP'})
    result_of(fake.run(echo_caller_name))
    assert not fake.hung_up
    assert "HANGUP" not in fake.verbs


def test_flow_ends_quietly_when_a_channel_command_meets_a_hangup() -> None:
    """After the flow hangs up, variables can still be set; the next channel command raises
    ChannelHungUp, which ends the session quietly with AGISTATUS=HANGUP."""

    async def flow(session: AGISession) -> None:
        await session.hangup()
        await session.set_variable("AFTER", "1")
        await session.stream_file("x")

    fake = FakeAsterisk()
    result_of(fake.run(flow))
    assert fake.variables == {"AFTER": "1"}
    assert fake.verbs == ["HANGUP", "SET VARIABLE"]
    assert fake.agi_status == "HANGUP"
