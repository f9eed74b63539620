"""The denoisers of the measurements (``benchmarks/speech/denoisers.py``): DeepFilterNet's
resampling, frames, delay and one new state per utterance; GTCRN's STFT around its model. The
C runtime and the ONNX session are faked here (a delay line, a pass-through); the real ones
are measured by ``feed.py``'s ``dfn`` and ``gtcrn`` variants."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.speech.denoisers import DFN_DELAY, DeepFilterNet, Gtcrn, resample


class FakeRuntime:
    """libDF's C API as a delay line of :data:`DFN_DELAY` samples, halving the level: what
    the real runtime's framing and latency look like, without a model."""

    frame = 480

    def __init__(self) -> None:
        self.states: dict[int, np.ndarray] = {}
        self.created = 0
        self.freed: list[int] = []
        self.models: list[bytes] = []

    def df_create(self, model: bytes, atten_lim_db: float, log_level: Any) -> int:
        self.created += 1
        self.models.append(model)
        self.states[self.created] = np.zeros(DFN_DELAY, np.float32)
        return self.created

    def df_get_frame_length(self, state: int) -> int:
        return self.frame

    def df_process_frame(self, state: int, inp: Any, out: Any) -> float:
        frame_in = np.ctypeslib.as_array(ctypes.cast(inp, ctypes.POINTER(ctypes.c_float)),
                                         (self.frame,))
        frame_out = np.ctypeslib.as_array(ctypes.cast(out, ctypes.POINTER(ctypes.c_float)),
                                          (self.frame,))
        line = np.concatenate([self.states[state], frame_in])
        frame_out[:] = 0.5 * line[: self.frame]
        self.states[state] = line[self.frame :].copy()
        return 0.0

    def df_free(self, state: int) -> None:
        self.freed.append(state)


def tone(hz: float, seconds: float, rate: int = 16_000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_resample_up_and_down_gives_the_utterance_back() -> None:
    """16 -> 48 -> 16 kHz by the spectrum is exact for a band-limited utterance: the 48 kHz
    version is three times as long and the way back returns the samples."""
    audio = tone(440, 0.5) + tone(3000, 0.5)
    high = resample(audio, 3, 1)
    assert len(high) == 3 * len(audio)
    assert np.allclose(high[::3], audio, atol=1e-4)
    assert np.allclose(resample(high, 1, 3), audio, atol=1e-5)


def test_resample_of_nothing_is_nothing() -> None:
    """An empty utterance stays empty at any rate."""
    assert len(resample(np.zeros(0, np.float32), 3, 1)) == 0


def test_deepfilternet_takes_its_delay_out_and_keeps_the_length() -> None:
    """The runtime's 30 ms delay is cut off: the denoised utterance lines up with the one
    given, sample for sample, and is as long, for a length that is no whole frame."""
    runtime = FakeRuntime()
    dfn = DeepFilterNet(runtime, Path("model.tar.gz"))
    audio = tone(700, 1.234)
    out = dfn.denoise(audio)
    assert len(out) == len(audio)
    assert np.allclose(out, 0.5 * audio, atol=1e-4)


def test_deepfilternet_gives_each_utterance_a_new_state() -> None:
    """Each utterance starts from a new state, freed after it (and the one built at load to
    learn the frame length, freed too): no caller's audio reaches the next one's words."""
    runtime = FakeRuntime()
    dfn = DeepFilterNet(runtime, Path("/models/dfn3.tar.gz"))
    assert dfn.frame == 480
    first = dfn.denoise(tone(300, 0.3))
    second = dfn.denoise(tone(300, 0.3))
    assert np.array_equal(first, second)
    assert runtime.created == 3
    assert runtime.freed == [1, 2, 3]
    assert set(runtime.models) == {b"/models/dfn3.tar.gz"}


def test_deepfilternet_fails_at_load_when_the_model_does_not() -> None:
    """A runtime that cannot build a state fails at load, not on a caller's utterance."""
    runtime = FakeRuntime()
    runtime.df_create = lambda *args: 0  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="could not load"):
        DeepFilterNet(runtime, Path("broken.tar.gz"))


class PassThrough:
    """GTCRN's ONNX session that hands each frame back as it came, caches and all."""

    def __init__(self) -> None:
        self.runs = 0

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.runs += 1
        return [feeds["mix"], feeds["conv_cache"] + 1, feeds["tra_cache"], feeds["inter_cache"]]


def test_gtcrn_frames_and_overlap_add_give_the_utterance_back() -> None:
    """With a model that changes nothing, GTCRN's STFT (512 points, hop 256) and its
    overlap-add return the utterance sample for sample, one model run a frame."""
    session = PassThrough()
    audio = tone(440, 0.7) + tone(2500, 0.7)
    out = Gtcrn(session).denoise(audio)
    assert len(out) == len(audio)
    assert np.allclose(out, audio, atol=1e-5)
    assert session.runs == (len(audio) + Gtcrn.HOP) // Gtcrn.HOP + 1
