"""The FastAGI wire protocol, driven byte by byte through a StringTransport and a task.Clock."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent

from ivr.agi import (
    NO_TIMEOUT,
    AGICommandError,
    AGIConnectionLost,
    AGILimits,
    AGIProtocolError,
    AGIReply,
    AGITimeout,
    ChannelHungUp,
    FastAGIProtocol,
    parse_reply,
)
from ivr.testing import failure_of, result_of

HEADER = (
    b"agi_network: yes\n"
    b"agi_network_script: hotline\n"
    b"agi_request: agi://127.0.0.1:4573/hotline\n"
    b"agi_channel: PJSIP/caller-00000001\n"
    b"agi_uniqueid: 1700000000.7\n"
    b"agi_callerid: 5551234\n"
    b'agi_calleridname: Eve "the: caller" \\ ${X}\n'
    b"agi_accountcode: \n"
    b"agi_rdnis:\n"
    b"agi_arg_1: first arg\n"
    b"agi_arg_2: \n"
    b"\n"
)


class Call:
    """One protocol on a StringTransport, with the clock and the ready notifications."""

    def __init__(self, limits: AGILimits | None = None) -> None:
        limits = limits or AGILimits()
        self.clock = task.Clock()
        self.ready: list[FastAGIProtocol] = []
        self.protocol = FastAGIProtocol(self.clock, self.ready.append, limits)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def receive(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def sent(self) -> bytes:
        value = self.transport.value()
        self.transport.clear()
        return value


@pytest.fixture
def call() -> Call:
    return Call()


@pytest.fixture
def ready_call() -> Call:
    c = Call()
    c.receive(HEADER)
    return c



def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- header --------------------------------------------------------------------------------


def test_header_is_parsed_raw_and_the_session_becomes_ready(call: Call) -> None:
    """Values are kept byte for byte (quotes, colons, backslashes); args are in order."""
    call.receive(HEADER)
    assert call.ready == [call.protocol]
    env = call.protocol.env
    assert env["network_script"] == "hotline"
    assert env["uniqueid"] == "1700000000.7"
    assert env["calleridname"] == 'Eve "the: caller" \\ ${X}'
    assert env["accountcode"] == ""
    assert env["rdnis"] == ""
    assert "arg_1" not in env
    assert call.protocol.args == ["first arg", ""]


def test_header_may_arrive_in_pieces(call: Call) -> None:
    """Lines split across TCP segments (even one byte at a time) are reassembled."""
    for i in range(len(HEADER)):
        assert call.ready == []
        call.receive(HEADER[i : i + 1])
    assert call.ready == [call.protocol]
    assert call.protocol.env["callerid"] == "5551234"


def test_non_utf8_caller_name_is_replaced_not_fatal(call: Call) -> None:
    """A caller name in Latin-1 decodes with replacement characters; the call goes on."""
    call.receive(b"agi_network_script: hotline\nagi_calleridname: Jos\xe9\n\n")
    assert call.protocol.env["calleridname"] == "Jos\ufffd"
    assert call.ready


@pytest.mark.parametrize(
    "bad",
    [
        b"no colon here\n",
        b"HANGUP\n",
        b"x_network: yes\n",
        b"agi_uniqueid: 1\nagi_uniqueid: 2\n",
        b"agi_arg_2: skipped one\n",
        b"agi_arg_1: a\nagi_callerid: smuggled\n",
    ],
)
def test_malformed_or_smuggled_header_drops_the_connection(call: Call, bad: bytes) -> None:
    """Lines a newline in a caller-controlled value could forge are refused: duplicates,
    out-of-order args, headers after args. The connection is dropped with FAILURE."""
    before = metric("hotline_agi_protocol_errors_total", reason="bad_header")
    call.receive(b"agi_network_script: hotline\n" + bad + b"\n")
    assert call.ready == []
    assert call.transport.disconnecting
    assert call.sent() == b"FAILURE\n"
    assert metric("hotline_agi_protocol_errors_total", reason="bad_header") == before + 1


def test_oversized_line_drops_only_that_connection() -> None:
    """A line over the limit, even unterminated, drops the connection without buffering it."""
    call = Call(AGILimits(max_line=100))
    other = Call(AGILimits(max_line=100))
    before = metric("hotline_agi_protocol_errors_total", reason="line_too_long")
    call.receive(b"agi_calleridname: " + b"x" * 200)
    assert call.transport.disconnecting
    assert not other.transport.disconnecting
    assert metric("hotline_agi_protocol_errors_total", reason="line_too_long") == before + 1
    other.receive(HEADER)
    assert other.ready


def test_oversized_terminated_line_is_refused() -> None:
    """A terminated line over the limit is refused as well."""
    call = Call(AGILimits(max_line=100))
    call.receive(b"agi_calleridname: " + b"x" * 200 + b"\n")
    assert call.transport.disconnecting
    assert call.ready == []


@pytest.mark.parametrize("limits", [AGILimits(max_header_lines=5), AGILimits(max_header_bytes=64)])
def test_oversized_header_drops_the_connection(limits: AGILimits) -> None:
    """Too many header lines, or too many header bytes, end the connection."""
    call = Call(limits)
    before = metric("hotline_agi_protocol_errors_total", reason="header_too_large")
    call.receive(b"".join(b"agi_arg_%d: value\n" % i for i in range(1, 20)))
    assert call.transport.disconnecting
    assert call.ready == []
    assert metric("hotline_agi_protocol_errors_total", reason="header_too_large") == before + 1


def test_half_open_connection_is_dropped_after_the_header_timeout(call: Call) -> None:
    """A peer that sends part of a header and goes silent is dropped after header_timeout."""
    before = metric("hotline_agi_protocol_errors_total", reason="header_timeout")
    call.receive(b"agi_network: yes\nagi_network_scr")
    call.clock.advance(9.9)
    assert not call.transport.disconnecting
    call.clock.advance(0.2)
    assert call.transport.disconnecting
    assert call.ready == []
    assert metric("hotline_agi_protocol_errors_total", reason="header_timeout") == before + 1


def test_complete_header_stops_the_header_timer(ready_call: Call) -> None:
    """Once the header is read, an idle session is not dropped: the flow may await other work."""
    ready_call.clock.advance(3600)
    assert not ready_call.transport.disconnecting
    assert ready_call.clock.getDelayedCalls() == []


# -- replies -------------------------------------------------------------------------------


DEAD = b"511 Command Not Permitted on a dead channel or intercept routine"
NO_USAGE = b"520 Invalid command syntax.  Proper usage not available."


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "endpos", "result_text"),
    [
        (b"200 result=0", 200, 0, None, None, "0"),
        (b"200 result=1 (value)", 200, 1, "value", None, "1"),
        (b"200 result=1 ()", 200, 1, "", None, "1"),
        (b"200 result=12 (timeout)", 200, 12, "timeout", None, "12"),
        (b"200 result= (timeout)", 200, 0, "timeout", None, ""),
        (b"200 result=*12", 200, 0, None, None, "*12"),
        (b"200 result=-1", 200, -1, None, None, "-1"),
        (b"200 result=49 endpos=1234", 200, 49, None, 1234, "49"),
        (b"200 result=1 (timeout) endpos=8000", 200, 1, "timeout", 8000, "1"),
        (b"200 result=1 (a) endpos=5)", 200, 1, "a) endpos=5", None, "1"),
        (b"200 result=1 ((x))", 200, 1, "(x)", None, "1"),
        (b"200 result=-1 Gosub label not found", 200, -1, "Gosub label not found", None, "-1"),
        (b"510 Invalid or unknown command", 510, 0, None, None, ""),
        (DEAD, 511, 0, None, None, ""),
        (NO_USAGE, 520, 0, None, None, ""),
    ],
)
def test_reply_lines_parse(
    line: bytes, code: int, result: int, data: str | None, endpos: int | None, result_text: str
) -> None:
    """Each reply form Asterisk writes parses to code, result, data and endpos; text keeps
    everything after the code."""
    text = line[4:].decode()
    assert parse_reply(line) == AGIReply(code, result, data, endpos, result_text, text)


@pytest.mark.parametrize("line", [b"", b"200", b"200 foo=1", b"HANGUP", b"300 result=0", b"hello"])
def test_non_replies_do_not_parse(line: bytes) -> None:
    """Anything else is not a reply."""
    with pytest.raises(ValueError):
        parse_reply(line)


def test_command_is_written_and_its_reply_fires_the_deferred(ready_call: Call) -> None:
    """One command line out, one reply in; the protocol is idle again for the next command."""
    before = metric("hotline_agi_commands_total")
    d = ready_call.protocol.send_command(b'"ANSWER"\n', 60)
    assert ready_call.sent() == b'"ANSWER"\n'
    assert not d.called
    ready_call.receive(b"200 result=0\n")
    assert result_of(d) == AGIReply(200, 0, None, None, "0", "result=0")
    assert metric("hotline_agi_commands_total") == before + 1
    d2 = ready_call.protocol.send_command(b'"NOOP"\n', 60)
    ready_call.receive(b"200 result=0\r\n")
    assert result_of(d2).result == 0


def test_only_one_command_in_flight(ready_call: Call) -> None:
    """A second command before the first reply is a flow bug and is refused loudly."""
    ready_call.protocol.send_command(b'"ANSWER"\n', 60)
    with pytest.raises(RuntimeError, match="in flight"):
        ready_call.protocol.send_command(b'"NOOP"\n', 60)
    assert ready_call.sent() == b'"ANSWER"\n'


def test_command_before_the_header_is_refused(call: Call) -> None:
    """Nothing may be sent until the header has been read."""
    with pytest.raises(RuntimeError, match="header"):
        call.protocol.send_command(b'"ANSWER"\n', 60)


def test_510_fails_the_command(ready_call: Call) -> None:
    """An unknown command fails with AGICommandError carrying the code and text."""
    d = ready_call.protocol.send_command(b'"FROB"\n', 60)
    ready_call.receive(b"510 Invalid or unknown command\n")
    error = failure_of(d, AGICommandError).value
    assert error.code == 510
    assert "FROB" in str(error)


def test_multi_line_520_is_one_reply(ready_call: Call) -> None:
    """A 520- usage block, however long, completes the command once at '520 End...'."""
    d = ready_call.protocol.send_command(b'"GET" "DATA"\n', 60)
    ready_call.receive(b"520-Invalid command syntax.  Proper usage follows:\n")
    ready_call.receive(b" Usage: GET DATA <file to be streamed> [timeout] [max digits]\n\n")
    assert not d.called
    ready_call.receive(b"520 End of proper usage.\n")
    error = failure_of(d, AGICommandError).value
    assert error.code == 520
    assert error.text == (
        "Invalid command syntax.  Proper usage follows:\n"
        " Usage: GET DATA <file to be streamed> [timeout] [max digits]\n"
        "\n"
        "End of proper usage."
    )
    d2 = ready_call.protocol.send_command(b'"NOOP"\n', 60)
    ready_call.receive(b"200 result=0\n")
    assert result_of(d2).code == 200


def test_endless_520_block_is_a_protocol_error() -> None:
    """A usage block that never ends is cut off at max_usage_lines."""
    call = Call(AGILimits(max_usage_lines=3))
    call.receive(HEADER)
    d = call.protocol.send_command(b'"GET" "DATA"\n', 60)
    call.receive(b"520-x\n" + b"line\n" * 5)
    failure_of(d, AGIProtocolError)
    assert call.transport.disconnecting


def test_511_fails_with_hangup_and_marks_the_caller_gone(ready_call: Call) -> None:
    """511 (dead channel) means the caller is gone: ChannelHungUp, hung_up set."""
    d = ready_call.protocol.send_command(b'"STREAM" "FILE" "x" ""\n', 60)
    ready_call.receive(b"511 Command Not Permitted on a dead channel or intercept routine\n")
    failure_of(d, ChannelHungUp)
    assert ready_call.protocol.hung_up


# -- HANGUP events -------------------------------------------------------------------------


def test_hangup_between_commands_is_an_event_not_a_reply(ready_call: Call) -> None:
    """HANGUP while idle sets hung_up and fires the notice; the protocol stays usable."""
    notice = ready_call.protocol.when_hung_up()
    ready_call.receive(b"HANGUP\n")
    assert ready_call.protocol.hung_up
    assert notice.called
    assert not ready_call.transport.disconnecting
    d = ready_call.protocol.send_command(b'"SET" "VARIABLE" "A" "1"\n', 60)
    ready_call.receive(b"200 result=1\n")
    assert result_of(d).result == 1


def test_hangup_while_a_command_is_in_flight_does_not_answer_it(ready_call: Call) -> None:
    """HANGUP before the reply is an event; the command still gets its own reply."""
    d = ready_call.protocol.send_command(b'"GET" "DATA" "x"\n', 60)
    ready_call.receive(b"HANGUP\n")
    assert ready_call.protocol.hung_up
    assert not d.called
    ready_call.receive(b"200 result=-1\n")
    assert result_of(d).result == -1


def test_hangup_right_after_the_header_in_the_same_segment(call: Call) -> None:
    """A HANGUP in the same segment as the header is seen after the session is ready."""
    call.receive(HEADER + b"HANGUP\n")
    assert call.ready and call.protocol.hung_up
    assert call.protocol.when_hung_up().called


def test_repeated_hangup_lines_notify_once(ready_call: Call) -> None:
    """Asterisk may send HANGUP again at the end; listeners are told once."""
    fired: list[None] = []
    ready_call.protocol.when_hung_up().addCallback(fired.append)
    ready_call.receive(b"HANGUP\nHANGUP\n")
    assert fired == [None]


# -- garbage, timeouts, lost connections ---------------------------------------------------


@pytest.mark.parametrize("garbage", [b"hello\n", b"\n", b"200 result=0\n", b"300 ok\n"])
def test_unsolicited_line_ends_the_session(ready_call: Call, garbage: bytes) -> None:
    """Anything but HANGUP while idle is garbage: FAILURE, close, counted."""
    before = metric("hotline_agi_protocol_errors_total", reason="unexpected_line")
    ready_call.receive(garbage)
    assert ready_call.transport.disconnecting
    assert ready_call.sent() == b"FAILURE\n"
    assert metric("hotline_agi_protocol_errors_total", reason="unexpected_line") == before + 1


def test_garbage_reply_fails_the_command_and_logs_the_call(
    ready_call: Call, log_events: list[LogEvent]
) -> None:
    """A reply that is not a reply fails the command with AGIProtocolError and ends the session;
    the log names the call's uniqueid."""
    d = ready_call.protocol.send_command(b'"ANSWER"\n', 60)
    ready_call.receive(b"garbage\n200 result=0\n")
    failure_of(d, AGIProtocolError)
    assert ready_call.transport.disconnecting
    assert ready_call.protocol.closed
    assert any(e.get("uniqueid") == "1700000000.7" for e in log_events)
    later = ready_call.protocol.send_command(b'"NOOP"\n', 60)
    failure_of(later, AGIConnectionLost)


def test_command_timeout_fails_the_command_and_drops_the_session(ready_call: Call) -> None:
    """No reply within the timeout: AGITimeout, FAILURE sent, connection closed (a late reply
    would otherwise answer the next command)."""
    before = metric("hotline_agi_command_timeouts_total")
    d = ready_call.protocol.send_command(b'"EXEC" "Wait" "100"\n', 5)
    ready_call.sent()
    ready_call.clock.advance(4.9)
    assert not d.called
    ready_call.clock.advance(0.2)
    failure_of(d, AGITimeout)
    assert ready_call.sent() == b"FAILURE\n"
    assert ready_call.transport.disconnecting
    assert metric("hotline_agi_command_timeouts_total") == before + 1
    ready_call.receive(b"200 result=0\n")  # the late reply is ignored


def test_reply_in_time_means_no_timeout_later(ready_call: Call) -> None:
    """A timely reply disarms the timeout: long after it, nothing fails and the idle session
    keeps no timer running."""
    d = ready_call.protocol.send_command(b'"ANSWER"\n', 5)
    ready_call.receive(b"200 result=0\n")
    result_of(d)
    ready_call.clock.advance(10)
    assert not ready_call.transport.disconnecting
    assert ready_call.clock.getDelayedCalls() == []


def test_each_command_gets_its_own_full_timeout(ready_call: Call) -> None:
    """The shared deadline timer never cuts a later command short: a command sent 4 s into
    the first one's 5 s still gets its whole 5 s."""
    first = ready_call.protocol.send_command(b'"ANSWER"\n', 5)
    ready_call.clock.advance(4)
    ready_call.receive(b"200 result=0\n")
    result_of(first)
    second = ready_call.protocol.send_command(b'"NOOP"\n', 5)
    ready_call.clock.advance(4.9)
    assert not second.called
    ready_call.clock.advance(0.2)
    failure_of(second, AGITimeout)


def test_a_shorter_timeout_than_the_armed_timer_still_fires_on_time(ready_call: Call) -> None:
    """A short timeout after a long one pulls the shared timer in."""
    first = ready_call.protocol.send_command(b'"EXEC" "Wait" "1"\n', 600)
    ready_call.receive(b"200 result=0\n")
    result_of(first)
    second = ready_call.protocol.send_command(b'"NOOP"\n', 2)
    ready_call.clock.advance(2.1)
    failure_of(second, AGITimeout)


def test_no_timeout_means_no_timer(ready_call: Call) -> None:
    """NO_TIMEOUT commands (Dial, AudioSocket) wait as long as the call lasts."""
    d = ready_call.protocol.send_command(b'"EXEC" "Dial" "PJSIP/agent101"\n', NO_TIMEOUT)
    assert ready_call.clock.getDelayedCalls() == []
    ready_call.clock.advance(7200)
    ready_call.receive(b"200 result=0\n")
    assert result_of(d).result == 0


def test_connection_lost_during_a_command_fails_it_as_a_hangup(ready_call: Call) -> None:
    """Asterisk going away mid-command: the command fails with AGIConnectionLost, which is a
    ChannelHungUp, and hangup listeners hear about it."""
    notice = ready_call.protocol.when_hung_up()
    closed = ready_call.protocol.when_closed()
    d = ready_call.protocol.send_command(b'"ANSWER"\n', 60)
    ready_call.protocol.connectionLost()
    failure_of(d, AGIConnectionLost)
    assert issubclass(AGIConnectionLost, ChannelHungUp)
    assert notice.called and closed.called
    assert ready_call.clock.getDelayedCalls() == []


def test_cancelling_a_command_drops_the_session(ready_call: Call) -> None:
    """A cancelled command's reply would answer the next one, so the session is dropped."""
    d = ready_call.protocol.send_command(b'"ANSWER"\n', 60)
    ready_call.sent()
    d.cancel()
    failure_of(d, AGIConnectionLost)
    assert ready_call.sent() == b"FAILURE\n"
    assert ready_call.transport.disconnecting


def test_close_by_us_is_not_a_hangup(ready_call: Call) -> None:
    """Closing after a finished flow sends no FAILURE and does not claim the caller hung up."""
    ready_call.protocol.close()
    assert ready_call.transport.disconnecting
    assert ready_call.sent() == b""
    ready_call.protocol.connectionLost()
    assert not ready_call.protocol.hung_up


def test_active_sessions_gauge_follows_connections() -> None:
    """hotline_agi_sessions_active counts open connections."""
    before = metric("hotline_agi_sessions_active")
    call = Call()
    assert metric("hotline_agi_sessions_active") == before + 1
    call.protocol.connectionLost()
    assert metric("hotline_agi_sessions_active") == before
