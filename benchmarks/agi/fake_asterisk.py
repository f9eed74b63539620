"""The Asterisk side of one FastAGI session, as res_agi.c behaves: pure, no I/O.

`Channel` produces the header block Asterisk sends on connect and the reply to every command
line the AGI server sends, for one simulated caller whose behaviour (`Caller`) is drawn from a
seeded random generator: which digits they press, when they let a menu time out, and whether
they hang up mid-menu. The load generator (`loadgen`) only moves these bytes over sockets.

Replies follow res_agi.c: `200 result=0` for ANSWER, `200 result=0 endpos=N` for STREAM FILE,
`200 result=<digits>` or `200 result=<digits> (timeout)` for GET DATA, `200 result=1` for
SET VARIABLE, `510 Invalid or unknown command` for anything unknown. A caller who hangs up
makes the command in flight return `200 result=-1` (hang-up during a prompt) or lets it finish
normally; either way a bare `HANGUP` line follows, as with AGISIGHUP on, and from then on the
channel is dead: commands that need a live channel get `511 Command Not Permitted on a dead
channel or intercept routine`, the few res_agi allows on a dead channel (SET VARIABLE, ...)
still succeed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from benchmarks.agi.flow import MAIN_MENU

DEAD_ALLOWED = frozenset(
    {
        "SET VARIABLE",
        "GET VARIABLE",
        "GET FULL VARIABLE",
        "VERBOSE",
        "NOOP",
        "EXEC",
        "DATABASE GET",
        "DATABASE PUT",
        "DATABASE DEL",
        "DATABASE DELTREE",
        "ASYNCAGI BREAK",
    }
)
"""Commands res_agi.c marks as allowed on a dead channel."""

TWO_WORD = frozenset(
    {
        "STREAM",
        "GET",
        "SET",
        "WAIT",
        "SAY",
        "CHANNEL",
        "CONTROL",
        "DATABASE",
        "RECEIVE",
        "SEND",
        "SPEECH",
        "TDD",
        "ASYNCAGI",
        "GOSUB",
        "RECORD",
    }
)
"""First words of multi-word AGI commands (`STREAM FILE`, `GET DATA`, `GET FULL VARIABLE`...)."""

REPLY_511 = b"511 Command Not Permitted on a dead channel or intercept routine\n"
REPLY_510 = b"510 Invalid or unknown command\n"
HANGUP_LINE = b"HANGUP\n"

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_ESCAPE = re.compile(r"\\(.)")


def split_args(line: str) -> list[str]:
    """Split a command line into arguments: whitespace separates, `"..."` quotes, `\\` escapes.

    Close enough to res_agi's parser for the commands servers send; the benchmark needs the
    command name and the GET DATA arguments, not every corner of quote toggling.
    """
    if '"' not in line and "\\" not in line:
        return line.split()
    args = []
    for quoted, bare in _TOKEN.findall(line):
        token = quoted if bare == "" else bare
        args.append(_ESCAPE.sub(r"\1", token) if "\\" in token else token)
    return args


def command_name(args: list[str]) -> str:
    """The AGI command an argument list names, upper-cased (`GET DATA`, `GET FULL VARIABLE`)."""
    if not args:
        return ""
    first = args[0].upper()
    if first not in TWO_WORD or len(args) < 2:
        return first
    second = args[1].upper()
    if first == "GET" and second == "FULL" and len(args) > 2:
        return "GET FULL VARIABLE"
    return f"{first} {second}"


@dataclass(slots=True)
class Caller:
    """What one simulated caller does, drawn up front except for the digits.

    `hangup_at`: index (0-based) of the command during or after which the caller hangs up,
    None if they stay to the end. `hangup_in_flight`: the command in flight fails with
    `result=-1` (the caller hung up while a prompt played) rather than completing first.
    """

    hangup_at: int | None
    hangup_in_flight: bool

    @classmethod
    def draw(cls, rng: random.Random, hangup_share: float) -> Caller:
        """A caller who hangs up mid-menu with probability `hangup_share`."""
        if rng.random() >= hangup_share:
            return cls(None, False)
        return cls(rng.randrange(1, 9), rng.random() < 0.5)


MAIN_MENU_PRESSES = (
    ("1", 0.30),
    ("2", 0.20),
    ("3", 0.25),
    ("4", 0.10),
    ("0", 0.05),
    ("9", 0.05),
    ("", 0.05),
)
"""Main-menu behaviour: a digit, an invalid digit (9), or nothing (timeout)."""


class Channel:
    """One call's channel as the FastAGI server sees it through res_agi.

    States: `alive` (replies as a live channel) -> `dead` (the caller hung up: `HANGUP` was sent
    once, live-only commands get 511). `commands` counts every command line received; `media`
    tells whether the last one plays a prompt or waits for keys (STREAM FILE, GET DATA) on a
    live channel, i.e. whether a real Asterisk would take seconds before replying.
    """

    __slots__ = ("_caller", "_rng", "alive", "commands", "hung_up", "media")

    def __init__(self, caller: Caller, rng: random.Random) -> None:
        self._caller = caller
        self._rng = rng
        self.alive = True
        self.hung_up = False
        self.commands = 0
        self.media = False

    @staticmethod
    def header(
        port: int, uniqueid: str, callerid: str, caller_name: str, script: str, arg: str = "bench"
    ) -> bytes:
        """The block Asterisk sends on connect: `agi_*` lines, `agi_arg_1`, a blank line."""
        lines = (
            "agi_network: yes",
            f"agi_network_script: {script}",
            f"agi_request: agi://127.0.0.1:{port}/{script}",
            f"agi_channel: PJSIP/trunk-{uniqueid.replace('.', '')[-8:]}",
            "agi_language: en",
            "agi_type: PJSIP",
            f"agi_uniqueid: {uniqueid}",
            "agi_version: 22.10.1",
            f"agi_callerid: {callerid}",
            f"agi_calleridname: {caller_name}",
            "agi_callingpres: 0",
            "agi_callingani2: 0",
            "agi_callington: 0",
            "agi_callingtns: 0",
            "agi_dnid: 1588",
            "agi_rdnis: unknown",
            "agi_context: hotline",
            "agi_extension: s",
            "agi_priority: 2",
            "agi_enhanced: 0.0",
            "agi_accountcode: ",
            "agi_threadid: 139872311162560",
            f"agi_arg_1: {arg}",
        )
        return ("\n".join(lines) + "\n\n").encode()

    def reply(self, line: str) -> bytes:
        """The bytes Asterisk writes back for one command line (possibly two lines)."""
        index = self.commands
        self.commands += 1
        args = split_args(line)
        name = command_name(args)
        self.media = self.alive and name in ("STREAM FILE", "GET DATA")
        if not self.alive:
            return b"200 result=1\n" if name in DEAD_ALLOWED else REPLY_511
        hangup_now = index == self._caller.hangup_at
        if hangup_now and self._caller.hangup_in_flight and name in ("STREAM FILE", "GET DATA"):
            self.alive = False
            self.hung_up = True
            return (
                b"200 result=-1 endpos=0\n" + HANGUP_LINE
                if name == "STREAM FILE"
                else b"200 result=-1\n" + HANGUP_LINE
            )
        answer = self._live_reply(name, args)
        if hangup_now:
            self.alive = False
            self.hung_up = True
            return answer + HANGUP_LINE
        return answer

    def _live_reply(self, name: str, args: list[str]) -> bytes:
        if name == "SET VARIABLE":
            return b"200 result=1\n"
        if name == "STREAM FILE":
            return b"200 result=0 endpos=%d\n" % self._rng.randrange(8000, 48000)
        if name == "GET DATA":
            digits = self._press(args[2] if len(args) > 2 else "")
            return b"200 result=%s\n" % digits if digits else b"200 result= (timeout)\n"
        if name == "ANSWER":
            return b"200 result=0\n"
        if name == "HANGUP":
            self.alive = False
            return b"200 result=1\n" + HANGUP_LINE
        if name in ("EXEC", "NOOP", "VERBOSE", "GET VARIABLE"):
            return b"200 result=1\n" if name == "VERBOSE" else b"200 result=0\n"
        return REPLY_510

    def _press(self, prompt: str) -> bytes:
        """Digits for a GET DATA: the caller hears the prompt and answers the menu it offers."""
        draw = self._rng.random()
        if prompt == MAIN_MENU:
            return self._main_menu(draw)
        if draw < 0.10:
            return b""
        if draw < 0.15:
            return b"7"
        return b"%d" % (1 + int(draw * 1000) % 3)

    def _main_menu(self, draw: float) -> bytes:
        for digits, share in MAIN_MENU_PRESSES:
            draw -= share
            if draw < 0:
                return digits.encode()
        return b""
