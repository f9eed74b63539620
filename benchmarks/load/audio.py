"""What a caller hears, worked out from the RTP packets its phone received: pure functions.

The load driver's media endpoint (``benchmarks/load/media.py``) stamps each datagram Asterisk
sends to a caller with its arrival time (``time.time()``) and keeps only what these functions
need (:class:`Packet`: RTP header fields and the payload's peak level), so the analysis runs
after the step, over plain data, and is unit tested without sockets.

Measures, all on the caller's side:

* :func:`first_audio_at` - when the first non-silent packet arrived (the welcome prompt): the
  time to first prompt is that minus the INVITE's time.
* :func:`underruns` - packets a phone with a ``jitter_buffer_s`` playout buffer would have had
  to replace with silence: late against the talkspurt's clock, or never arrived (a hole in the
  sequence numbers inside a talkspurt).
* :func:`dead_air` - stretches of at least ``min_s`` with no audible packet while the
  service owes the caller sound (between two instants the caller gives, e.g. the first prompt
  and the agent's answer).

It also has the two encoders a caller needs to send: G.711 mu-law (:func:`ulaw_encode`) and
RFC 4733 telephone events (:func:`dtmf_payloads`), and the RTP header (:func:`rtp_header`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz, the ptime Asterisk and every phone here use
PCMU = 0
TELEPHONE_EVENT = 101
# A packet whose loudest sample is below this (linear 16-bit) is silence: comfort silence and
# the quiet between a prompt's words stay under about 100, speech peaks in the thousands.
SILENCE_PEAK = 512


def _ulaw_to_linear(code: int) -> int:
    """ITU-T G.711 mu-law decoding of one byte."""
    code = ~code & 0xFF
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    magnitude -= 0x84
    return -magnitude if sign else magnitude


ULAW_TO_LINEAR: tuple[int, ...] = tuple(_ulaw_to_linear(code) for code in range(256))
# Each mu-law byte mapped to its magnitude / 128 (0..251), so the peak of a payload is one
# ``bytes.translate`` and one ``max`` in C, cheap enough for every packet of 80 calls.
_PEAK_TABLE = bytes(min(255, abs(value) >> 7) for value in ULAW_TO_LINEAR)


def ulaw_peak(payload: bytes) -> int:
    """The loudest sample of a mu-law payload, linear, to within 128 (0 for an empty one)."""
    if not payload:
        return 0
    return max(payload.translate(_PEAK_TABLE)) << 7


def audible(peak: int, threshold: int = SILENCE_PEAK) -> bool:
    return peak >= threshold


@dataclass(frozen=True)
class Packet:
    """One RTP packet as the caller received it (``at``: arrival, seconds since the epoch)."""

    at: float
    seq: int
    timestamp: int
    ssrc: int
    marker: bool
    payload_type: int
    peak: int  # ulaw_peak of the payload (0 for other payload types)


def parse_rtp(datagram: bytes, at: float) -> Packet | None:
    """The header fields and payload peak of one RTP datagram; None if it is not RTP v2."""
    if len(datagram) < 12 or datagram[0] >> 6 != 2:
        return None
    first, second, seq, timestamp, ssrc = struct.unpack_from("!BBHII", datagram)
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: its length in 32-bit words follows its profile
        if len(datagram) < offset + 4:
            return None
        (words,) = struct.unpack_from("!H", datagram, offset + 2)
        offset += 4 + 4 * words
    payload = datagram[offset:]
    if first & 0x20 and payload:  # padding: the last byte counts the padding bytes
        payload = payload[: -payload[-1]]
    payload_type = second & 0x7F
    peak = ulaw_peak(payload) if payload_type == PCMU else 0
    return Packet(at, seq, timestamp, ssrc, bool(second & 0x80), payload_type, peak)


def voice(packets: Iterable[Packet]) -> list[Packet]:
    """The audio packets (PCMU), in arrival order: telephone events and comfort noise out."""
    return sorted((p for p in packets if p.payload_type == PCMU), key=lambda p: p.at)


def first_audio_at(packets: Iterable[Packet], threshold: int = SILENCE_PEAK) -> float | None:
    """Arrival of the first audible packet (the first prompt the caller hears), or None."""
    for packet in voice(packets):
        if audible(packet.peak, threshold):
            return packet.at
    return None


@dataclass(frozen=True)
class Underrun:
    """A frame the caller's phone had no audio for: ``late_s`` after its playout time, or
    ``lost`` (its sequence number never arrived)."""

    at: float
    late_s: float
    lost: bool = False


def _in_sequence(packets: Iterable[Packet]) -> list[tuple[int, Packet]]:
    """Packets per SSRC in sending order, each with its sequence number extended past the
    16-bit wrap (unwrapped in arrival order: a reordered packet lands where it was sent)."""
    extended: list[tuple[int, int, Packet]] = []
    last: dict[int, int] = {}
    for packet in sorted(packets, key=lambda p: p.at):
        previous = last.get(packet.ssrc)
        if previous is None:
            number = packet.seq
        else:
            delta = ((packet.seq - previous) + 0x8000) % 0x10000 - 0x8000
            number = previous + delta
        last[packet.ssrc] = max(number, previous if previous is not None else number)
        extended.append((packet.ssrc, number, packet))
    extended.sort(key=lambda item: (item[0], item[1]))
    return [(number, packet) for _ssrc, number, packet in extended]


def _talkspurts(packets: Sequence[tuple[int, Packet]]) -> list[list[tuple[int, Packet]]]:
    """Runs of packets one RTP clock: same SSRC, no marker, timestamps 160 apart (a prompt
    played without a break); a new prompt or a pause starts a new run."""
    spurts: list[list[tuple[int, Packet]]] = []
    for number, packet in packets:
        if spurts:
            last_number, last = spurts[-1][-1]
            steps = number - last_number
            same_clock = (
                packet.ssrc == last.ssrc
                and not packet.marker
                and 0 < steps < 50  # a hole of a second or more is a pause, not lost frames
                and ((packet.timestamp - last.timestamp) & 0xFFFFFFFF) == FRAME_SAMPLES * steps
            )
            if same_clock:
                spurts[-1].append((number, packet))
                continue
        spurts.append([(number, packet)])
    return spurts


def underruns(packets: Iterable[Packet], jitter_buffer_s: float = 0.06) -> list[Underrun]:
    """Frames a phone with a fixed ``jitter_buffer_s`` playout delay would have played as
    silence, in the audio packets (in sending order within each SSRC).

    Within a talkspurt frame *i* is due at ``t0 + (ts_i - ts_0) / 8000 + jitter_buffer_s``,
    ``t0`` the arrival of the talkspurt's first packet; one arriving after that is late (and
    the phone resynchronises on it, as adaptive buffers do); a sequence number missing between
    two packets of a talkspurt is lost.
    """
    found: list[Underrun] = []
    for spurt in _talkspurts(_in_sequence(voice(packets))):
        anchor_at, anchor_ts = spurt[0][1].at, spurt[0][1].timestamp
        previous = spurt[0][0]
        for number, packet in spurt[1:]:
            for _ in range(number - previous - 1):
                found.append(Underrun(packet.at, 0.0, lost=True))
            due = anchor_at + ((packet.timestamp - anchor_ts) & 0xFFFFFFFF) / SAMPLE_RATE
            late = packet.at - (due + jitter_buffer_s)
            if late > 0:
                found.append(Underrun(packet.at, late))
                anchor_at, anchor_ts = packet.at, packet.timestamp
            previous = number
    return sorted(found, key=lambda u: u.at)


def dead_air(
    packets: Iterable[Packet], start: float, end: float, min_s: float = 2.0,
    threshold: int = SILENCE_PEAK,
) -> list[tuple[float, float]]:
    """Stretches of ``min_s`` or more between ``start`` and ``end`` in which no audible packet
    arrived (silence packets and no packets alike), as (from, to) pairs."""
    if end <= start:
        return []
    heard = [p.at for p in voice(packets) if start <= p.at <= end and audible(p.peak, threshold)]
    quiet = []
    previous = start
    for at in [*heard, end]:
        if at - previous >= min_s:
            quiet.append((previous, at))
        previous = max(previous, at + FRAME_SAMPLES / SAMPLE_RATE)
    return quiet


# --- what the caller sends ------------------------------------------------------------------
def ulaw_encode(samples: np.ndarray) -> bytes:
    """G.711 mu-law bytes of 16-bit linear samples (ITU-T G.711, with the 0x84 bias)."""
    linear = np.clip(samples.astype(np.int32), -32635, 32635)
    sign = np.where(linear < 0, 0x80, 0x00)
    magnitude = np.abs(linear) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    encoded: bytes = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()
    return encoded


def frames(payload: bytes, size: int = FRAME_SAMPLES) -> list[bytes]:
    """``payload`` cut into 20 ms frames, the last one padded with mu-law silence (0xFF)."""
    return [payload[i:i + size].ljust(size, b"\xff") for i in range(0, len(payload), size)]


DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11,
               **{c: 12 + i for i, c in enumerate("ABCD")}}


def dtmf_payloads(digit: str, duration_ms: int = 160, volume: int = 10) -> list[tuple[int, bytes]]:
    """RFC 4733 payloads of one key press, one per 20 ms, as (duration in samples, payload):
    the event's running duration in each, the last three with the end bit (the usual
    retransmission of the end). Every one carries the timestamp of the event's start."""
    event = DTMF_EVENTS[digit.upper()]
    steps = max(1, duration_ms // 20)
    out = []
    for i in range(1, steps + 1):
        out.append((i * FRAME_SAMPLES, struct.pack("!BBH", event, volume, i * FRAME_SAMPLES)))
    end = struct.pack("!BBH", event, 0x80 | volume, steps * FRAME_SAMPLES)
    out.extend((steps * FRAME_SAMPLES, end) for _ in range(3))
    return out


def rtp_header(payload_type: int, seq: int, timestamp: int, ssrc: int,
               marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payload_type,
                       seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
