"""The dialplan in asterisk/ against a real Asterisk, real SIP softphones and stand-in FastAGI
servers: whatever the service does (absent, deciding, dying), the caller is never left in
dead air.

The stand-in is a FastAGI server the size of a test (a thread on 127.0.0.1:4573 or 4574) that
plays one scripted conversation per call and records what Asterisk said; the evidence on the
SIP side is each softphone's log (testbed/softphones.py).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from testbed.asterisk import Asterisk
from testbed.softphones import SippAgent

pytestmark = pytest.mark.e2e

PRIMARY_PORT = 4573
BACKUP_PORT = 4574


class AGIConversation:
    """One FastAGI session seen from the server side: the agi_* header, then commands."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.stream = connection.makefile("rwb")
        self.env: dict[str, str] = {}
        self.replies: list[str] = []
        while True:
            line = self.stream.readline().decode().strip()
            if not line:
                break
            key, _, value = line.partition(":")
            self.env[key] = value.strip()

    def command(self, line: str) -> str:
        """Send one AGI command, return its ``200 result=...`` reply."""
        self.stream.write(line.encode() + b"\n")
        self.stream.flush()
        while True:
            reply = self.stream.readline().decode().strip()
            if reply != "HANGUP":  # AGISIGHUP notices may come between replies
                break
        self.replies.append(reply)
        return reply

    def close(self) -> None:
        self.stream.close()
        self.connection.close()


class StandInAGI:
    """A FastAGI server on one port that runs ``conversation`` for each call it gets."""

    def __init__(self, port: int, conversation: Callable[[AGIConversation], None]) -> None:
        self.port = port
        self.conversation = conversation
        self.sessions: list[AGIConversation] = []
        self.errors: list[BaseException] = []
        self.listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.listener.settimeout(0.1)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(15)
            session = AGIConversation(connection)
            self.sessions.append(session)
            try:
                self.conversation(session)
            except (OSError, ValueError) as exc:
                self.errors.append(exc)
            finally:
                session.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(2)
        self.listener.close()


@pytest.fixture
def stand_in() -> Iterator[Callable[[int, Callable[[AGIConversation], None]], StandInAGI]]:
    servers: list[StandInAGI] = []

    def start(port: int, conversation: Callable[[AGIConversation], None]) -> StandInAGI:
        server = StandInAGI(port, conversation)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def assert_nobody_listens(port: int) -> None:
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, f"something listens on {port}"


def drop_the_call(session: AGIConversation) -> None:
    """A service that dies right after the header: it decides nothing."""


def send_to_operator(session: AGIConversation) -> None:
    session.command("SET VARIABLE HOTLINE_NEXT operator")


def test_service_down_sends_caller_to_operator(
    asterisk: Asterisk, operator: SippAgent, caller: Callable[..., str]
) -> None:
    """With no FastAGI server at all (primary and backup refused), the caller is sent to the
    operator, who gets the INVITE with the caller's number and answers."""
    assert_nobody_listens(PRIMARY_PORT)
    assert_nobody_listens(BACKUP_PORT)
    since = asterisk.log_offset()
    caller(number="5551234", name="Ann Example")
    invite = operator.wait_for("INVITE", timeout=10)[0]
    operator.wait_for("ANSWERED")
    assert "5551234" in invite.detail and "Ann Example" in invite.detail
    assert asterisk.wait_for_log(r"AGISTATUS=FAILURE", since=since)


def test_service_verdict_operator_dials_operator_without_backup(
    operator: SippAgent, caller: Callable[..., str], stand_in: Callable[..., StandInAGI]
) -> None:
    """HOTLINE_NEXT=operator from the primary service goes straight to the operator; the
    backup service is not consulted, and the service saw the caller ID and script name."""
    primary = stand_in(PRIMARY_PORT, send_to_operator)
    backup = stand_in(BACKUP_PORT, drop_the_call)
    caller(number="5550042", name="Bo Example")
    operator.wait_for("ANSWERED", timeout=10)
    assert len(primary.sessions) == 1 and not primary.errors
    session = primary.sessions[0]
    assert session.env["agi_network_script"] == "hotline"
    assert session.env["agi_callerid"] == "5550042"
    assert session.env["agi_calleridname"] == "Bo Example"
    assert session.replies == ["200 result=1"]
    assert backup.sessions == []


def test_service_dropping_the_call_tries_backup_then_operator(
    operator: SippAgent, caller: Callable[..., str], stand_in: Callable[..., StandInAGI]
) -> None:
    """A primary that closes the socket without a verdict hands the call to the backup (which
    sees HOTLINE_ATTEMPT=backup); a backup that drops it too hands it to the operator."""
    attempts: list[str] = []

    def backup_drops(session: AGIConversation) -> None:
        attempts.append(session.command("GET VARIABLE HOTLINE_ATTEMPT"))

    primary = stand_in(PRIMARY_PORT, drop_the_call)
    backup = stand_in(BACKUP_PORT, backup_drops)
    caller()
    operator.wait_for("ANSWERED", timeout=15)
    assert len(primary.sessions) == 1
    assert len(backup.sessions) == 1
    assert attempts == ["200 result=1 (backup)"]


def test_backup_verdict_done_hangs_up_without_operator(
    asterisk: Asterisk, operator: SippAgent, caller: Callable[..., str],
    stand_in: Callable[..., StandInAGI],
) -> None:
    """When the backup decides (HOTLINE_NEXT=done), its verdict stands: the caller is hung up
    and the operator's phone never rings."""

    def backup_done(session: AGIConversation) -> None:
        session.command("SET VARIABLE HOTLINE_NEXT done")

    stand_in(PRIMARY_PORT, drop_the_call)
    backup = stand_in(BACKUP_PORT, backup_done)
    caller()
    asterisk.wait_until_idle(timeout=10)
    assert len(backup.sessions) == 1
    assert operator.invites == 0


def test_caller_script_dtmf_reaches_the_service(
    caller: Callable[..., str], stand_in: Callable[..., StandInAGI]
) -> None:
    """CALLER_SCRIPT ``w1|d42`` makes the simulated caller press 4 then 2 after a second;
    the service's GET DATA reads "42"."""
    results: list[str] = []

    def read_digits(session: AGIConversation) -> None:
        results.append(session.command("GET DATA silence/1 6000 2"))
        session.command("SET VARIABLE HOTLINE_NEXT done")

    primary = stand_in(PRIMARY_PORT, read_digits)
    caller(script="w1|d42")
    for _ in range(100):
        if results:
            break
        threading.Event().wait(0.1)
    assert results == ["200 result=42"], primary.errors


def test_agent_call_is_bridged_and_outlives_the_service(
    asterisk: Asterisk, agents: Callable[..., SippAgent], operator: SippAgent,
    caller: Callable[..., str], stand_in: Callable[..., StandInAGI],
) -> None:
    """Dial(PJSIP/agent101,...,U(hotline-answered)) from the service rings the agent's
    softphone, which answers; the call is bridged until the agent hangs up; Asterisk itself
    marks the caller HOTLINE_CONNECTED=1, so a service that then dies without a verdict does
    not send the caller to the backup or the operator."""
    agent = agents("agent101", answer_after=0.3, hold_for=1.0)
    seen: dict[str, str] = {}

    def dial_agent_then_die(session: AGIConversation) -> None:
        seen["dial"] = session.command('EXEC Dial "PJSIP/agent101,10,gU(hotline-answered)"')
        seen["status"] = session.command("GET VARIABLE DIALSTATUS")
        seen["connected"] = session.command("GET VARIABLE HOTLINE_CONNECTED")

    since = asterisk.log_offset()
    stand_in(PRIMARY_PORT, dial_agent_then_die)
    backup = stand_in(BACKUP_PORT, send_to_operator)
    caller(number="5557777", name="Cy Example")
    invite = agent.wait_for("INVITE", timeout=10)[0]
    agent.wait_for("ANSWERED")
    agent.wait_for("HANGUP", timeout=10)
    asterisk.wait_until_idle(timeout=10)
    assert "5557777" in invite.detail
    assert seen == {"dial": "200 result=0", "status": "200 result=1 (ANSWER)",
                    "connected": "200 result=1 (1)"}
    assert asterisk.wait_for_log(r"PJSIP/agent101-\w+ joined '\w+' basic-bridge", since=since)
    assert backup.sessions == []
    assert operator.invites == 0


@pytest.mark.parametrize("behaviour", ["busy", "no-answer"])
def test_operator_not_answering_gets_apology_and_hangup(
    behaviour: str, asterisk: Asterisk, agents: Callable[..., SippAgent],
    caller: Callable[..., str], stand_in: Callable[..., StandInAGI],
) -> None:
    """If the operator is busy or does not answer in HOTLINE_OPERATOR_TIMEOUT, the caller
    hears the apology (all-circuits-busy-now, pls-try-call-later, goodbye) and is hung up."""
    operator = agents("operator", behaviour=behaviour)
    asterisk.cli("dialplan set global HOTLINE_OPERATOR_TIMEOUT 2")
    try:
        since = asterisk.log_offset()
        stand_in(PRIMARY_PORT, send_to_operator)
        caller()
        operator.wait_for("INVITE", timeout=10)
        operator.wait_for("BUSY" if behaviour == "busy" else "CANCELLED", timeout=10)
        asterisk.wait_for_log(r"Playback\(\"Local/s@caller-sim-\w+;1\", "
                              r"\"all-circuits-busy-now&pls-try-call-later&goodbye\"\)",
                              since=since)
        asterisk.wait_until_idle(timeout=15)
    finally:
        asterisk.cli("dialplan set global HOTLINE_OPERATOR_TIMEOUT 30")
