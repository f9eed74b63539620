"""SIP softphones for agents and the operator: SIPp user agents servers (UAS) on loopback.

Each ``SippAgent`` is one ``sipp`` process listening on 127.0.0.1:<port> (agent101 -> 5071,
..., operator -> 5070, the static contacts in asterisk/pjsip.conf), running one scenario of
``testbed/sipp/``:

    answer     180 Ringing, answers after ``answer_after`` s with G.711 SDP, hangs up after
               ``hold_for`` s (or when the caller's side hangs up first); RTP is echoed
               (``-rtp_echo`` on ``media_port``, 16000 + 10 x (port - 5060)), so Asterisk
               has a live media peer. Like a real phone it answers what Asterisk sends inside
               the call (re-INVITE with SDP, UPDATE, INFO, OPTIONS, NOTIFY: a connected-line
               update right after an agent answers a callback, a session refresh) without
               losing its place in the call
    speak      as answer, but the phone's user speaks: right after the answer it sends
               ``say`` (a WAV, 16-bit 8 kHz mono) as G.711 u-law RTP in real time (sipp's
               play_pcap_audio of a capture made from it; no echo); a customer who talks on
               a callback
    no-answer  rings until the caller's side gives up (CANCEL -> 487)
    busy       486 Busy Here
    reject     603 Decline

Evidence: the scenario logs one line per step to ``log_path`` (SIPp ``-trace_logs``), as
``<ms>|<EVENT>|<call-id>|<detail>``, EVENT in INVITE (detail: the From header, i.e. the caller
ID Asterisk presented), DIALED (answering phones: the To header, i.e. the number
dialled), IDENTITY (answering phones: the P-Asserted-Identity of the INVITE and of each
re-INVITE, i.e. who the phone shows, connected-line updates included; empty without one),
ANSWERED, ANSWERED_AT (answering phones, just before ANSWERED: the wall clock of the
answer as ``<s>|<us>``, for measurements against other clocks), INDIALOG (detail: the
method of a request inside the answered call),
HANGUP (detail: local|remote), CANCELLED, BUSY, REJECTED.
``events()`` parses them; ``wait_for(event, count)`` polls until they are there.
``aborted_calls()`` lists the calls sipp gave up on because the scenario did not expect a
message: the call then stays up in Asterisk, so a test should find none.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from testbed.processes import stop_process

SCENARIO_DIR = Path(__file__).resolve().parent / "sipp"
BEHAVIOURS = {
    "answer": "uas_answer.xml",
    "speak": "uas_answer.xml",  # made to speak by SippAgent.scenario()
    "no-answer": "uas_no_answer.xml",
    "busy": "uas_busy.xml",
    "reject": "uas_reject.xml",
}
OPERATOR_PORT = 5070


def agent_port(name: str) -> int:
    """The SIP port of a softphone in asterisk/pjsip.conf: agent101 -> 5071, operator -> 5070."""
    if name == "operator":
        return OPERATOR_PORT
    number = int(name.removeprefix("agent"))
    return 5070 + number - 100


@dataclass(frozen=True)
class SipEvent:
    """One line of a softphone's log."""

    at_ms: int
    kind: str
    call_id: str
    detail: str


def rtp_capture(wav: Path, target: Path) -> Path:
    """``wav`` (16-bit 8 kHz mono) as a pcap of G.711 u-law RTP packets, 20 ms each, timed in
    real time: what sipp's play_pcap_audio sends (it keeps the RTP, pacing by the capture)."""
    import audioop  # the stdlib's G.711 (until Python 3.13), as pydub uses it
    import struct
    import wave

    with wave.open(str(wav)) as source:
        if (source.getsampwidth(), source.getframerate(), source.getnchannels()) != (2, 8000, 1):
            raise ValueError(f"{wav}: 16-bit 8 kHz mono, please")
        ulaw = audioop.lin2ulaw(source.readframes(source.getnframes()), 2)
    packets = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for n, at in enumerate(range(0, len(ulaw) - 159, 160)):
        rtp = struct.pack("!BBHII", 0x80, 0, n & 0xFFFF, n * 160, 0x5EED) + ulaw[at:at + 160]
        udp = struct.pack("!HHHH", 16000, 16000, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\0" * 12 + b"\x08\x00" + ip
        usec = n * 20_000
        packets.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame),
                                   len(frame)) + frame)
    target.write_bytes(b"".join(packets))
    return target


class SoftphoneFailed(RuntimeError):
    """sipp did not start, or died."""


def read_events(log_path: Path, kind: str | None = None) -> list[SipEvent]:
    """The ``<ms>|<EVENT>|<call-id>|<detail>`` lines of a scenario's log, oldest first."""
    if not log_path.exists():
        return []
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        parts = line.split("|", 3)
        if len(parts) == 4 and parts[0].isdigit():
            event = SipEvent(int(parts[0]), parts[1], parts[2], parts[3].strip())
            if kind is None or event.kind == kind:
                found.append(event)
    return found


class SippAgent:
    """One SIPp UAS standing in for an agent's (or the operator's) softphone."""

    def __init__(
        self,
        name: str = "agent101",
        port: int | None = None,
        behaviour: str = "answer",
        answer_after: float = 0.5,
        hold_for: float = 5.0,
        media_port: int | None = None,
        log_dir: str | Path | None = None,
        binary: str = "sipp",
        say: str | Path | None = None,
    ) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour {behaviour!r} is not one of {sorted(BEHAVIOURS)}")
        if (behaviour == "speak") != (say is not None):
            raise ValueError("say (a u-law WAV) goes with behaviour 'speak', and only with it")
        self.say = Path(say) if say is not None else None
        self.name = name
        self.port = port or agent_port(name)
        self.behaviour = behaviour
        self.answer_after = answer_after
        self.hold_for = hold_for
        # sipp -rtp_echo also binds media_port + 2 (video): keep the agents 10 apart
        self.media_port = media_port or 16000 + (self.port - 5060) * 10  # 5071 -> 16110
        self.binary = shutil.which(binary) or binary
        self.dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix=f"sipp-{name}-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / f"{name}.log"
        self.error_path = self.dir / f"{name}.errors.log"
        self.screen_path = self.dir / f"{name}.screen"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            self.binary, "-sf", str(self.scenario()),
            "-i", "127.0.0.1", "-p", str(self.port), "-s", self.name,
            "-mi", "127.0.0.1", "-mp", str(self.media_port),
            *([] if self.say else ["-rtp_echo"]),  # a speaking phone sends its capture
            "-key", "answer_after", str(int(self.answer_after * 1000)),
            "-key", "hold_for", str(int(self.hold_for * 1000)),
            "-nostdin", "-trace_logs", "-log_file", str(self.log_path),
            "-trace_err", "-error_file", str(self.error_path),
            # answer INFO/NOTIFY/OPTIONS/UPDATE the scenario does not expect (uas_answer.xml
            # answers them itself, with re-INVITEs, in its _unexp.main handler)
            "-aa",
        ]

    def scenario(self) -> Path:
        """The scenario file of the behaviour; for ``speak``, uas_answer.xml with the RTP
        stream of ``say`` after the answer (sipp reads rtp_stream's file when it loads the
        scenario, so its path is written into a copy in the log folder)."""
        answer = SCENARIO_DIR / BEHAVIOURS[self.behaviour]
        if self.say is None:
            return answer
        text = answer.read_text(encoding="iso-8859-1")
        answered = '<log message="[clock_tick]|ANSWERED|[call_id]|"/>\n    </action>\n  </recv>\n'
        if answered not in text or '"' in str(self.say) or "," in str(self.say):
            raise ValueError(f"cannot make {answer.name} speak {self.say}")
        capture = rtp_capture(self.say, self.dir / f"{self.name}-says.pcap")
        text = text.replace(answered, answered + (
            f'  <nop><action><exec play_pcap_audio="{capture}"/></action></nop>\n'))
        text = text.replace("RTP/AVP 0 8 101", "RTP/AVP 0 101")  # u-law only
        text = re.sub(r"\n[ \t]*a=rtpmap:8 PCMA/8000", "", text)
        speaking = self.dir / f"{self.name}-speak.xml"
        speaking.write_text(text, encoding="iso-8859-1")
        return speaking

    def start(self, timeout: float = 5.0) -> SippAgent:
        if self._listening():
            raise SoftphoneFailed(f"127.0.0.1:{self.port}/udp is taken before {self.name} "
                                  "started (a demo stack? `python -m testbed down`)")
        self.log_path.write_text("")
        screen = self.screen_path.open("wb")
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=screen, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        screen.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SoftphoneFailed(
                    f"sipp for {self.name} exited with {self.process.returncode}: "
                    f"{self.screen_tail()}"
                )
            if self._listening():
                return self
            time.sleep(0.05)
        self.stop()
        raise SoftphoneFailed(f"sipp for {self.name} did not bind 127.0.0.1:{self.port}")

    def _listening(self) -> bool:
        """Someone has bound the port (after the start: sipp, which exits if it cannot)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                return True
        return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        stop_process(self.process, 3)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SippAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- evidence ---------------------------------------------------------------------------
    def events(self, kind: str | None = None) -> list[SipEvent]:
        """What happened so far, oldest first (optionally only one kind of event)."""
        return read_events(self.log_path, kind)

    def count(self, kind: str) -> int:
        return len(self.events(kind))

    @property
    def invites(self) -> int:
        return self.count("INVITE")

    @property
    def answered(self) -> int:
        return self.count("ANSWERED")

    def wait_for(self, kind: str, count: int = 1, timeout: float = 10.0) -> list[SipEvent]:
        """Poll the log until ``count`` events of ``kind`` are there; ``TimeoutError`` else."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(kind)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name}: {len(found)} {kind} event(s) after {timeout} s, wanted "
                    f"{count}; log so far:\n{self.log_path.read_text(errors='replace')}"
                )
            if not self.running():
                raise SoftphoneFailed(f"sipp for {self.name} died: {self.screen_tail()}")
            time.sleep(0.05)

    def aborted_calls(self) -> list[str]:
        """Call-IDs sipp aborted on a message the scenario did not expect (its -error_file).

        sipp leaves such a call without a word to Asterisk, where it stays up until
        Asterisk's own timers end it, and its retransmissions can reach the next test.
        """
        if not self.error_path.exists():
            return []
        text = self.error_path.read_text(errors="replace")
        return re.findall(r"Aborting call on unexpected message for Call-Id '([^']*)'", text)

    def screen_tail(self, chars: int = 2000) -> str:
        """sipp's errors (its -error_file), else the end of its screen output."""
        if self.error_path.exists() and self.error_path.stat().st_size:
            return self.error_path.read_text(errors="replace")[-chars:]
        text = self.screen_path.read_text(errors="replace") if self.screen_path.exists() else ""
        return text[-chars:]


class SippCaller:
    """A real SIP phone calling the hotline once (``testbed/sipp/uac_caller.xml``).

    It authenticates as the pjsip.conf endpoint ``caller``, dials ``dialed`` (any number
    reaches s@hotline), presses 1 (an RFC 4733 event) 1.5 s after the answer, and hangs up
    after ``hold_for`` s unless the hotline hangs up first. ``run()`` waits for the end of
    the call; ``events()`` has ANSWERED, DTMF and HANGUP (local|remote).
    """

    def __init__(
        self,
        dialed: str = "hotline",
        port: int = 5080,
        hold_for: float = 5.0,
        username: str = "caller",
        password: str = "hotline-caller",
        log_dir: str | Path | None = None,
        binary: str = "sipp",
    ) -> None:
        self.dialed = dialed
        self.port = port
        self.hold_for = hold_for
        self.username = username
        self.password = password
        self.media_port = 16000 + (port - 5060) * 10
        self.binary = shutil.which(binary) or binary
        self.dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="sipp-caller-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "caller.log"
        self.error_path = self.dir / "caller.errors.log"
        self.screen_path = self.dir / "caller.screen"

    def command(self) -> list[str]:
        return [
            self.binary, "127.0.0.1:5060", "-sf", str(SCENARIO_DIR / "uac_caller.xml"),
            "-i", "127.0.0.1", "-p", str(self.port), "-s", self.dialed,
            "-au", self.username, "-ap", self.password,
            "-mi", "127.0.0.1", "-mp", str(self.media_port),
            "-key", "hold_for", str(int(self.hold_for * 1000)),
            "-m", "1", "-nostdin", "-trace_logs", "-log_file", str(self.log_path),
            "-trace_err", "-error_file", str(self.error_path),
        ]

    def run(self, timeout: float = 30.0) -> int:
        """Place the call and wait until it is over; sipp's exit status (0: call succeeded)."""
        self.log_path.write_text("")
        with self.screen_path.open("wb") as screen:
            return subprocess.run(self.command(), stdin=subprocess.DEVNULL, stdout=screen,
                                  stderr=subprocess.STDOUT, timeout=timeout,
                                  check=False).returncode

    def events(self, kind: str | None = None) -> list[SipEvent]:
        return read_events(self.log_path, kind)
