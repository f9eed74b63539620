"""A fleet of real SIP callers: one SIPp process for the signalling of a whole step, one
Python RTP endpoint per call (:mod:`benchmarks.load.media`) for what they say and hear.

    plans = plan_mix(20, mix_for_speaking(1 / 3), sentences, step="20")
    outcomes = CallerFleet(plans, log_dir, speech=load_speech(plans)).run(concurrency=20)

SIPp places the calls from a ``-inf`` CSV, at most ``concurrency`` at once (``-l``), ``rate``
new calls per second, into ``s@hotline`` as pjsip.conf's ``loadcaller``; its log
(``sipp/uac_load.xml``) gives each call's INVITE, answer and hang-up times on the wall
clock, matched to the media by the caller's tag. The fault scenarios use the same fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
import wave
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.load.audio import Packet, Underrun, dead_air, frames, ulaw_encode, underruns
from benchmarks.load.media import CallerMedia, MediaFleet
from benchmarks.load.mix import CallerPlan

SCENARIO = Path(__file__).resolve().parent / "sipp" / "uac_load.xml"
SIP_PORT = 5081  # the fleet's SIPp; SippCaller (tests) uses 5080
ACCOUNT = ("loadcaller", "hotline-load")  # asterisk/pjsip.conf [loadcaller]


def rtp_address(detail: str) -> tuple[str, int] | None:
    """Asterisk's RTP address from an ANSWERED line's ``host:port`` (None when the 200 OK's
    SDP could not be read)."""
    host, _, port = detail.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host, int(port)


@dataclass(frozen=True)
class SipLine:
    """One line of the scenario's log."""

    event: str  # INVITE, ANSWERED, HANGUP, FAILED
    tag: str
    call_id: str
    at: float
    detail: str = ""


def parse_sipp_log(text: str) -> list[SipLine]:
    """The ``EVENT|tag|call-id|s|us[|detail]`` lines of ``uac_load.xml``'s log."""
    lines = []
    for raw in text.splitlines():
        parts = raw.strip().split("|")
        if len(parts) < 5 or parts[0] not in ("INVITE", "ANSWERED", "HANGUP", "FAILED"):
            continue
        try:
            at = float(parts[3]) + float(parts[4]) / 1e6  # SIPp prints them as doubles
        except ValueError:
            continue
        lines.append(SipLine(parts[0], parts[1], parts[2], at, "|".join(parts[5:])))
    return lines


@dataclass
class CallOutcome:
    """What one caller went through, as the caller saw it; ``reached`` and ``category`` are
    filled in from the stack's side by :mod:`benchmarks.load.evidence`."""

    index: int
    kind: str
    tag: str
    expected_category: str | None
    sip_call_id: str = ""
    invite_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    hung_up_by: str = ""  # local, remote, refused, or "" (never ended: sipp was stopped)
    first_prompt_at: float | None = None
    # the pieces of the time to first prompt: the caller's first RTP packet left (after the
    # answer), Asterisk's first packet arrived (its Answer() returned, FastAGI began playing)
    first_sent_at: float | None = None
    first_packet_at: float | None = None
    speech_end_at: float | None = None
    speech_s: float = 0.0  # how long the caller's sentence lasted (to its last voiced frame)
    keys_sent: list[tuple[float, str]] = field(default_factory=list)
    underruns: list[Underrun] = field(default_factory=list)
    dead_air: list[tuple[float, float]] = field(default_factory=list)
    packets: int = 0
    audio: list[Packet] = field(default_factory=list, repr=False)  # what the caller received
    # from the stack's side
    reached: str = ""  # agent, operator, callback, hung-up, dropped, failed
    agent: str = ""
    category: str | None = None
    decided_at: float | None = None
    queue_wait_s: float | None = None
    connected_at: float | None = None  # the agent answered (the CONNECT event)

    def owed_dead_air(self, min_s: float = 2.0) -> list[tuple[float, float]]:
        """Dead air while the hotline owes the caller sound: from the first prompt to an
        agent's answer (else the end of the call), leaving out the caller's own sentence
        (while they speak nobody should talk over them)."""
        if self.first_prompt_at is None:
            return []
        end = self.connected_at or self.ended_at or (
            self.audio[-1].at if self.audio else self.first_prompt_at)
        spans = [(self.first_prompt_at, end)]
        if self.speech_end_at is not None:
            started = self.speech_end_at - self.speech_s
            spans = [(self.first_prompt_at, min(end, started)), (self.speech_end_at, end)]
        return [quiet for start, stop in spans
                for quiet in dead_air(self.audio, start, stop, min_s)]

    @property
    def time_to_first_prompt_s(self) -> float | None:
        if self.invite_at is None or self.first_prompt_at is None:
            return None
        return self.first_prompt_at - self.invite_at

    @property
    def set_up_failed(self) -> bool:
        return self.answered_at is None


def outcomes_from(
    plans: Iterable[CallerPlan], lines: Iterable[SipLine], media: dict[str, CallerMedia],
    dead_air_min_s: float = 2.0,
) -> list[CallOutcome]:
    """Join the SIPp log and the media endpoints by tag (pure but for the objects given)."""
    by_tag: dict[str, list[SipLine]] = {}
    for line in lines:
        by_tag.setdefault(line.tag, []).append(line)
    outcomes = []
    for plan in plans:
        out = CallOutcome(plan.index, plan.kind, plan.tag, plan.expected_category)
        for line in by_tag.get(plan.tag, []):
            out.sip_call_id = line.call_id
            if line.event == "INVITE" and out.invite_at is None:
                out.invite_at = line.at
            elif line.event == "ANSWERED":
                out.answered_at = line.at
            elif line.event == "HANGUP":
                out.ended_at, out.hung_up_by = line.at, line.detail
            elif line.event == "FAILED":
                out.ended_at, out.hung_up_by = line.at, "refused"
        call = media.get(plan.tag)
        if call is not None:
            packets: list[Packet] = call.packets
            out.packets = len(packets)
            out.first_prompt_at = call.heard_at
            out.first_sent_at = call.first_sent_at
            out.first_packet_at = min((p.at for p in packets), default=None)
            out.speech_end_at = call.speech_end_at
            out.keys_sent = list(call.keys_sent)
            out.underruns = underruns(packets)
            out.audio = packets
            if call.speech_started_at is not None and call.speech_end_at is not None:
                out.speech_s = call.speech_end_at - call.speech_started_at
            out.dead_air = out.owed_dead_air(dead_air_min_s)
        outcomes.append(out)
    return outcomes


def sentence_frames(path: Path) -> list[bytes]:
    """A telephone WAV (8 kHz, 16-bit mono) as 20 ms mu-law frames."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) != (8000, 2, 1):
            raise ValueError(f"{path}: not 8 kHz 16-bit mono")
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return frames(ulaw_encode(pcm))


class CallerFleet:
    """Places ``plans`` through Asterisk at ``127.0.0.1:5060`` and records each call."""

    def __init__(
        self, plans: list[CallerPlan], log_dir: Path, speech: dict[str, list[bytes]] | None = None,
        sip_port: int = SIP_PORT, binary: str = "sipp",
    ) -> None:
        self.plans = plans
        self.log_dir = log_dir
        self.speech = speech or {}  # sentence text -> frames
        self.sip_port = sip_port
        self.binary = shutil.which(binary) or binary
        self.log_path = log_dir / "callers.log"
        self.error_path = log_dir / "callers.errors.log"
        self.screen_path = log_dir / "callers.screen"
        self.csv_path = log_dir / "callers.csv"
        self.media = MediaFleet()

    def command(self, concurrency: int, rate: float, timeout_s: float) -> list[str]:
        return [
            self.binary, "127.0.0.1:5060", "-sf", str(SCENARIO), "-inf", str(self.csv_path),
            "-i", "127.0.0.1", "-p", str(self.sip_port), "-s", "hotline",
            "-au", ACCOUNT[0], "-ap", ACCOUNT[1],
            "-m", str(len(self.plans)), "-l", str(concurrency),
            "-r", str(max(1, round(rate * 10))), "-rp", "10000",  # rate per 10 s: fractions
            "-timeout", f"{int(timeout_s)}s", "-timeout_error",
            "-nostdin", "-aa", "-trace_logs", "-log_file", str(self.log_path),
            "-trace_err", "-error_file", str(self.error_path),
        ]

    def run(self, concurrency: int | None = None, rate: float = 5.0,
            timeout_s: float = 600.0) -> list[CallOutcome]:
        """Place every call, at most ``concurrency`` at once; return when all have ended."""
        return asyncio.run(self.run_async(concurrency or len(self.plans), rate, timeout_s))

    async def run_async(self, concurrency: int, rate: float,
                        timeout_s: float) -> list[CallOutcome]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        rows = ["SEQUENTIAL"]
        for plan in self.plans:
            speech = self.speech.get(plan.sentence.text, []) if plan.sentence else []
            media = await self.media.open(plan, speech)
            rows.append(f"{plan.tag};{media.port};{int(plan.hang_up_after_s * 1000)}")
        self.csv_path.write_text("\n".join(rows) + "\n")
        self.log_path.write_text("")
        self.media.start()
        screen = self.screen_path.open("wb")
        process = await asyncio.create_subprocess_exec(
            *self.command(concurrency, rate, timeout_s), stdin=subprocess.DEVNULL,
            stdout=screen, stderr=subprocess.STDOUT, start_new_session=True,
        )
        screen.close()
        ended: set[str] = set()
        offset = 0
        deadline = time.monotonic() + timeout_s + 30
        try:
            while True:
                offset = self._follow(offset, ended)
                if process.returncode is not None or time.monotonic() > deadline:
                    break
                # one RTP tick: the answer reaches the caller's media within ~20 ms
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(process.wait(), 0.02)
        finally:
            if process.returncode is None:
                process.terminate()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(process.wait(), 5)
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            self._follow(offset, ended)
            await self.media.close()
        lines = parse_sipp_log(self.log_path.read_text(errors="replace"))
        return outcomes_from(self.plans, lines, self.media.calls)

    def _follow(self, offset: int, ended: set[str]) -> int:
        """Start the media of calls answered since ``offset`` (a phone sends from the answer
        on) and stop that of calls whose hang-up SIPp logged: Asterisk reuses RTP ports, so
        a finished caller must fall silent at once."""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        for line in parse_sipp_log(complete.decode(errors="replace")):
            if line.event == "ANSWERED" and line.tag not in ended:
                call = self.media.calls.get(line.tag)
                if call is not None:
                    call.answered(rtp_address(line.detail), line.at)
            if line.event in ("HANGUP", "FAILED") and line.tag not in ended:
                ended.add(line.tag)
                call = self.media.calls.get(line.tag)
                if call is not None:
                    call.stop()
        return offset + len(complete)

    def aborted_calls(self) -> int:
        """Calls SIPp gave up on (a message its scenario did not expect, a timeout)."""
        if not self.error_path.exists():
            return 0
        return self.error_path.read_text(errors="replace").count("Aborting call")
