"""The dialplan in asterisk/ against a real Asterisk, real SIP softphones and stand-in FastAGI
servers: whatever the service does (absent, deciding, dying), the caller is never left in
dead air.

The stand-in is a FastAGI server the size of a test (a thread on 127.0.0.1:4573 or 4574) that
plays one scripted conversation per call and records what Asterisk said; the evidence on the
SIP side is each softphone's log (testbed/softphones.py).
"""

from __future__ import annotations

import csv
import math
import re
import socket
import struct
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.asterisk import Asterisk
from testbed.softphones import SippAgent, SippCaller

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


def wait_for_call_record(asterisk: Asterisk, uniqueid: str, timeout: float = 5.0) -> list[str]:
    """The last line of cdr-custom/hotline.csv for the channel ``uniqueid`` (written by the
    CDR engine shortly after the hang-up)."""
    deadline = time.monotonic() + timeout
    while True:
        if asterisk.cdr_path.exists():
            with asterisk.cdr_path.open(newline="") as records:
                mine = [row for row in csv.reader(records) if row[1] == uniqueid]
            if mine and mine[-1][12]:
                return mine[-1]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no call record for {uniqueid} in {asterisk.cdr_path}")
        time.sleep(0.05)


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
    and the operator's phone never rings; the call record carries the verdict and the
    category the service set."""

    def backup_done(session: AGIConversation) -> None:
        session.command("SET VARIABLE HOTLINE_CATEGORY billing")
        session.command("SET VARIABLE HOTLINE_NEXT done")

    stand_in(PRIMARY_PORT, drop_the_call)
    backup = stand_in(BACKUP_PORT, backup_done)
    channel_id = caller()
    asterisk.wait_until_idle(timeout=10)
    assert len(backup.sessions) == 1
    assert operator.invites == 0
    record = wait_for_call_record(asterisk, channel_id)
    assert (record[12], record[13]) == ("done", "billing")  # hotline_next, hotline_category


def test_caller_script_dtmf_reaches_the_service(
    asterisk: Asterisk, caller: Callable[..., str], stand_in: Callable[..., StandInAGI]
) -> None:
    """CALLER_SCRIPT ``pbeep|w0.5|d42`` makes the simulated caller play a sound, wait, then
    press 4 and 2; the service's GET DATA reads "42"."""
    results: list[str] = []

    def read_digits(session: AGIConversation) -> None:
        results.append(session.command("GET DATA silence/1 6000 2"))
        session.command("SET VARIABLE HOTLINE_NEXT done")

    primary = stand_in(PRIMARY_PORT, read_digits)
    since = asterisk.log_offset()
    caller(script="pbeep|w0.5|d42")
    deadline = time.monotonic() + 10
    while not results and time.monotonic() < deadline:
        time.sleep(0.05)
    assert results == ["200 result=42"], primary.errors
    assert asterisk.wait_for_log(r'Playback\("Local/s@caller-sim-\w+;2", "beep"\)', since=since)


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
    hears the whole apology (HOTLINE_APOLOGY: im-sorry, all-circuits-busy-now,
    please-try-call-later, goodbye) and is hung up."""
    operator = agents("operator", behaviour=behaviour)
    asterisk.cli("dialplan set global HOTLINE_OPERATOR_TIMEOUT 2")
    try:
        since = asterisk.log_offset()
        stand_in(PRIMARY_PORT, send_to_operator)
        caller()
        operator.wait_for("INVITE", timeout=10)
        operator.wait_for("BUSY" if behaviour == "busy" else "CANCELLED", timeout=10)
        asterisk.wait_until_idle(timeout=15)
        played = re.findall(r"Playing '([\w-]+)\.gsm'", asterisk.log_text(since))
        assert played[-4:] == ["im-sorry", "all-circuits-busy-now", "please-try-call-later",
                               "goodbye"]
    finally:
        asterisk.cli("dialplan set global HOTLINE_OPERATOR_TIMEOUT 30")


def test_caller_abandoning_while_agent_rings_stops_the_ringing(
    asterisk: Asterisk, agents: Callable[..., SippAgent], caller: Callable[..., str],
    stand_in: Callable[..., StandInAGI],
) -> None:
    """A caller who hangs up (script ``w1|h``) while the agent's phone rings cancels the
    agent's call (CANCEL, 487): the agent is not left with a ghost call."""
    agent = agents("agent102", answer_after=10.0)

    def dial_agent(session: AGIConversation) -> None:
        session.command('EXEC Dial "PJSIP/agent102,20,U(hotline-answered)"')

    stand_in(PRIMARY_PORT, dial_agent)
    caller(script="w1|h")
    agent.wait_for("INVITE", timeout=10)
    agent.wait_for("CANCELLED", timeout=10)
    asterisk.wait_until_idle(timeout=10)
    assert agent.answered == 0


def test_caller_hanging_up_mid_conversation_hangs_up_the_agent(
    asterisk: Asterisk, agents: Callable[..., SippAgent], caller: Callable[..., str],
    stand_in: Callable[..., StandInAGI],
) -> None:
    """When the caller hangs up during the conversation (script ``w2|h``), Asterisk sends the
    agent a BYE (the agent logs a remote hang-up well before its own 30 s)."""
    agent = agents("agent103", answer_after=0.2, hold_for=30.0)

    def dial_agent(session: AGIConversation) -> None:
        session.command('EXEC Dial "PJSIP/agent103,10,U(hotline-answered)"')

    stand_in(PRIMARY_PORT, dial_agent)
    caller(script="w2|h")
    agent.wait_for("ANSWERED", timeout=10)
    hangup = agent.wait_for("HANGUP", timeout=10)[0]
    assert hangup.detail == "remote"
    asterisk.wait_until_idle(timeout=10)


def test_prompt_written_to_sounds_dir_is_played(
    asterisk: Asterisk, caller: Callable[..., str], stand_in: Callable[..., StandInAGI]
) -> None:
    """A 8 kHz 16-bit mono .wav written to ``sounds_dir`` (host path) is played by Asterisk as
    ``asterisk_sounds_dir/<name>``: STREAM FILE plays all 2400 samples of a 0.3 s tone."""
    with wave.open(str(asterisk.sounds_dir / "e2e-tone.wav"), "wb") as tone:
        tone.setnchannels(1)
        tone.setsampwidth(2)
        tone.setframerate(8000)
        tone.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / 8000)))
            for n in range(2400)))
    replies: list[str] = []

    def play(session: AGIConversation) -> None:
        replies.append(
            session.command(f'STREAM FILE {asterisk.asterisk_sounds_dir}/e2e-tone ""'))
        session.command("SET VARIABLE HOTLINE_NEXT done")

    stand_in(PRIMARY_PORT, play)
    caller()
    asterisk.wait_until_idle(timeout=10)
    assert len(replies) == 1
    assert replies[0].startswith("200 result=0 endpos=")
    assert int(replies[0].rsplit("=", 1)[1]) >= 2400


def test_survey_context_runs_the_survey_script(
    asterisk: Asterisk, caller: Callable[..., str], stand_in: Callable[..., StandInAGI]
) -> None:
    """A call sent to context ``survey`` reaches the FastAGI script ``survey`` and is hung up
    when the script ends."""
    primary = stand_in(PRIMARY_PORT, lambda session: None)
    caller(context="survey")
    asterisk.wait_until_idle(timeout=10)
    assert [session.env["agi_network_script"] for session in primary.sessions] == ["survey"]


def test_real_sip_phone_reaches_the_service_and_its_dtmf_arrives(
    asterisk: Asterisk, stand_in: Callable[..., StandInAGI], tmp_path: Path
) -> None:
    """A SIP phone (SIPp UAC, digest auth as endpoint "caller") dialing any number reaches
    the hotline's FastAGI script; its RFC 4733 key press "1" is read by GET DATA; the
    service's verdict "done" hangs the phone up."""
    digits: list[str] = []

    def read_digit(session: AGIConversation) -> None:
        digits.append(session.command("GET DATA silence/1 5000 1"))
        session.command("SET VARIABLE HOTLINE_NEXT done")

    primary = stand_in(PRIMARY_PORT, read_digit)
    phone = SippCaller(dialed="1800", hold_for=10.0, log_dir=tmp_path / "phone")
    assert phone.run(timeout=30) == 0, phone.screen_path.read_text(errors="replace")[-1500:]
    assert [event.kind for event in phone.events()] == ["ANSWERED", "DTMF", "HANGUP"]
    assert phone.events("HANGUP")[0].detail == "remote"
    assert digits == ["200 result=1"]
    assert primary.sessions[0].env["agi_callerid"] == "caller"
    assert primary.sessions[0].env["agi_calleridname"] == "SIP Caller"
    asterisk.wait_until_idle(timeout=5)


@pytest.fixture
def watchdog(asterisk: Asterisk) -> Iterator[Callable[[int], None]]:
    """Set HOTLINE_WATCHDOG for one test, restore the configured 900 s afterwards."""

    def arm(seconds: int) -> None:
        asterisk.cli(f"dialplan set global HOTLINE_WATCHDOG {seconds}")

    yield arm
    arm(900)


def test_hung_service_is_cut_off_by_the_watchdog(
    asterisk: Asterisk, operator: SippAgent, caller: Callable[..., str],
    stand_in: Callable[..., StandInAGI], watchdog: Callable[[int], None],
) -> None:
    """A service that accepts the call and never answers (both primary and backup) would
    leave the caller in silence: after HOTLINE_WATCHDOG seconds the caller goes to the
    operator instead."""

    def hang(session: AGIConversation) -> None:
        session.connection.recv(1)  # returns when Asterisk gives up on us

    watchdog(1)
    primary = stand_in(PRIMARY_PORT, hang)
    backup = stand_in(BACKUP_PORT, hang)
    since = asterisk.log_offset()
    caller()
    operator.wait_for("ANSWERED", timeout=10)
    assert asterisk.wait_for_log(r"FastAGI watchdog \(1 s\) fired in primary", since=since)
    assert len(primary.sessions) == 1
    assert backup.sessions == []


def test_agent_answering_disarms_the_watchdog(
    agents: Callable[..., SippAgent], operator: SippAgent, caller: Callable[..., str],
    stand_in: Callable[..., StandInAGI], watchdog: Callable[[int], None],
) -> None:
    """A conversation with an agent outlasts HOTLINE_WATCHDOG: the agent hangs up on its own
    after 2.5 s (a local hang-up, not a BYE from Asterisk at the 1 s watchdog)."""
    agent = agents("agent104", answer_after=0.2, hold_for=2.5)

    def dial_agent(session: AGIConversation) -> None:
        session.command('EXEC Dial "PJSIP/agent104,10,U(hotline-answered)"')

    watchdog(1)
    stand_in(PRIMARY_PORT, dial_agent)
    caller()
    agent.wait_for("ANSWERED", timeout=10)
    assert agent.wait_for("HANGUP", timeout=10)[0].detail == "local"
    assert operator.invites == 0
