"""The pure scores of ``benchmarks/speech/gate_scores.py``, the measurement of candidate
non-speech gates: the endpointer's cut, the level, the pitch continuity, the separation."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.speech import gate_scores
from ivr.speech.schema import EndpointingConfig

RATE = gate_scores.RATE


def pcm(x: np.ndarray) -> bytes:
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def glide(seconds: float, start_hz: float, end_hz: float, amplitude: float = 4000.0) -> bytes:
    """One voice: a pitch moving smoothly, with a few harmonics."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(np.linspace(start_hz, end_hz, len(t))) / RATE
    return pcm(amplitude * sum(np.sin(k * phase) / k for k in (1, 2, 3)))


def test_the_utterance_is_what_the_endpointer_passes_on() -> None:
    """Silence, a second of voice, silence: the verdict is the end of speech, and the
    audio passed on covers the voice (pre-roll included), not the leading silence."""
    voice = glide(1.0, 120, 160)
    call = b"\0" * 3200 + voice + b"\0" * 3200
    verdict, audio = gate_scores.utterance(call, EndpointingConfig())
    assert verdict == "end_of_speech"
    assert len(voice) <= len(audio) < len(voice) + 3200 + 16000 * 0.8


def test_a_steady_level_is_no_speech_when_the_modulation_gate_is_on() -> None:
    hum = glide(2.0, 200, 200)
    verdict, audio = gate_scores.utterance(hum, EndpointingConfig(min_modulation_db=11))
    assert verdict == "no_speech"
    assert audio  # what was passed on before the verdict


def test_level_is_the_loud_frames_rms() -> None:
    quiet, loud = np.full(160 * 10, 100.0), np.full(160 * 90, 1000.0)
    assert gate_scores.level(pcm(np.concatenate([quiet, loud]))) == pytest.approx(1000.0)
    assert gate_scores.level(b"") == 0.0


def test_one_voice_continues_its_pitch_two_alternating_ones_do_not() -> None:
    """A glide keeps its pitch from frame to frame; two voices taking 20 ms turns jump."""
    assert gate_scores.pitch_continuity(glide(1.0, 110, 140)) > 0.9
    low, high = glide(1.0, 110, 110), glide(1.0, 170, 170)
    turns = b"".join((low if i % 2 else high)[i * 320 : (i + 1) * 320] for i in range(50))
    assert gate_scores.pitch_continuity(turns) < 0.1
    assert gate_scores.pitch_continuity(b"\0" * 16000) == 0.0


def test_frame_pitch_finds_the_fundamental() -> None:
    window = np.frombuffer(glide(0.04, 150, 150), dtype="<i2").astype(np.float64)
    pitch = gate_scores.frame_pitch(window)
    assert pitch is not None and pitch == pytest.approx(150, rel=0.05)
    noise = np.random.default_rng(1).normal(0, 3000, 320)
    assert gate_scores.frame_pitch(noise) is None


def test_separation_keeps_every_speech_call_and_counts_what_falls_below() -> None:
    rows = [
        {"kind": "speech:ulaw", "score": 0.6},
        {"kind": "speech:familiar", "score": 0.5},
        {"kind": "tv", "score": 0.7},
        {"kind": "music", "score": 0.1},
        {"kind": "cough", "score": 0.2},
        {"kind": "hiss", "verdict": "no_speech"},
    ]
    found = gate_scores.separation(rows, "score")
    assert found == {"keeps_all_speech_below": 0.5, "nonspeech_caught": 2,
                     "nonspeech_passed_endpointer": 3,
                     "caught_by_kind": {"cough": 1, "music": 1}}
