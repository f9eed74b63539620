"""Fakes for unit tests of call flows, shipped with the package so tests use the real API.

L{FakeAsterisk} plays Asterisk's side of one FastAGI call in memory: it sends the header,
parses each command exactly as res_agi does (L{parse_agi_args}), answers from a table or with
Asterisk's usual replies, and records what the flow sent::

    fake = FakeAsterisk(
        env={"callerid": "5551234", "calleridname": 'Eve "x"'},
        answers={"GET DATA": ["1", None], "STREAM FILE": HANGUP},
    )
    d = fake.run(hotline_flow)        # fires when the session is over
    assert fake.verbs[:2] == ["ANSWER", "STREAM FILE"]
    assert fake.variables["HOTLINE_NEXT"] == "operator"
    assert fake.agi_status == "SUCCESS"

Delivery is synchronous but never re-entrant (a queue drained in order), so a flow that only
talks AGI finishes inside C{run()}. Command timeouts run on C{fake.clock} (a C{task.Clock}).

Answers, per verb (C{"GET DATA"}, ...): one value used every time, a list consumed in order
(then the default), or a callable called with the command's arguments as separate strings
(C{lambda prompt, timeout_ms, max_digits: "1"} for GET DATA) that returns a value. Values:
  - C{GET DATA}: the digits, or None for a timeout with no digits;
  - C{STREAM FILE}, C{WAIT FOR DIGIT}, C{SAY NUMBER}, ...: the digit pressed, or None;
  - C{GET VARIABLE}: the value, or None for unset;
  - an int: C{200 result=<int>} (any verb, e.g. C{EXEC});
  - L{Reply}: a raw reply, sent as is; L{HANGUP}: the caller hangs up during the command;
    L{SILENCE}: no reply at all (to test command timeouts).
Without an answer the fake behaves like Asterisk with a patient caller: C{SET VARIABLE} stores
into L{FakeAsterisk.variables}, C{GET VARIABLE} reads them, C{GET DATA} times out, C{HANGUP}
hangs up, unknown commands get C{510}, a wrong number of words gets the C{520-} usage block,
and after a hangup channel commands get C{511}.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IReactorTime
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from ivr.agi import AGISession, FastAGIFactory, FastAGIProtocol
from ivr.agi.escaping import MAX_COMMAND_BYTES

__all__ = [
    "AGI_COMMANDS",
    "HANGUP",
    "SILENCE",
    "FakeAsterisk",
    "Reply",
    "failure_of",
    "parse_agi_args",
    "result_of",
    "separate_app_args",
]


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: As an answer: the caller hangs up during this command (reply C{result=-1}, then C{HANGUP}).
HANGUP = _Marker("HANGUP")
#: As an answer: Asterisk never replies to this command.
SILENCE = _Marker("SILENCE")


@dataclass(frozen=True)
class Reply:
    """A raw reply (one line, or several joined with newlines), sent as is."""

    text: str


AnswerValue: TypeAlias = "str | int | Reply | _Marker | None"
Answer: TypeAlias = "AnswerValue | Sequence[AnswerValue] | Callable[..., Any]"


def result_of(d: defer.Deferred[Any]) -> Any:
    """The result of a Deferred that has already fired; raises its failure's exception."""
    outcome: list[Any] = []
    d.addBoth(outcome.append)
    if not outcome:
        raise AssertionError(f"{d!r} has not fired")
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def failure_of(d: defer.Deferred[Any], *expected: type[BaseException]) -> Failure:
    """The failure of a Deferred that has already failed (with one of C{expected}, if given)."""
    outcome: list[Any] = []
    d.addBoth(outcome.append)
    if not outcome or not isinstance(outcome[0], Failure):
        raise AssertionError(f"{d!r} has not failed: {outcome!r}")
    if expected and not outcome[0].check(*expected):
        raise AssertionError(f"expected {expected}, got {outcome[0]!r}")
    return outcome[0]


# -- Asterisk's parsers, ported from C ------------------------------------------------------

_MAX_ARGS = 128


def parse_agi_args(line: str) -> list[str]:
    """
    Split one AGI command line into words exactly as res_agi.c C{parse_args()} does: space and
    tab separate, C{"} toggles quoting (and starts a word when it opens after whitespace),
    C{\\} makes the next character literal, at most 127 words. A line-by-line port of the C,
    which rewrites the line in place through a C{cur} pointer that never passes the reader.
    """
    line = line.split("\0", 1)[0]  # C strings end at NUL
    buf = [*line, "\0"]
    starts: list[int] = []
    cur = 0
    quoted = escaped = False
    whitespace = True
    for ch in line:
        normal = False
        if ch == '"':
            if escaped:
                normal = True
            else:
                quoted = not quoted
                if quoted and whitespace:
                    starts.append(cur)
                    whitespace = False
                escaped = False
        elif ch in " \t":
            if not quoted and not escaped:
                whitespace = True
                buf[cur] = "\0"
                cur += 1
            else:
                normal = True
        elif ch == "\\":
            if escaped:
                normal = True
            else:
                escaped = True
        else:
            normal = True
        if normal:
            if whitespace:
                if len(starts) >= _MAX_ARGS - 1:
                    continue  # "Too many arguments, truncating" (escaped stays set, as in C)
                starts.append(cur)
                whitespace = False
            buf[cur] = ch
            cur += 1
            escaped = False
    buf[cur] = "\0"
    text = "".join(buf)
    return [text[start : text.index("\0", start)] for start in starts]


def separate_app_args(data: str, delim: str = ",") -> list[str]:
    """
    Split an application's argument string as Asterisk's C{AST_STANDARD_APP_ARGS} does: a
    port of C{__ast_app_separate_args()} with C{remove_chars} set. C{delim} separates unless
    inside parentheses, brackets or quotes; quotes are removed; a backslash is removed and the
    character after it taken literally.
    """
    buf = list(data)
    starts: list[int] = []
    scan = 0
    paren = bracket = 0
    quote = False
    was_delim = -1
    while scan < len(buf) and len(starts) < _MAX_ARGS - 1:
        starts.append(scan)
        while scan < len(buf):
            ch = buf[scan]
            if ch == "(":
                paren += 1
            elif ch == ")":
                if paren:
                    paren -= 1
            elif ch == "[":
                bracket += 1
            elif ch == "]":
                if bracket:
                    bracket -= 1
            elif ch == '"' and delim != '"':
                quote = not quote
                del buf[scan]
                scan -= 1
            elif ch == "\\":
                del buf[scan]  # the loop's scan++ then steps over the literal character
            elif ch == delim and not paren and not quote and not bracket:
                was_delim = scan
                buf[scan] = "\0"
                scan += 1
                break
            scan += 1
    if scan < len(buf) or (scan > 0 and scan - 1 == was_delim):
        starts.append(scan)
    text = "".join(buf) + "\0"
    return [text[start : text.index("\0", start)] for start in starts]


# -- the command table (res_agi.c commands[]) -------------------------------------------------

#: Every AGI command res_agi knows, as upper-case verbs.
AGI_COMMANDS = (
    "ANSWER", "ASYNCAGI BREAK", "CHANNEL STATUS", "CONTROL STREAM FILE", "DATABASE DEL",
    "DATABASE DELTREE", "DATABASE GET", "DATABASE PUT", "EXEC", "GET DATA",
    "GET FULL VARIABLE", "GET OPTION", "GET VARIABLE", "HANGUP", "NOOP", "RECEIVE CHAR",
    "RECEIVE TEXT", "RECORD FILE", "SAY ALPHA", "SAY DATE", "SAY DATETIME", "SAY DIGITS",
    "SAY NUMBER", "SAY PHONETIC", "SAY TIME", "SEND IMAGE", "SEND TEXT", "SET AUTOHANGUP",
    "SET CALLERID", "SET CONTEXT", "SET EXTENSION", "SET MUSIC", "SET PRIORITY",
    "SET VARIABLE", "SPEECH ACTIVATE GRAMMAR", "SPEECH CREATE", "SPEECH DEACTIVATE GRAMMAR",
    "SPEECH DESTROY", "SPEECH LOAD GRAMMAR", "SPEECH RECOGNIZE", "SPEECH SET",
    "SPEECH UNLOAD GRAMMAR", "STREAM FILE", "TDD MODE", "VERBOSE", "WAIT FOR DIGIT",
)  # fmt: skip

# Commands res_agi still runs on a hung-up channel (the "dead" column of commands[]).
_DEAD_SAFE = frozenset({
    "ASYNCAGI BREAK", "DATABASE DEL", "DATABASE DELTREE", "DATABASE GET", "DATABASE PUT",
    "EXEC", "GET FULL VARIABLE", "GET VARIABLE", "NOOP", "SET VARIABLE", "SPEECH DESTROY",
    "SPEECH UNLOAD GRAMMAR", "VERBOSE",
})  # fmt: skip

# Word counts (argc, verb included) outside which the handler answers with its usage text.
_ARGC = {
    "GET DATA": (3, 5),
    "STREAM FILE": (4, 5),
    "WAIT FOR DIGIT": (4, 4),
    "SAY NUMBER": (4, 5),
    "SAY DIGITS": (4, 4),
    "SET VARIABLE": (4, 4),
    "GET VARIABLE": (3, 3),
    "EXEC": (2, _MAX_ARGS),
    "VERBOSE": (2, 3),
    "SET MUSIC": (3, 4),
    "HANGUP": (1, 2),
}

# Replies whose result is a DTMF digit's character code.
_DIGIT_VERBS = frozenset({
    "STREAM FILE", "CONTROL STREAM FILE", "WAIT FOR DIGIT", "SAY NUMBER", "SAY DIGITS",
    "SAY ALPHA", "GET OPTION",
})  # fmt: skip

_VERBS_BY_LENGTH = sorted((tuple(v.split()) for v in AGI_COMMANDS), key=len, reverse=True)

_HEADER_ORDER = (
    "network", "network_script", "request", "channel", "language", "type", "uniqueid",
    "version", "callerid", "calleridname", "callingpres", "callingani2", "callington",
    "callingtns", "dnid", "rdnis", "context", "extension", "priority", "enhanced",
    "accountcode", "threadid",
)  # fmt: skip

_DEFAULT = _Marker("DEFAULT")


def _verb_of(words: Sequence[str]) -> str | None:
    upper = tuple(w.upper() for w in words[:3])
    for verb in _VERBS_BY_LENGTH:
        if upper[: len(verb)] == verb:
            return " ".join(verb)
    return None


class _Loopback(StringTransport):
    """The server's transport: writes and closes go to the fake's queue."""

    def __init__(self, fake: FakeAsterisk) -> None:
        super().__init__(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 4573),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
        )
        self._fake = fake

    def write(self, data: bytes) -> None:
        super().write(data)
        self._fake._post("to_asterisk", data)

    def loseConnection(self) -> None:
        if not self.disconnecting:
            super().loseConnection()
            self._fake._post("server_closed", b"")

    def abortConnection(self) -> None:
        self.loseConnection()


class FakeAsterisk:
    """
    Asterisk's side of one FastAGI call, in memory (see the module docstring).

    @ivar commands: every command received, as the words Asterisk parsed.
    @ivar lines: the raw command lines received (what the escaping produced).
    @ivar variables: channel variables (pre-set via C{variables=}, written by SET VARIABLE).
    @ivar hung_up: the caller has hung up (by L{hangup}, a L{HANGUP} answer or C{HANGUP}).
    @ivar answered: C{ANSWER} was received while the channel was up.
    @ivar agi_status: what Asterisk would set once the session ended: C{SUCCESS},
        C{FAILURE} or C{HANGUP}; None while the connection is open.
    @ivar session: the L{AGISession} the flow got (after L{run}).
    @ivar protocol: the server-side protocol (after L{run} or L{connect}).
    @ivar max_commands: a flow sending more commands than this is taken to be looping (the
        fake answers instantly, so a polling loop never lets a test's clock move): Asterisk
        disconnects and L{run}'s Deferred fails with C{AssertionError}.
    """

    def __init__(
        self,
        script: str = "hotline",
        env: Mapping[str, str] | None = None,
        args: Iterable[str] = (),
        answers: Mapping[str, Answer] | None = None,
        clock: IReactorTime | None = None,
        variables: Mapping[str, str] | None = None,
        max_commands: int = 5000,
    ) -> None:
        self.script = script
        self.max_commands = max_commands
        self.clock = clock if clock is not None else task.Clock()
        full_env = {
            "network": "yes",
            "network_script": script,
            "request": f"agi://127.0.0.1:4573/{script}",
            "channel": "PJSIP/caller-00000001",
            "language": "en",
            "type": "PJSIP",
            "uniqueid": "1700000000.1",
            "version": "22.10.1",
            "callerid": "5551234",
            "calleridname": "Test Caller",
            "callingpres": "0",
            "callingani2": "0",
            "callington": "0",
            "callingtns": "0",
            "dnid": "unknown",
            "rdnis": "unknown",
            "context": "hotline",
            "extension": "s",
            "priority": "1",
            "enhanced": "0.0",
            "accountcode": "",
            "threadid": "139900000000000",
        }
        full_env.update(env or {})
        self.env = full_env
        self.args = list(args)
        self._answers: dict[str, Any] = {}
        for verb, answer in (answers or {}).items():
            key = verb.upper()
            if key not in AGI_COMMANDS:
                raise ValueError(f"unknown AGI command in answers: {verb!r}")
            is_list = isinstance(answer, Sequence) and not isinstance(answer, str | Reply)
            self._answers[key] = deque(answer) if is_list else answer
        self.variables: dict[str, str] = dict(variables or {})
        self.commands: list[tuple[str, ...]] = []
        self.lines: list[bytes] = []
        self.hung_up = False
        self.answered = False
        self.agi_status: str | None = None
        self.session: AGISession | None = None
        self.protocol: FastAGIProtocol | None = None
        self.flow_failure: Failure | None = None
        self._queue: deque[tuple[str, bytes]] = deque()
        self._pumping = False
        self._inbox = b""
        self._closed = False
        self._flow_started = False
        self._flow_ended = False
        self._done: defer.Deferred[None] | None = None
        self._runaway = False

    # -- what a test reads --------------------------------------------------------------

    @property
    def header(self) -> bytes:
        """The header block as Asterisk sends it: raw values, Asterisk's order, blank line."""
        keys = [k for k in _HEADER_ORDER if k in self.env]
        keys += [k for k in self.env if k not in _HEADER_ORDER]
        lines = [f"agi_{k}: {self.env[k]}\n" for k in keys]
        lines += [f"agi_arg_{i}: {a}\n" for i, a in enumerate(self.args, 1)]
        return ("".join(lines) + "\n").encode("utf-8")

    @property
    def verbs(self) -> list[str]:
        """The verb of each command received (C{"GET DATA"}; the first word if unknown)."""
        return [_verb_of(words) or (words[0].upper() if words else "") for words in self.commands]

    def calls(self, verb: str) -> list[tuple[str, ...]]:
        """The arguments (after the command's own words) of each command with this verb:
        C{fake.calls("STREAM FILE")} -> C{[("welcome", ""), ...]}."""
        verb = verb.upper()
        size = len(verb.split())
        return [words[size:] for words in self.commands if _verb_of(words) == verb]

    @property
    def exec_calls(self) -> list[tuple[str, list[str]]]:
        """Each C{EXEC}: the application and its arguments as the application splits them."""
        return [
            (words[1], separate_app_args(words[2]) if len(words) > 2 else [])
            for words in self.commands
            if len(words) > 1 and words[0].upper() == "EXEC"
        ]

    @property
    def closed(self) -> bool:
        return self._closed

    # -- driving the call ---------------------------------------------------------------

    def run(self, flow: Callable[[AGISession], Any], **factory_kwargs: Any) -> defer.Deferred[None]:
        """
        Serve this call with C{flow} in a real L{FastAGIFactory}.

        The Deferred fires once the connection is closed and the flow has ended; it fails with
        the flow's exception if the flow raised anything but a hangup.
        """

        def started(session: AGISession) -> Any:
            self.session = session
            self._flow_started = True
            return flow(session)

        factory_kwargs.setdefault("clock", self.clock)
        factory = FastAGIFactory(
            {self.script: started}, on_session_end=self._session_ended, **factory_kwargs
        )
        return self.connect(factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000)))

    def connect(self, protocol: FastAGIProtocol, send_header: bool = True) -> defer.Deferred[None]:
        """Connect to a protocol; fires when it is closed (and its flow, if any, ended)."""
        self.protocol = protocol
        self._done = defer.Deferred()
        protocol.makeConnection(_Loopback(self))
        if send_header:
            self.send_raw(self.header)
        return self._done

    def send_raw(self, data: bytes) -> None:
        """Send bytes to the server as Asterisk would (garbage, partial lines, anything)."""
        self._post("to_server", data)

    def hangup(self) -> None:
        """The caller hangs up now: Asterisk sends C{HANGUP} (AGISIGHUP on)."""
        if not self.hung_up:
            self.hung_up = True
            self.send_raw(b"HANGUP\n")

    def disconnect(self) -> None:
        """Asterisk closes the FastAGI socket (a crash, a restart, AGIEXITONHANGUP)."""
        self._post("asterisk_closed", b"")

    # -- the in-memory wire -------------------------------------------------------------

    def _post(self, kind: str, data: bytes) -> None:
        self._queue.append((kind, data))
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._queue:
                kind, data = self._queue.popleft()
                if self._closed:
                    continue
                if kind == "to_server":
                    assert self.protocol is not None
                    self.protocol.dataReceived(data)
                elif kind == "to_asterisk":
                    self._received(data)
                else:
                    self._connection_closed(by_server=kind == "server_closed")
        finally:
            self._pumping = False

    def _connection_closed(self, by_server: bool) -> None:
        self._closed = True
        if self.agi_status is None:
            self.agi_status = "HANGUP" if self.hung_up else "SUCCESS"
        reason = ConnectionDone() if by_server else ConnectionLost()
        assert self.protocol is not None
        self.protocol.connectionLost(Failure(reason))
        self._check_done()

    def _session_ended(self, session: AGISession, failure: Failure | None) -> None:
        self._flow_ended = True
        self.flow_failure = failure
        self._check_done()

    def _check_done(self) -> None:
        done = self._done
        if done is None or done.called or not self._closed:
            return
        if self._runaway:
            done.errback(
                AssertionError(f"the flow sent over {self.max_commands} commands: a loop?")
            )
        elif self._flow_started and not self._flow_ended:
            return
        elif self.flow_failure is not None:
            done.errback(self.flow_failure)
        else:
            done.callback(None)

    def _received(self, data: bytes) -> None:
        # res_agi reads commands with fgets() into 2048 bytes: a longer line is cut, and the
        # rest is read as the next command.
        inbox = self._inbox + data
        while inbox:
            newline = inbox.find(b"\n", 0, MAX_COMMAND_BYTES)
            if newline >= 0:
                raw, inbox = inbox[:newline], inbox[newline + 1 :]
            elif len(inbox) >= MAX_COMMAND_BYTES:
                raw, inbox = inbox[:MAX_COMMAND_BYTES], inbox[MAX_COMMAND_BYTES:]
            else:
                break
            if self.agi_status == "FAILURE":
                break
            self._command(raw)
        self._inbox = inbox

    def _command(self, raw: bytes) -> None:
        if raw[:7].lower() == b"failure":
            self.agi_status = "FAILURE"  # res_agi stops reading and ends AGI here
            return
        if len(self.lines) >= self.max_commands:
            self._runaway = True
            self.disconnect()
            return
        self.lines.append(raw)
        words = tuple(parse_agi_args(raw.decode("utf-8", "surrogateescape")))
        self.commands.append(words)
        verb = _verb_of(words)
        reply, then_hangup = self._reply(verb, words)
        if reply is not None:
            self.send_raw(reply.encode("utf-8", "surrogateescape") + b"\n")
        if then_hangup:
            self.hung_up = True
            self.send_raw(b"HANGUP\n")

    def _reply(self, verb: str | None, words: tuple[str, ...]) -> tuple[str | None, bool]:
        """The reply line(s) to one command, and whether the caller hangs up after it."""
        if verb is None:
            return "510 Invalid or unknown command", False
        if self.hung_up and verb not in _DEAD_SAFE:
            return "511 Command Not Permitted on a dead channel or intercept routine", False
        low, high = _ARGC.get(verb, (1, _MAX_ARGS))
        if not low <= len(words) <= high:
            return (
                "520-Invalid command syntax.  Proper usage follows:\n"
                f"Usage: {verb} ...\n"
                "520 End of proper usage."
            ), False
        args = words[len(verb.split()) :]
        answer = self._next_answer(verb)
        if callable(answer) and not isinstance(answer, _Marker | Reply):
            answer = answer(*args)
        if answer is SILENCE:
            return None, False
        if answer is HANGUP:
            endpos = " endpos=0" if verb == "STREAM FILE" else ""
            return f"200 result=-1{endpos}", True
        if isinstance(answer, Reply):
            return answer.text, False
        if answer is _DEFAULT:
            return self._default_reply(verb, args)
        return self._shorthand_reply(verb, answer), False

    def _next_answer(self, verb: str) -> Any:
        answer = self._answers.get(verb, _DEFAULT)
        if isinstance(answer, deque):
            return answer.popleft() if answer else _DEFAULT
        return answer

    def _default_reply(self, verb: str, args: tuple[str, ...]) -> tuple[str, bool]:
        if verb == "ANSWER":
            self.answered = True
            return "200 result=0", False
        if verb == "HANGUP":
            return "200 result=1", True
        if verb == "SET VARIABLE":
            self.variables[args[0]] = args[1]
            return "200 result=1", False
        if verb == "GET VARIABLE":
            value = self.variables.get(args[0])
            return ("200 result=0" if value is None else f"200 result=1 ({value})"), False
        if verb == "GET DATA":
            return "200 result= (timeout)", False
        if verb == "VERBOSE":
            return "200 result=1", False
        if verb == "STREAM FILE":
            return "200 result=0 endpos=8000", False
        return "200 result=0", False

    @staticmethod
    def _shorthand_reply(verb: str, answer: Any) -> str:
        if isinstance(answer, int):
            return f"200 result={answer}"
        if verb == "GET DATA":
            return "200 result= (timeout)" if answer is None else f"200 result={answer}"
        if verb == "GET VARIABLE":
            return "200 result=0" if answer is None else f"200 result=1 ({answer})"
        if verb in _DIGIT_VERBS:
            code = 0 if answer is None else ord(answer)
            return f"200 result={code}" + (" endpos=8000" if "STREAM" in verb else "")
        raise TypeError(f"no shorthand for {verb} answer {answer!r}: use an int or Reply(...)")


def on_asyncio(test: Callable[..., Any]) -> Callable[..., defer.Deferred[Any]]:
    """Run an async test body as an asyncio Task on the reactor's loop (redis.asyncio must
    run as asyncio Tasks, see ivr/aio.py); pytest-twisted waits for the Deferred."""

    from ivr.aio import deferred

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        return deferred(test(*args, **kwargs))

    return run


def hotline_call(
    cfg: Any, router: Any, answers: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> tuple[FakeAsterisk, Any, Any]:
    """One call through the ``hotline`` flow against a fake Asterisk, with in-memory work
    orders, a task.Clock (music on hold advances it 0.5 s a poll) and ``router`` (e.g.
    routing.live_fakes.FakeRouter); returns the fake, the work orders and the flow."""
    from ivr.flows.hotline import HotlineFlow
    from workorders.testing import InMemoryWorkOrders

    clock = task.Clock()
    orders = InMemoryWorkOrders()
    flow = HotlineFlow(
        config=lambda: cfg, workorders=orders, router=router, clock=clock,
        sound=lambda name: f"/sounds/{name}",
    )

    def music_on_hold(_timeout: Any) -> None:
        clock.advance(0.5)
        return None

    fake = FakeAsterisk(env=dict(env or {"uniqueid": "1700000000.7"}),
                        answers={"WAIT FOR DIGIT": music_on_hold, **answers}, clock=clock)
    result_of(fake.run(flow))
    return fake, orders, flow
