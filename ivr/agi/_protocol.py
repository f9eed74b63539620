"""The FastAGI wire protocol: one L{FastAGIProtocol} per call, bytes in, bytes out.

What Asterisk sends (res_agi.c):
  - a header block: C{agi_name: value} lines (values raw: the caller ID name is whatever the
    caller's side put there), then C{agi_arg_1..N}, then an empty line;
  - one reply per command: C{200 result=N [(data)] [endpos=N]}, C{510 ...}, C{511 ...},
    C{520 ...}, or a C{520-...} block whose last line starts with C{520 };
  - with AGISIGHUP (the default) a bare C{HANGUP} line when the channel hangs up, between
    replies or while a command runs: an event, never a reply.
What we send: one command line at a time (built by L{ivr.agi.escaping.format_command}), and
C{FAILURE} before closing when the session failed, which makes Asterisk set
C{AGISTATUS=FAILURE} so the dialplan can fall back; a plain close gives C{SUCCESS}.
"""

from __future__ import annotations

import enum
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, cast

from twisted.internet import defer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from ivr.admission import Admission, RefusalLog
from ivr.agi import metrics
from ivr.agi._errors import (
    AGICommandError,
    AGIConnectionLost,
    AGIProtocolError,
    AGITimeout,
    ChannelHungUp,
)
from ivr.timers import Clock, DelayedCall

log = Logger()

#: Pass as a command timeout for commands that may legitimately run for the whole call
#: (C{EXEC Dial}, C{EXEC AudioSocket}); the call still ends when the connection does.
NO_TIMEOUT = math.inf

_FAILURE_LINE = b"FAILURE\n"


CALLER_CONTROLLED_HEADERS = frozenset({"callerid", "calleridname", "dnid", "rdnis"})
"""Headers whose values the caller (or a far-end SIP peer) controls, sent raw by Asterisk."""


# Twisted declares the transport as a zope Interface, which mypy cannot read as a type; this
# says what the protocol uses of it (the reactor's time: ivr.timers).


class _Wire(typing.Protocol):
    """What the protocol uses of its transport (Twisted's C{ITransport})."""

    def write(self, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...

    def abortConnection(self) -> None: ...

    def getPeer(self) -> object: ...


@dataclass(frozen=True)
class AGILimits:
    """Bounds on what one peer may make us hold or wait for.

    C{header_timeout} runs from the connection to the end of the header, however the bytes
    trickle in (a peer sending a byte every few seconds is cut off all the same);
    C{max_connections} caps the server's open connections (L{ivr.admission.Admission}).
    What we write is bounded by the protocol itself: one command line in flight, never more.
    """

    max_line: int = 8192
    max_header_lines: int = 256
    max_header_bytes: int = 32768
    max_usage_lines: int = 200
    header_timeout: float = 10.0
    command_timeout: float = 60.0
    max_connections: int = 1024


class AGIReply(NamedTuple):
    """One reply from Asterisk.

    C{result} is the integer after C{result=} (0 when that text is not an integer, such as the
    digit string C{*12} of C{GET DATA}; C{result_text} always has the raw text). C{data} is the
    text in parentheses (C{timeout}, a variable's value), or any other trailing text. C{text}
    is everything after the code (for 510/511/520 the message; a 520 block's lines joined).
    """

    code: int
    result: int
    data: str | None
    endpos: int | None
    result_text: str = ""
    text: str = ""


def parse_reply(line: bytes) -> AGIReply:
    """
    Parse one reply line (without its newline). A C{520-} block is assembled by the protocol.

    @raise ValueError: not a reply line.
    """
    head = line[:4]
    if head == b"200 ":
        text = line[4:].decode("utf-8", "replace")
        if not text.startswith("result="):
            raise ValueError("200 reply without result=")
        value, _, tail = text[7:].partition(" ")
        data: str | None = None
        endpos: int | None = None
        if tail:
            # Data-only replies end with ")" even when the value itself holds ") endpos=",
            # so "ends with )" is tested before looking for endpos.
            if tail[0] == "(" and tail[-1] == ")":
                data = tail[1:-1]
            else:
                before, sep, position = tail.rpartition("endpos=")
                if sep and position.isdigit() and (not before or before[-1] == " "):
                    endpos = int(position)
                    before = before.rstrip(" ")
                    if before:
                        data = before[1:-1] if before[0] == "(" and before[-1] == ")" else before
                else:
                    data = tail
        try:
            result = int(value)
        except ValueError:
            result = 0
        return AGIReply(200, result, data, endpos, value, text)
    if head in (b"510 ", b"511 ", b"520 "):
        return AGIReply(int(line[:3]), 0, None, None, "", line[4:].decode("utf-8", "replace"))
    raise ValueError("not an AGI reply")


class _State(enum.Enum):
    READING_HEADERS = "reading headers"
    IDLE = "idle"
    WAITING = "command in flight"
    READING_USAGE = "reading 520 usage block"
    CLOSED = "closed"


_HEADERS = _State.READING_HEADERS
_IDLE = _State.IDLE
_WAITING = _State.WAITING
_USAGE = _State.READING_USAGE
_CLOSED = _State.CLOSED


class FastAGIProtocol(Protocol):
    """
    One FastAGI connection, that is one call.

    @ivar _state: where the conversation is:
        - C{READING_HEADERS}: collecting the C{agi_*} block; the header timer runs.
        - C{IDLE}: header read, no command in flight; only C{HANGUP} may arrive.
        - C{WAITING}: one command sent, waiting for its reply until C{_deadline};
          C{HANGUP} may arrive first.
        - C{READING_USAGE}: inside a C{520-} block, collecting lines up to C{520 ...}.
        - C{CLOSED}: we closed or the peer did; input is ignored, commands fail.
      The caller hanging up is not a state but the flag L{hung_up}: after C{HANGUP} Asterisk
      still runs commands allowed on a dead channel (C{SET VARIABLE}, C{VERBOSE}, C{EXEC}).

    @ivar env: the C{agi_*} headers without the prefix (C{arg_N} excluded).
    @ivar args: the values of C{agi_arg_1..N}.
    """

    def __init__(
        self,
        clock: Clock,
        on_ready: Callable[[FastAGIProtocol], object],
        limits: AGILimits = AGILimits(),  # frozen, so sharing the default is safe
        *,
        refusals: RefusalLog | None = None,
        admission: Admission | None = None,
    ) -> None:
        self._clock = clock
        # Without a server's (a protocol built alone, in tests): each refusal is logged.
        self._refusals = refusals or RefusalLog("agi", clock, every_s=0.0, burst=1 << 30)
        self._admission = admission
        self._on_ready = on_ready
        self.limits = limits
        self._max_line = limits.max_line
        self._state = _HEADERS
        self._buffer = b""
        self.env: dict[str, str] = {}
        self.args: list[str] = []
        self._header_lines = 0
        self._header_bytes = 0
        self._last_header = ""
        # The last header line ended in CR: Asterisk ends its lines with LF alone, so that CR
        # was the value's, and is kept if the value goes on over the next line.
        self._last_cr = False
        self._header_timer: DelayedCall | None = None
        # Command timeouts: a deadline per command, checked by one timer that is only
        # rescheduled when it fires early; cheaper than a callLater/cancel pair per command.
        self._timer: DelayedCall | None = None
        self._deadline: float | None = None
        self._pending: defer.Deferred[AGIReply] | None = None
        self._pending_line = b""
        self._usage: list[str] = []
        self.hung_up = False
        self._hangup_waiters: list[defer.Deferred[None]] = []
        self._closed_waiters: list[defer.Deferred[None]] = []
        self._closed_by_us = False
        self._connected = False

    # -- public surface for the session and the server ---------------------------------

    @property
    def uniqueid(self) -> str:
        return self.env.get("uniqueid", "?")

    @property
    def closed(self) -> bool:
        return self._state is _CLOSED

    @property
    def _wire(self) -> _Wire:
        return cast(_Wire, self.transport)

    def send_command(self, line: bytes, timeout: float) -> defer.Deferred[AGIReply]:
        """
        Send one formatted command line; the Deferred fires with its C{200} reply.

        Fails with L{ChannelHungUp} on C{511}, L{AGICommandError} on C{510}/C{520},
        L{AGITimeout} after C{timeout} seconds (the session is then closed),
        L{AGIConnectionLost} if the connection closes first.

        @raise RuntimeError: a command is already in flight (one per call: a flow must await
            each command before sending the next).
        """
        state = self._state
        if state is not _IDLE:
            if state is _CLOSED:
                return defer.fail(AGIConnectionLost("the FastAGI connection is closed"))
            if state is _HEADERS:
                raise RuntimeError("AGI command sent before the header was read")
            raise RuntimeError(
                f"AGI command {line!r} sent while {self._pending_line!r} is in flight"
            )
        d: defer.Deferred[AGIReply] = defer.Deferred(self._cancel_command)
        self._pending = d
        self._pending_line = line
        self._state = _WAITING
        if timeout == NO_TIMEOUT:
            self._deadline = None
        else:
            deadline = self._deadline = self._clock.seconds() + timeout
            timer = self._timer
            if timer is None:
                self._timer = self._clock.callLater(timeout, self._check_deadline)
            elif timer.getTime() > deadline:
                timer.reset(timeout)
        self._wire.write(line)
        metrics.COMMANDS.inc()
        return d

    def when_hung_up(self) -> defer.Deferred[None]:
        """A Deferred that fires once the caller hangs up or the connection is lost."""
        if self.hung_up:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._hangup_waiters.append(d)
        return d

    def when_closed(self) -> defer.Deferred[None]:
        """A Deferred that fires once the connection is closed (by either side)."""
        if self._state is _CLOSED and not self._connected:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._closed_waiters.append(d)
        return d

    def evict(self) -> None:
        """Drop the connection at once (the server is full and this peer never finished its
        header): no C{FAILURE}, nothing more is written."""
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        self._closed_by_us = True
        self._cancel_timers()
        self._wire.abortConnection()

    def close(self, failed: bool = False) -> None:
        """
        End the session. With C{failed}, first send C{FAILURE} so Asterisk sets
        C{AGISTATUS=FAILURE} and the dialplan falls back; otherwise Asterisk continues the
        dialplan with C{AGISTATUS=SUCCESS} (or C{HANGUP}).
        """
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        self._closed_by_us = True
        self._cancel_timers()
        if failed:
            self._wire.write(_FAILURE_LINE)
        self._wire.loseConnection()

    # -- Twisted protocol -------------------------------------------------------------

    def connectionMade(self) -> None:
        self._connected = True
        metrics.SESSIONS_ACTIVE.inc()
        self._header_timer = self._clock.callLater(
            self.limits.header_timeout, self._header_timed_out
        )

    def dataReceived(self, data: bytes) -> None:
        if self._buffer:
            data = self._buffer + data
        lines = data.split(b"\n")
        self._buffer = lines.pop()
        max_line = self._max_line
        start = self._read_header(lines) if self._state is _HEADERS else 0
        for line in lines[start:] if start else lines:
            state = self._state
            if state is _CLOSED:
                return
            if len(line) > max_line:
                self._protocol_error("line_too_long", f"line of {len(line)} bytes")
                return
            if line[-1:] == b"\r":
                line = line[:-1]
            if state is _WAITING:
                self._reply_line(line)
            elif state is _USAGE:
                self._usage_line(line)
            elif line == b"HANGUP":
                self._caller_hung_up()
            else:
                self._protocol_error("unexpected_line", f"unsolicited line {line[:80]!r}")
        if len(self._buffer) > max_line and self._state is not _CLOSED:
            self._protocol_error("line_too_long", f"unterminated line of {len(self._buffer)} bytes")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._state = _CLOSED
        self._cancel_timers()
        self._buffer = b""
        if self._connected:
            self._connected = False
            metrics.SESSIONS_ACTIVE.dec()
        if self._admission is not None:
            self._admission.release(self)
        if not self._closed_by_us:
            self._caller_hung_up()
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.errback(AGIConnectionLost("FastAGI connection lost during a command"))
        waiters, self._closed_waiters = self._closed_waiters, []
        for d in waiters:
            d.callback(None)

    # -- input by state ---------------------------------------------------------------

    def _read_header(self, lines: list[bytes]) -> int:
        """
        Consume header lines; return the index of the first line after the header (or of
        the end). One tight loop over the block, as the header is most of a call's input.
        """
        env = self.env
        args = self.args
        limits = self.limits
        max_line = self._max_line
        count = self._header_lines
        size = self._header_bytes
        for index, line in enumerate(lines):
            if len(line) > max_line:
                self._protocol_error("line_too_long", f"header line of {len(line)} bytes")
                return len(lines)
            cr = line[-1:] == b"\r"
            if cr:
                line = line[:-1]
            if not line:
                self._header_timer_cancel()
                self._state = _IDLE
                if self._admission is not None:
                    self._admission.proven(self)
                self._on_ready(self)
                return index + 1
            count += 1
            size += len(line) + 1
            if count > limits.max_header_lines or size > limits.max_header_bytes:
                self._protocol_error("header_too_large", f"header over {count} lines")
                return len(lines)
            key, sep, value = line.partition(b": ")
            if not sep:
                # An empty value may arrive without the space after the colon.
                key, sep, value = line.partition(b":")
            if not sep or key[:4] != b"agi_" or not key.isascii():
                if self._last_header in CALLER_CONTROLLED_HEADERS and not args:
                    # Asterisk sends caller-controlled values raw: a newline in a caller ID
                    # name splits it over lines. Keep it verbatim. (A continuation shaped
                    # like a header is still parsed as one, and then the real header is a
                    # duplicate: that call fails safe, to the dialplan's operator fallback.)
                    previous = self._last_header
                    newline = "\r\n" if self._last_cr else "\n"
                    env[previous] = env[previous] + newline + line.decode("utf-8", "replace")
                    self._last_cr = cr
                    continue
                self._protocol_error("bad_header", f"header line {line[:80]!r}")
                return len(lines)
            name = key[4:].decode("ascii")
            text = value.decode("utf-8", "replace")
            if name[:4] == "arg_":
                # Numbered in order and last: anything else means a value smuggled in by a
                # newline in a caller-controlled header.
                if name != f"arg_{len(args) + 1}":
                    self._protocol_error("bad_header", f"out-of-order header {name}")
                    return len(lines)
                args.append(text)
            elif args or name in env:
                self._protocol_error("bad_header", f"repeated or misplaced header {name}")
                return len(lines)
            else:
                env[name] = text
            self._last_header = name
            self._last_cr = cr
        self._header_lines = count
        self._header_bytes = size
        return len(lines)

    def _reply_line(self, line: bytes) -> None:
        if line == b"HANGUP":
            self._caller_hung_up()
            return
        if line[:4] == b"520-":
            self._state = _USAGE
            self._usage = [line[4:].decode("utf-8", "replace")]
            return
        try:
            reply = parse_reply(line)
        except ValueError:
            self._protocol_error("bad_reply", f"reply {line[:80]!r} to {self._pending_line!r}")
            return
        self._complete(reply)

    def _usage_line(self, line: bytes) -> None:
        usage = self._usage
        if line[:4] == b"520 ":
            usage.append(line[4:].decode("utf-8", "replace"))
            self._usage = []
            self._complete(AGIReply(520, 0, None, None, "", "\n".join(usage)))
        elif len(usage) >= self.limits.max_usage_lines:
            self._protocol_error("bad_reply", "520 usage block does not end")
        else:
            usage.append(line.decode("utf-8", "replace"))

    # -- transitions ------------------------------------------------------------------

    def _complete(self, reply: AGIReply) -> None:
        d, self._pending = self._pending, None
        self._state = _IDLE
        self._deadline = None
        assert d is not None
        code = reply.code
        if code == 200:
            d.callback(reply)
            return
        command = self._pending_line.decode("utf-8", "replace").rstrip("\n")
        if code == 511:
            self._caller_hung_up()
            d.errback(ChannelHungUp(f"{command}: {reply.text}"))
        else:
            d.errback(AGICommandError(f"{command}: {code} {reply.text}", code, reply.text))

    def _caller_hung_up(self) -> None:
        if self.hung_up:
            return
        self.hung_up = True
        waiters, self._hangup_waiters = self._hangup_waiters, []
        for d in waiters:
            d.callback(None)

    def _header_timed_out(self) -> None:
        self._header_timer = None
        self._protocol_error(
            "header_timeout", f"no complete header within {self.limits.header_timeout} s"
        )

    def _check_deadline(self) -> None:
        self._timer = None
        deadline = self._deadline
        if self._state is not _WAITING or deadline is None:
            return  # idle: the next command schedules the timer again
        remaining = deadline - self._clock.seconds()
        if remaining > 0:
            self._timer = self._clock.callLater(remaining, self._check_deadline)
        else:
            self._command_timed_out()

    def _command_timed_out(self) -> None:
        d, self._pending = self._pending, None
        line = self._pending_line
        metrics.COMMAND_TIMEOUTS.inc()
        log.warn(
            "AGI command {command!r} got no reply in time on call {uniqueid}; dropping the session",
            command=line,
            uniqueid=self.uniqueid,
        )
        self.close(failed=True)
        if d is not None:
            d.errback(AGITimeout(f"no reply to {line!r}"))

    def _cancel_command(self, d: defer.Deferred[AGIReply]) -> None:
        # A cancelled command's reply would still arrive and answer the next one: drop the
        # session rather than lose track.
        if d is self._pending:
            self._pending = None
            self.close(failed=True)
            d.errback(AGIConnectionLost(f"command {self._pending_line!r} cancelled"))

    def _protocol_error(self, reason: str, detail: str) -> None:
        metrics.PROTOCOL_ERROR_REASONS[reason].inc()
        self._refusals.refused(
            reason,
            self._wire.getPeer() if self.transport else None,
            f"FastAGI protocol error on call {self.uniqueid}: {detail}",
            uniqueid=self.uniqueid,
        )
        d, self._pending = self._pending, None
        self.close(failed=True)
        if d is not None:
            d.errback(AGIProtocolError(f"{reason}: {detail}"))

    def _header_timer_cancel(self) -> None:
        timer, self._header_timer = self._header_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _cancel_timers(self) -> None:
        self._header_timer_cancel()
        self._deadline = None
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
