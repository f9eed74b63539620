"""The callers' phones' audio: one UDP socket per call, in one asyncio loop.

SIPp does the signalling; each call's SDP names the port of a :class:`CallerMedia` here. It
sends what a phone sends, one 20 ms packet at a time from the first packet Asterisk sends on
(mu-law silence, the caller's sentence, RFC 4733 key presses), and stamps every packet it
receives (:func:`benchmarks.load.audio.parse_rtp`). Keys and speech are timed from the first
audible packet, i.e. from when the caller hears the welcome. Asterisk's RTP address comes from
the 200 OK's SDP (:meth:`CallerMedia.answered`, from SIPp's log), so the caller sends from the
answer on, as a phone does: Asterisk's Answer() waits up to 500 ms for the caller's first
packet before the dialplan goes on, and a caller silent until it hears something would wait
those 500 ms for its welcome. Failing the SDP, the source of Asterisk's first packet serves
(rtp_symmetric: Asterisk then sends to where we send from).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import cast

from benchmarks.load.audio import (
    FRAME_SAMPLES,
    PCMU,
    SAMPLE_RATE,
    TELEPHONE_EVENT,
    Packet,
    audible,
    dtmf_payloads,
    parse_rtp,
    rtp_header,
    ulaw_peak,
)
from benchmarks.load.mix import SPEAK_AT_S, CallerPlan

SILENCE = b"\xff" * FRAME_SAMPLES
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
CONFIRM_AFTER_S = 4.0  # after a speaker's words: their "1" to the confirmation
TICK_S = 0.02


@dataclass
class CallerMedia(asyncio.DatagramProtocol):
    """One caller's RTP: what it received and when it spoke."""

    plan: CallerPlan
    speech: list[bytes] = field(default_factory=list)  # the sentence, 20 ms mu-law frames
    packets: list[Packet] = field(default_factory=list)
    port: int = 0
    heard_at: float | None = None  # first audible packet
    answered_at: float | None = None  # SIPp logged the 200 OK (and Asterisk's RTP address)
    first_sent_at: float | None = None  # the caller's first RTP packet left
    speech_started_at: float | None = None
    speech_end_at: float | None = None
    keys_sent: list[tuple[float, str]] = field(default_factory=list)
    stopped: bool = False

    def __post_init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None
        self._early: list[tuple[tuple[str, int], Packet]] = []
        self._seq = random.randrange(0x10000)
        self._ts = random.randrange(0x100000000)
        self._ssrc = random.randrange(1, 0x100000000)
        # (payload type, payload, marker, the event's timestamp for RFC 4733 packets)
        self._pending: deque[tuple[int, bytes, bool, int | None]] = deque()
        self._actions: list[tuple[float, str]] = sorted(self.plan.keys)
        if self.plan.sentence is not None:
            # The words go over the speech prompt (a barge-in), so the hotline asks "Press 1 if
            # right" (intents.yaml confirm_barge_in): the speaker says yes 4 s after them.
            self._actions.append((SPEAK_AT_S, "speech"))
            self._actions.append((SPEAK_AT_S + len(self.speech) * FRAME_S + CONFIRM_AFTER_S, "1"))
            self._actions.sort()
        self._speech_frames_left = 0
        # The sentence's WAV ends in line noise: its speech ends at its last audible frame.
        voiced = [i for i, frame in enumerate(self.speech) if audible(ulaw_peak(frame))]
        self._trailing_quiet_frames = len(self.speech) - 1 - voiced[-1] if voiced else 0

    # --- asyncio.DatagramProtocol -----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector loop's datagram transport does not subclass DatagramTransport
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = int(transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.time()
        packet = parse_rtp(data, now)
        if packet is None or self.stopped:
            return
        if self.answered_at is None:
            # Before the fleet read SIPp's answer (a tick at most): kept with its source and
            # judged once the answer names Asterisk's RTP address.
            self._early.append((addr, packet))
            return
        if self.peer is None:
            self.peer = addr  # the 200 OK's SDP could not be read: symmetric RTP
        elif addr != self.peer:
            # A stream meant for another call: Asterisk still sending from a session the
            # hotline ended to a port the OS gave this caller again. Taken as this caller's,
            # it made the caller send its own audio there, where Asterisk never heard it.
            return
        self._received(packet)

    def _received(self, packet: Packet) -> None:
        self.packets.append(packet)
        if self.heard_at is None and packet.payload_type == PCMU and audible(packet.peak):
            self.heard_at = packet.at

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable after a hangup
        pass

    def answered(self, peer: tuple[str, int] | None, at: float) -> None:
        """The call was answered; ``peer`` is Asterisk's RTP address from the SDP (None if
        SIPp could not read it): the next tick sends the caller's first packet there, and
        only what comes from there is heard."""
        self.answered_at = at
        if peer is not None:
            self.peer = peer
        early, self._early = self._early, []
        for addr, packet in early:
            if self.peer is None:
                self.peer = addr
            if addr == self.peer:
                self._received(packet)

    # --- sending ----------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Send this 20 ms's packet (called by :class:`MediaFleet` for every call)."""
        if self.stopped or self.peer is None or self.transport is None:
            return
        self._due_actions(now)
        event_ts: int | None = None
        if self._pending:
            payload_type, payload, marker, event_ts = self._pending.popleft()
        else:
            payload_type, payload, marker = PCMU, SILENCE, False
        if payload_type == PCMU and self._speech_frames_left:
            self._speech_frames_left -= 1
            if self._speech_frames_left == self._trailing_quiet_frames:
                self.speech_end_at = now  # the last voiced frame leaves now
        timestamp = self._ts if event_ts is None else event_ts
        header = rtp_header(payload_type, self._seq, timestamp, self._ssrc, marker)
        self.transport.sendto(header + payload, self.peer)
        if self.first_sent_at is None:
            self.first_sent_at = now
        self._seq += 1
        self._ts += FRAME_SAMPLES

    def _due_actions(self, now: float) -> None:
        if self.heard_at is None or self._pending:
            return
        while self._actions and now >= self.heard_at + self._actions[0][0]:
            _at, what = self._actions.pop(0)
            if what == "speech":
                self.speech_started_at = now
                self._speech_frames_left = len(self.speech)
                self._pending.extend(
                    (PCMU, frame, i == 0, None) for i, frame in enumerate(self.speech))
                if not self.speech:
                    self.speech_end_at = now
            else:
                self.keys_sent.append((now, what))
                start = self._ts
                for digit in what:
                    # every packet of one event carries the timestamp it starts at
                    payloads = dtmf_payloads(digit)
                    self._pending.extend((TELEPHONE_EVENT, payload, i == 0, start)
                                         for i, (_duration, payload) in enumerate(payloads))
                    self._pending.extend((PCMU, SILENCE, False, None) for _ in range(4))
                    start += FRAME_SAMPLES * (len(payloads) + 4)
            return

    def stop(self) -> None:
        self.stopped = True
        if self.transport is not None:
            self.transport.close()


class MediaFleet:
    """Every caller's media in one loop: binds the sockets, ticks them every 20 ms."""

    def __init__(self) -> None:
        self.calls: dict[str, CallerMedia] = {}
        self._task: asyncio.Task[None] | None = None

    async def open(self, plan: CallerPlan, speech: list[bytes]) -> CallerMedia:
        loop = asyncio.get_running_loop()
        media = CallerMedia(plan, speech)
        await loop.create_datagram_endpoint(lambda: media, local_addr=("127.0.0.1", 0))
        self.calls[plan.tag] = media
        return media

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._ticks())

    async def _ticks(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            now = time.time()
            for media in list(self.calls.values()):
                media.tick(now)
            next_at += TICK_S
            delay = next_at - loop.time()
            if delay < -0.2:  # fell far behind (a stalled driver): do not burst to catch up
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(max(0.0, delay))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for media in self.calls.values():
            media.stop()
