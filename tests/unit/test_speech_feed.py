"""The variants of ``benchmarks/speech/feed.py`` (what Moonshine is fed): each changes the
audio as it says, and the decoder that bars end-of-text at the first step does only that."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.speech import feed
from ivr.speech import moonshine


def noise(seconds: float, rms: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, rms, round(seconds * 16000)).astype(np.float32)


def tone(seconds: float, peak: float) -> np.ndarray:
    return (np.sin(np.arange(round(seconds * 16000)) / 3.0) * peak).astype(np.float32)


def test_level_brings_the_loud_blocks_to_minus_20_dbfs_within_its_gain_bounds() -> None:
    quiet = np.concatenate([tone(1.0, 0.02), noise(1.0, 0.001)])
    loud = feed.level(quiet)
    top = np.sort(np.sqrt(np.square(loud.reshape(200, 160)).mean(axis=1)))[-60:]
    assert np.sqrt(np.mean(np.square(top))) == pytest.approx(0.1, rel=0.05)
    assert np.abs(feed.level(tone(1.0, 1e-4))).max() == pytest.approx(8e-4, rel=0.01)


def test_line_noise_is_the_pre_roll_mirrored_to_length() -> None:
    audio = np.concatenate([noise(0.2, 0.05, 1), tone(1.0, 0.3)])
    padding = feed.line_noise(audio, 9000)
    assert len(padding) == 9000
    assert np.array_equal(padding[:3200], audio[:3200])
    assert np.array_equal(padding[3200:6400], audio[:3200][::-1])


def test_denoise_without_subtraction_gives_the_audio_back_and_lowers_stationary_noise() -> None:
    audio = noise(1.0, 0.05)
    assert np.allclose(feed.denoise(audio, over=0.0, floor=1.0), audio, atol=1e-6)
    assert np.std(feed.denoise(audio)) < 0.6 * np.std(audio)


def test_trim_cuts_the_line_s_noise_after_the_words_to_the_margin() -> None:
    audio = np.concatenate([noise(0.3, 0.03, 1), tone(1.0, 0.3) + noise(1.0, 0.03, 2),
                            noise(0.7, 0.03, 3)])
    assert len(feed.trim(audio)) == round((0.3 + 1.0 + 0.15) * 16000)
    words_first = np.concatenate([tone(1.0, 0.3), tone(0.5, 0.1), noise(0.7, 0.01)])
    assert len(feed.trim(words_first)) == round((1.5 + 0.15) * 16000)
    assert len(feed.trim(noise(2.0, 0.05))) == 32000


class Session:
    """A decoder session whose logits favour the given token at each step."""

    def __init__(self, tokens: list[int], vocabulary: int = 8) -> None:
        self.tokens, self.vocabulary, self.step = tokens, vocabulary, 0

    def run(self, _names: Any, inputs: dict[str, Any]) -> list[np.ndarray]:
        if "input_values" in inputs:
            return [np.zeros((1, 4, 2), np.float32)]
        logits = np.zeros((1, 1, self.vocabulary), np.float32)
        logits[0, 0, self.tokens[min(self.step, len(self.tokens) - 1)]] = 5.0
        logits[0, 0, 5] = 3.0  # the runner-up: what is said when end-of-text is barred
        self.step += 1
        cache = np.zeros((1, moonshine.HEADS, 1, moonshine.HEAD_DIM), np.float32)
        return [logits] + [cache] * (4 * moonshine.LAYERS)


class Model:
    def __init__(self, tokens: list[int]) -> None:
        self._encoder = Session([])
        self._decoder = Session(tokens)
        self._tokens = [b"<unk>", b"<s>", b"</s>", b"\xe2\x96\x81a", b"\xe2\x96\x81b",
                        b"\xe2\x96\x81you", b"c", b"d"]


def test_barring_end_of_text_at_the_first_step_takes_the_runner_up_and_says_so() -> None:
    end = moonshine.END_TOKEN
    greedy = feed.decode(Model([end]), np.zeros(1600, np.float32), 10, bar_first_end=False)
    assert greedy["text"] == "" and not greedy["barred"] and greedy["p_end0"] > 0.8
    barred = feed.decode(Model([end, end]), np.zeros(1600, np.float32), 10, bar_first_end=True)
    assert barred["text"] == "you" and barred["barred"] and barred["tokens"] == 1
    assert barred["p_end0"] == greedy["p_end0"]
    words = feed.decode(Model([3, 4, end]), np.zeros(1600, np.float32), 10, bar_first_end=True)
    assert words["text"] == "a b" and not words["barred"]


def test_a_line_that_goes_on_after_the_words_repeats_its_first_200_ms() -> None:
    pcm = (np.arange(8000) % 100 * 10).astype("<i2")
    tail = np.frombuffer(feed.line_tail(pcm.tobytes()), "<i2")
    assert len(tail) == 12000
    assert np.array_equal(tail[:1600], pcm[:1600])
    assert np.array_equal(tail[1600:3200], pcm[:1600][::-1])


def test_boost_raises_a_quiet_caller_and_leaves_a_loud_one() -> None:
    loud = tone(1.0, 0.5)
    assert np.array_equal(feed.preparation("boost")(loud), loud)
    assert np.abs(feed.preparation("boost")(tone(1.0, 0.05))).max() > 0.1
