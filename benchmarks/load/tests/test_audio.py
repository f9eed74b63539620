"""The caller-side audio analysis: prompts, late and lost frames, dead air, the encoders."""

from __future__ import annotations

import numpy as np

from benchmarks.load.audio import (
    PCMU,
    ULAW_TO_LINEAR,
    Packet,
    dead_air,
    dtmf_payloads,
    first_audio_at,
    frames,
    parse_rtp,
    rtp_header,
    ulaw_encode,
    ulaw_peak,
    underruns,
)

SILENT, LOUD = 0, 8000


def stream(start: float, count: int, peak: int = LOUD, seq0: int = 0, ts0: int = 0,
           spacing: float = 0.02, ssrc: int = 7) -> list[Packet]:
    return [Packet(start + i * spacing, (seq0 + i) & 0xFFFF, ts0 + 160 * i, ssrc, i == 0,
                   PCMU, peak) for i in range(count)]


def test_ulaw_round_trip_and_peak() -> None:
    """Encoding then decoding mu-law stays within G.711's quantisation step, and the peak of a
    payload is its loudest sample to within 128."""
    samples = np.array([0, 100, -100, 1000, -1000, 8000, -8000, 32000], dtype=np.int16)
    decoded = [ULAW_TO_LINEAR[b] for b in ulaw_encode(samples)]
    for original, back in zip(samples.tolist(), decoded, strict=True):
        assert abs(original - back) <= max(8, abs(original) // 16)
    assert 30000 <= ulaw_peak(ulaw_encode(samples)) <= 32768
    assert ulaw_peak(b"\xff" * 160) == 0  # mu-law silence
    assert ulaw_peak(b"") == 0


def test_parse_rtp_reads_header_and_peak() -> None:
    """A PCMU datagram gives its sequence, timestamp, SSRC, marker and payload peak; a
    datagram that is not RTP v2 gives None."""
    payload = ulaw_encode(np.full(160, 4000, dtype=np.int16))
    packet = parse_rtp(rtp_header(PCMU, 5, 800, 42, marker=True) + payload, at=1.5)
    assert packet is not None
    assert (packet.seq, packet.timestamp, packet.ssrc, packet.marker) == (5, 800, 42, True)
    assert 3800 <= packet.peak <= 4100 and packet.at == 1.5
    assert parse_rtp(b"\x00" * 20, at=0) is None
    assert parse_rtp(b"\x80", at=0) is None


def test_first_audio_skips_silence() -> None:
    """Comfort silence before the welcome prompt does not count as the first prompt."""
    packets = stream(10.0, 5, SILENT) + stream(10.1, 5, LOUD, seq0=5, ts0=800)
    assert first_audio_at(packets) == 10.1
    assert first_audio_at(stream(0, 3, SILENT)) is None


def test_steady_stream_has_no_underrun() -> None:
    """Packets 20 ms apart, a little jitter inside the buffer: nothing late, nothing lost."""
    packets = stream(0, 100)
    jittered = [Packet(p.at + (0.03 if i % 7 == 0 else 0), p.seq, p.timestamp, p.ssrc,
                       p.marker, p.payload_type, p.peak) for i, p in enumerate(packets)]
    assert underruns(jittered, jitter_buffer_s=0.06) == []


def test_stall_and_loss_are_underruns() -> None:
    """A 200 ms stall in the middle of a prompt is one late frame (the buffer resyncs after
    it); a missing sequence number is a lost frame."""
    packets = stream(0, 50)
    stalled = packets[:20] + [Packet(p.at + 0.2, p.seq, p.timestamp, p.ssrc, p.marker,
                                     p.payload_type, p.peak) for p in packets[20:]]
    found = underruns(stalled, jitter_buffer_s=0.06)
    assert len(found) == 1 and abs(found[0].late_s - 0.14) < 1e-6 and not found[0].lost
    holed = packets[:10] + packets[11:]
    lost = underruns(holed)
    assert [u.lost for u in lost] == [True]


def test_a_new_prompt_is_a_new_talkspurt() -> None:
    """A pause between two prompts (marker bit, timestamp jump) is not an underrun."""
    first = stream(0, 10)
    second = stream(3.0, 10, seq0=10, ts0=10_000_000)
    assert underruns(first + second) == []


def test_sequence_wraps_without_loss() -> None:
    """The 16-bit sequence number wrapping inside a prompt loses nothing."""
    assert underruns(stream(0, 20, seq0=65530)) == []


def test_dead_air_between_prompts() -> None:
    """Silence packets and missing packets alike count as dead air; stretches shorter than
    min_s do not."""
    packets = stream(0, 50) + stream(1.0, 150, SILENT, seq0=50, ts0=8000) + stream(
        4.0, 50, seq0=200, ts0=32000) + stream(6.0, 10, seq0=250, ts0=48000)
    quiet = dead_air(packets, start=0, end=8.0, min_s=2.0)
    assert [(round(a, 2), round(b, 2)) for a, b in quiet] == [(1.0, 4.0)]
    assert [(round(a, 2), round(b, 2)) for a, b in dead_air(packets, 0, 8.0, 1.5)] == [
        (1.0, 4.0), (6.2, 8.0)]
    assert dead_air([], start=5, end=5) == []
    assert dead_air([], start=0, end=3) == [(0, 3)]


def test_dtmf_payloads_follow_rfc4733() -> None:
    """A key press is one event with growing durations and three end packets."""
    payloads = dtmf_payloads("#", duration_ms=100)
    assert len(payloads) == 5 + 3
    assert all(p[0] == 11 for _, p in payloads)
    assert [p[1] & 0x80 for _, p in payloads] == [0] * 5 + [0x80] * 3
    assert payloads[-1][0] == 800


def test_frames_pad_with_silence() -> None:
    """The last frame of a sentence is padded with mu-law silence to 20 ms."""
    cut = frames(b"\x00" * 200)
    assert [len(f) for f in cut] == [160, 160] and cut[1].endswith(b"\xff" * 120)
