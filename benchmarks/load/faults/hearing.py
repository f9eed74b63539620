"""What a caller heard, from a recording of the audio sent toward them.

The recording comes from an ARI snoop on the audio Asterisk sends toward the caller (:mod:`.ear`).
Its time must be the caller's time, dead air included: a stretch where the service sends the
caller nothing has to be there as silent samples, not skipped (that would hide exactly the dead
air we look for). A snoop records only the frames that pass through the channel; on the
hotline half of a caller on Asterisk 22 with the project's asterisk.conf, a call the service
leaves without audio still carries silent frames, so the recording is as long as the call.
The e2e check ``test_the_ear_hears_what_the_phone_hears`` (tests/e2e/test_fault_campaign.py)
answers a call, sends nothing for 3 s, and pins that down.

Pure functions over samples: the levels of 20 ms frames, then the longest run of silent frames
in the part of the call where the service owes the caller sound (from the call's start until a
human answers).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

FRAME_S = 0.02
# RMS of a 16-bit frame below which the caller hears nothing (about -50 dBFS): Asterisk's
# silence is exact zeros, a prompt's pauses between words stay well above.
SILENT_RMS = 100.0
WAV_HEADER = 44


@dataclass(frozen=True)
class DeadAir:
    """The longest stretch of silence the caller heard, in seconds from the call's start."""

    start_s: float
    length_s: float


def frame_levels(pcm: bytes, rate: int = 8000, frame_s: float = FRAME_S) -> list[float]:
    """RMS of each ``frame_s`` frame of 16-bit little-endian mono ``pcm`` (a last partial
    frame is dropped)."""
    per_frame = int(rate * frame_s)
    count = len(pcm) // (2 * per_frame)
    levels = []
    for index in range(count):
        chunk = pcm[index * 2 * per_frame:(index + 1) * 2 * per_frame]
        samples = struct.unpack(f"<{per_frame}h", chunk)
        levels.append(math.sqrt(sum(s * s for s in samples) / per_frame))
    return levels


def wav_levels(data: bytes, frame_s: float = FRAME_S) -> list[float]:
    """Frame levels of a WAV file as Asterisk records it (8 kHz, 16-bit mono). The header's
    sizes are not trusted: a recording cut short by a crash keeps its zero sizes."""
    rate = 8000
    if data[:4] == b"RIFF" and len(data) >= 28:
        rate = struct.unpack("<I", data[24:28])[0] or rate
    return frame_levels(data[WAV_HEADER:], rate, frame_s)


def longest_silence(
    levels: Sequence[float],
    lead_s: float = 0.0,
    until_s: float | None = None,
    frame_s: float = FRAME_S,
    silent_rms: float = SILENT_RMS,
    caller_turns: Sequence[tuple[float, float]] = (),
) -> DeadAir:
    """The longest run of silent frames before ``until_s`` (seconds since the call started).

    ``lead_s`` is the time between the call's start and the recording's first frame: nothing
    was recorded then, so it counts as silence joined to any silence the recording opens
    with (an honest upper bound on what the caller heard before the first prompt). A
    recording that stops early (the call ended) is cut at its end, not padded.
    ``caller_turns``: ``(start_s, end_s)`` stretches where the caller speaks; the service
    rightly stays quiet then (a prompt stops for a barge-in), so they end a silence.
    """
    best = DeadAir(0.0, lead_s)
    run_start, run = 0.0, lead_s
    for index, level in enumerate(levels):
        at = lead_s + index * frame_s
        if until_s is not None and at >= until_s:
            break
        if level < silent_rms and not any(a <= at < b for a, b in caller_turns):
            if run == 0.0:
                run_start = at
            run += frame_s
            if run > best.length_s:
                best = DeadAir(round(run_start, 3), round(run, 3))
        else:
            run = 0.0
    return best


def heard_sound(levels: Sequence[float], silent_rms: float = SILENT_RMS) -> bool:
    """Whether the recording holds any sound at all (a prompt, music on hold)."""
    return any(level >= silent_rms for level in levels)
