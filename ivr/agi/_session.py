"""The command API a call flow uses: one L{AGISession} per call.

Methods return Deferreds, so a flow written as C{async def flow(session)} simply awaits them.
Every word goes through L{ivr.agi.escaping.format_command}; numbers are formatted here.
"""

from __future__ import annotations

from twisted.internet import defer

from ivr.agi._errors import AGICommandError, ChannelHungUp
from ivr.agi._protocol import NO_TIMEOUT, AGIReply, FastAGIProtocol
from ivr.agi.escaping import app_arguments, check_variable_name, format_command


def _digit(reply: AGIReply) -> str | None:
    """A DTMF digit from C{result=<ASCII code>}, None for C{result=0}."""
    result = reply.result
    if result > 0:
        return chr(result)
    if result == 0:
        return None
    raise ChannelHungUp(f"result={reply.result_text}")


def _ok(reply: AGIReply) -> None:
    if reply.result < 0:
        raise ChannelHungUp(f"result={reply.result_text}")


class AGISession:
    """
    The call as a flow sees it.

    @ivar env: the C{agi_*} headers without the prefix (C{uniqueid}, C{callerid},
        C{calleridname}, C{network_script}, ...); values are raw, caller-controlled text.
    @ivar args: C{agi_arg_1..N}.
    @ivar script: the script name of C{agi://host/<script>} (any C{?query} removed).
    @ivar default_timeout: seconds a command may take when the caller gives no timeout.
    """

    def __init__(self, protocol: FastAGIProtocol, default_timeout: float | None = None) -> None:
        self._protocol = protocol
        self.env = protocol.env
        self.args = protocol.args
        self.script = self.env.get("network_script", "").partition("?")[0]
        self.default_timeout = (
            protocol.limits.command_timeout if default_timeout is None else default_timeout
        )

    def __repr__(self) -> str:
        return f"<AGISession {self.script} call {self.uniqueid}>"

    @property
    def uniqueid(self) -> str:
        """The Asterisk channel's unique id, the call's key in logs and work orders."""
        return self.env.get("uniqueid", "?")

    @property
    def hung_up(self) -> bool:
        """
        True once the caller hung up (C{HANGUP}, C{511}) or the connection was lost.

        Asterisk answers the interrupted command (C{result=-1}, raised as L{ChannelHungUp})
        before it sends C{HANGUP}, so this flag can lag that exception by one line.
        """
        return self._protocol.hung_up

    def when_hung_up(self) -> defer.Deferred[None]:
        """Fires when the caller hangs up or the connection is lost (at once if already)."""
        return self._protocol.when_hung_up()

    def command(
        self, verb: str, *args: str, timeout: float | None = None
    ) -> defer.Deferred[AGIReply]:
        """
        Send one command, every word quoted and escaped, and return its C{200} reply.

        C{verb} is the command name (C{"GET DATA"}: letters and spaces only); C{args} are
        its arguments, any text.

        C{timeout} is in seconds (default L{default_timeout}; L{NO_TIMEOUT} for none). The
        generic form does not interpret C{result}; the named methods below do.
        """
        line = format_command(verb, args)
        return self._protocol.send_command(
            line, self.default_timeout if timeout is None else timeout
        )

    def _channel_command(
        self, verb: str, *args: str, timeout: float | None = None
    ) -> defer.Deferred[AGIReply]:
        # Commands that need a live channel fail at once after HANGUP, saving a round trip
        # that would only bring 511.
        if self._protocol.hung_up:
            return defer.fail(ChannelHungUp(f"{verb}: the caller has hung up"))
        return self.command(verb, *args, timeout=timeout)

    def answer(self) -> defer.Deferred[None]:
        """Answer the channel."""
        return self._channel_command("ANSWER").addCallback(_ok)

    def hangup(self) -> defer.Deferred[None]:
        """Hang up the caller; the flow may still set variables afterwards."""
        return self._channel_command("HANGUP").addCallback(lambda _reply: None)

    def stream_file(self, name: str, escape_digits: str = "") -> defer.Deferred[str | None]:
        """Play a sound file (no extension); the digit that interrupted it, or None."""
        return self._channel_command("STREAM FILE", name, escape_digits).addCallback(_digit)

    def get_data(
        self, prompt: str, timeout_ms: int, max_digits: int, *, timeout: float | None = None
    ) -> defer.Deferred[str | None]:
        """
        Play C{prompt} and collect up to C{max_digits} DTMF digits (C{#} ends early).

        Returns the digits, or None when the caller entered nothing before the timeout.
        C{timeout_ms} is Asterisk's wait after the prompt and between digits.
        """
        if timeout is None:
            timeout = self.default_timeout + (max_digits + 1) * max(timeout_ms, 0) / 1000
        d = self._channel_command(
            "GET DATA", prompt, str(int(timeout_ms)), str(int(max_digits)), timeout=timeout
        )
        return d.addCallback(_get_data_digits)

    def wait_for_digit(self, timeout_ms: int) -> defer.Deferred[str | None]:
        """Wait for one DTMF digit; None on timeout. C{-1} waits until the caller acts."""
        timeout = NO_TIMEOUT if timeout_ms < 0 else self.default_timeout + timeout_ms / 1000
        return self._channel_command(
            "WAIT FOR DIGIT", str(int(timeout_ms)), timeout=timeout
        ).addCallback(_digit)

    def say_number(self, n: int, escape_digits: str = "") -> defer.Deferred[str | None]:
        """Say a number; the digit that interrupted it, or None."""
        return self._channel_command("SAY NUMBER", str(int(n)), escape_digits).addCallback(_digit)

    def say_digits(self, digits: str, escape_digits: str = "") -> defer.Deferred[str | None]:
        """Say C{digits} one by one (a phone number, read back); the digit that interrupted
        it, or None. Only digits, C{*} and C{#} are said: anything else is refused here."""
        if not digits or any(c not in "0123456789*#" for c in digits):
            return defer.fail(ValueError(f"SAY DIGITS takes digits, * and # only: {digits!r}"))
        return self._channel_command("SAY DIGITS", digits, escape_digits).addCallback(_digit)

    def set_variable(
        self, name: str, value: str, *, allow_function: bool = False
    ) -> defer.Deferred[None]:
        """
        Set a channel variable (allowed after hangup, e.g. for CDR fields).

        A name like C{CALLERID(name)} writes a dialplan function and needs
        C{allow_function=True}. The value is stored as is (no C{${}} evaluation).
        """
        check_variable_name(name, allow_function=allow_function)
        return self.command("SET VARIABLE", name, value).addCallback(lambda _reply: None)

    def get_variable(
        self, name: str, *, allow_function: bool = False
    ) -> defer.Deferred[str | None]:
        """
        A channel variable's value, None if unset. A function call such as
        C{CALLERID(num)} needs C{allow_function=True}. There is deliberately no
        C{GET FULL VARIABLE}: it evaluates C{${...}}, so it must never see caller data.
        """
        check_variable_name(name, allow_function=allow_function)
        return self.command("GET VARIABLE", name).addCallback(_variable_value)

    def exec_(self, app: str, *args: str, timeout: float | None = None) -> defer.Deferred[int]:
        """
        Run a dialplan application: C{EXEC app "a,b,c"}; returns its result.

        Each of C{args} is escaped for the application's comma-splitting parser (see
        L{ivr.agi.escaping.app_arguments}). Applications that last (Dial, AudioSocket, Queue)
        need an explicit C{timeout}, or L{NO_TIMEOUT}.

        @raise ChannelHungUp: the application returned -1 (it hung up or saw a hangup).
        @raise AGICommandError: no such application (-2).
        """
        words = (app, app_arguments(args)) if args else (app,)
        return self.command("EXEC", *words, timeout=timeout).addCallback(_exec_result, app)

    def set_music(self, on: bool, moh_class: str = "default") -> defer.Deferred[None]:
        """Start or stop music on hold for the caller."""
        return self._channel_command("SET MUSIC", "on" if on else "off", moh_class).addCallback(
            lambda _reply: None
        )

    def verbose(self, message: str, level: int = 1) -> defer.Deferred[None]:
        """Write to the Asterisk console/log at the given verbosity level."""
        return self.command("VERBOSE", message, str(int(level))).addCallback(lambda _reply: None)


def _get_data_digits(reply: AGIReply) -> str | None:
    if reply.result_text == "-1":
        raise ChannelHungUp("GET DATA: result=-1")
    digits = reply.result_text
    if not digits and reply.data == "timeout":
        return None
    return digits


def _variable_value(reply: AGIReply) -> str | None:
    if reply.result != 1:
        return None
    return reply.data if reply.data is not None else ""


def _exec_result(reply: AGIReply, app: str) -> int:
    result = reply.result
    if result == -2:
        raise AGICommandError(f"EXEC {app}: no such application", 200, reply.text)
    if result < 0:
        raise ChannelHungUp(f"EXEC {app}: result={result}")
    return result
