"""What the caller heard, from recorded samples: frame levels and the longest dead air."""

from __future__ import annotations

import struct

from benchmarks.load.faults.hearing import (
    frame_levels,
    heard_sound,
    longest_silence,
    wav_levels,
)

RATE = 8000


def pcm(*parts: tuple[float, int]) -> bytes:
    """``(seconds, amplitude)`` parts as 16-bit samples: a square wave of that amplitude."""
    samples: list[int] = []
    for seconds, amplitude in parts:
        samples += [amplitude if i % 2 else -amplitude for i in range(int(seconds * RATE))]
    return struct.pack(f"<{len(samples)}h", *samples)


def test_levels_are_the_rms_of_each_20_ms_frame() -> None:
    """A frame of a square wave of amplitude A has RMS A; a partial last frame is dropped."""
    levels = frame_levels(pcm((0.04, 1000), (0.02, 0), (0.01, 500)))
    assert levels == [1000.0, 1000.0, 0.0]


def test_longest_silence_in_the_owed_window() -> None:
    """The longest run of silent frames is found, with its start, and silence after
    ``until_s`` (a human answered) does not count."""
    levels = frame_levels(pcm((1, 3000), (1.5, 0), (1, 3000), (3, 0)))
    dead = longest_silence(levels, until_s=3.6)
    assert (dead.start_s, dead.length_s) == (1.0, 1.5)
    assert longest_silence(levels).length_s == 3.0


def test_time_before_the_recording_counts_as_silence() -> None:
    """The gap between placing the call and the first recorded frame joins a silence the
    recording opens with: an upper bound on the wait for the first prompt."""
    levels = frame_levels(pcm((1.0, 0), (1, 3000)))
    dead = longest_silence(levels, lead_s=0.3)
    assert (dead.start_s, dead.length_s) == (0.0, 1.3)


def test_quiet_noise_is_silence_and_a_prompt_is_not() -> None:
    """Below the threshold (about -50 dBFS) the caller hears nothing; a prompt is sound."""
    assert not heard_sound(frame_levels(pcm((1, 50))))
    assert heard_sound(frame_levels(pcm((1, 0), (0.02, 2000))))


def test_wav_of_a_call_cut_short_is_read_whatever_its_header_says() -> None:
    """A WAV whose header still says zero bytes (Asterisk stopped mid-call) is read by its
    samples; the rate comes from the header."""
    header = b"RIFF" + b"\0" * 4 + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, RATE,
                                                              RATE * 2, 2, 16)
    header += b"data" + b"\0" * 4
    assert len(header) == 44
    assert wav_levels(header + pcm((0.1, 1000))) == [1000.0] * 5


def test_the_callers_own_words_are_not_dead_air() -> None:
    """While the caller speaks (a barge-in stopped the prompt) the silence they hear is
    their turn: it splits the silence around it."""
    levels = frame_levels(pcm((1, 3000), (3, 0), (1, 3000)))
    assert longest_silence(levels).length_s == 3.0
    dead = longest_silence(levels, caller_turns=[(1.5, 3.0)])
    assert (dead.start_s, dead.length_s) == (3.0, 1.0)
