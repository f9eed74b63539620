"""The check after hangup: is the recording there, and as long as the conversation was?

Pure arithmetic (:func:`check`) over what :func:`wav_seconds` read from the raw legs. A
missing or short recording is an alarm (event ``RECORDMISSING``/``RECORDSHORT`` and the
counter below), never silence; the recording still goes on to be stored when there is one.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Counter

__all__ = ["CHECKS_FAILED", "Verdict", "check", "talk_seconds", "wav_seconds"]

CHECKS_FAILED = Counter("hotline_recording_checks_failed",
                        "Recordings found missing or short after hangup", ["problem"])


@dataclass(frozen=True)
class Verdict:
    """``problem``: ``None`` (fine), ``missing`` or ``short``; ``detail`` says why."""

    problem: str | None
    detail: str = ""
    seconds: float = 0.0  # the shortest leg


def talk_seconds(talk: Sequence[tuple[float, float]], until: float | None = None) -> float:
    """The answered time, each stretch clipped at ``until`` (the recording cut there)."""
    total = 0.0
    for start, end in talk:
        end = end if until is None else min(end, until)
        total += max(0.0, end - start)
    return total


def check(legs: Sequence[float | None], talk: float, tolerance_s: float) -> Verdict:
    """``legs``: each raw leg's seconds (None: no file). Short: the shortest leg is more
    than ``tolerance_s`` under the talk time (the file also holds the ring before it)."""
    if not legs or any(seconds is None for seconds in legs):
        return Verdict("missing", "no raw file for " + ", ".join(
            f"leg {i + 1}" for i, s in enumerate(legs) if s is None) if legs else "no legs")
    shortest = min(s for s in legs if s is not None)
    if shortest < talk - tolerance_s:
        return Verdict("short", f"{shortest:.1f} s recorded for {talk:.1f} s of talk",
                       shortest)
    return Verdict(None, seconds=shortest)


def wav_seconds(path: Path) -> float | None:
    """Seconds of audio in a WAV file from its format and its size (the header's own length
    is only right once Asterisk closed it); None when there is no such file or no WAV."""
    try:
        with open(path, "rb") as wav:
            head = wav.read(64)
            size = wav.seek(0, 2)
    except OSError:
        return None
    if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    at = 12
    while at + 8 <= len(head):
        chunk, length = head[at:at + 4], struct.unpack("<I", head[at + 4:at + 8])[0]
        if chunk == b"fmt " and at + 24 <= len(head):
            channels, rate = struct.unpack("<HI", head[at + 10:at + 16])
            bits = struct.unpack("<H", head[at + 22:at + 24])[0]
            data_at = at + 8 + length + 8  # the "data" chunk header follows "fmt "
            per_second = rate * channels * max(bits // 8, 1)
            return max(0, size - data_at) / per_second if per_second else None
        at += 8 + length
    return None
