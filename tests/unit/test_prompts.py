"""Prompts: the config schema, the resampler, atomic WAV writes, the build cache, real piper."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from ivr import prompts as prompts_module
from ivr.prompts import (
    MANIFEST,
    PiperSynthesizer,
    PromptsConfig,
    build_prompts,
    missing_prompts,
    resample,
    synthesize_to_wav,
    to_pcm16,
    write_wav_atomically,
)

REPO = Path(__file__).resolve().parents[2]


def config(**prompts: str) -> PromptsConfig:
    return PromptsConfig(prompts=prompts)


class ToneSynth(PiperSynthesizer):
    """Stands in for piper in cache tests: a 0.1 s tone per text, and a count of syntheses."""

    def __init__(self, fingerprint: str = "tone-voice") -> None:
        self.voice = fingerprint
        self.length_scale = 1.0
        self.fingerprint = fingerprint
        self.syntheses = 0
        self.loads = 0

    def synthesize(self, text: str, rate: int = 8000) -> np.ndarray:
        self.syntheses += 1
        return np.sin(2 * np.pi * 440 * np.arange(rate // 10) / rate)


def read_wav(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        samples = np.frombuffer(wav.readframes(params.nframes), dtype="<i2")
    return params, samples


# --- schema -----------------------------------------------------------------------------------


def test_variants_render_one_prompt_per_value():
    """A variant family renders <family>-<key> with the value in its one placeholder."""
    cfg = PromptsConfig(
        prompts={"goodbye": "Goodbye."},
        variants={
            "confirm": {
                "text": "That sounds like {category}. Press 1 if right, 2 for the menu.",
                "values": {"fault": "a fault or outage", "complaint": "a complaint"},
            }
        },
    )
    assert cfg.texts() == {
        "goodbye": "Goodbye.",
        "confirm-fault": "That sounds like a fault or outage. Press 1 if right, 2 for the menu.",
        "confirm-complaint": "That sounds like a complaint. Press 1 if right, 2 for the menu.",
    }


@pytest.mark.parametrize("name", ["Welcome", "../etc/passwd", "a/b", "menu main", "", "-x"])
def test_prompt_names_must_be_plain_sound_file_names(name):
    """A prompt name becomes a file name under the sounds dir: no case, slashes, spaces."""
    with pytest.raises(ValidationError, match="not a sound name"):
        config(**{name: "Hello."})


@pytest.mark.parametrize("text", ["No placeholder.", "{a} and {b}", "Positional {}"])
def test_variant_text_needs_exactly_one_named_placeholder(text):
    """A variant text with zero, two or a positional placeholder is refused."""
    with pytest.raises(ValidationError, match="exactly one named"):
        PromptsConfig(prompts={}, variants={"confirm": {"text": text, "values": {"x": "y"}}})


def test_rendered_variant_may_not_shadow_a_prompt():
    """A rendered variant name that is also a plain prompt is refused (which text wins?)."""
    with pytest.raises(ValidationError, match="also defined"):
        PromptsConfig(
            prompts={"confirm-fault": "Hi."},
            variants={"confirm": {"text": "Is it {c}?", "values": {"fault": "a fault"}}},
        )


def test_empty_text_and_unknown_keys_are_refused():
    """A blank prompt text and a misspelt top-level key are both errors, not silence."""
    with pytest.raises(ValidationError, match="has no text"):
        config(welcome="  ")
    with pytest.raises(ValidationError, match="Extra inputs"):
        PromptsConfig.model_validate({"prompts": {"a": "b"}, "voise": "x"})


def test_repository_prompts_cover_the_menus_and_menu_notices():
    """config/prompts.yaml validates and defines every prompt menus.yaml and the menu walker's
    notices (invalid-choice, no-input) play, and a confirmation for each menu category."""
    cfg = PromptsConfig.model_validate(yaml.safe_load((REPO / "config/prompts.yaml").read_text()))
    menus = yaml.safe_load((REPO / "config/menus.yaml").read_text())
    names = set(cfg.texts())
    needed = {menu["prompt"] for menu in menus["menus"].values()} | {"invalid-choice", "no-input"}
    assert needed <= names
    categories = {
        option["request"]
        for menu in menus["menus"].values()
        for option in menu["options"].values()
        if "request" in option
    }
    assert {f"confirm-{c}" for c in categories} <= names


# --- audio (pure) -----------------------------------------------------------------------------


def tone_level_db(samples: np.ndarray, rate: int, freq: float) -> tuple[float, float]:
    """(frequency of the spectral peak, RMS level in dB relative to a full-scale sine)."""
    body = samples[rate // 20 : -rate // 20]
    spectrum = np.abs(np.fft.rfft(body * np.hanning(len(body))))
    peak = np.fft.rfftfreq(len(body), 1 / rate)[spectrum.argmax()]
    rms = np.sqrt(np.mean(body**2))
    return peak, 20 * np.log10(rms / np.sqrt(0.5))


def test_resampler_keeps_the_telephone_band():
    """22050 -> 8000 Hz: tones at 1 and 3 kHz keep their frequency and level (within 0.1 dB),
    and one second of input gives one second of output."""
    t = np.arange(22050) / 22050
    for freq in (1000, 3000):
        out = resample(np.sin(2 * np.pi * freq * t), 22050, 8000)
        assert len(out) == 8000
        peak, level = tone_level_db(out, 8000, freq)
        assert peak == pytest.approx(freq, abs=2)
        assert abs(level) < 0.1


@pytest.mark.parametrize("freq", [4500, 6000, 9000])
def test_resampler_does_not_fold_high_frequencies_into_the_band(freq):
    """Above the 4 kHz output Nyquist, tones are filtered out (below -60 dB) instead of
    aliasing into the band as they would with plain decimation."""
    t = np.arange(22050) / 22050
    out = resample(np.sin(2 * np.pi * freq * t), 22050, 8000)
    _, level = tone_level_db(out, 8000, freq)
    assert level < -60


def test_pcm16_conversion_leaves_3_db_of_headroom():
    """Samples are peak-normalized to -3 dBFS (no clipping in G.711), silence stays silent."""
    pcm = np.frombuffer(to_pcm16(np.array([0.0, 0.5, -2.0, 1.0])), dtype="<i2")
    assert np.max(np.abs(pcm)) == round(32767 * 10 ** (-3 / 20))
    assert to_pcm16(np.zeros(4)) == b"\0" * 8


def test_wav_is_written_atomically_and_readable_by_others(tmp_path):
    """A WAV write replaces the old file in one step, leaves no temporary file and is
    world-readable (Asterisk may run as another user)."""
    target = tmp_path / "welcome.wav"
    write_wav_atomically(target, b"\1\0" * 800, 8000)
    params, samples = read_wav(target)
    assert (params.nchannels, params.sampwidth, params.framerate, len(samples)) == (1, 2, 8000, 800)
    assert os.stat(target).st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["welcome.wav"]


def test_failed_wav_write_keeps_the_old_file(tmp_path, monkeypatch):
    """If the write fails before the rename, the old prompt is untouched and the temporary
    file is removed: Asterisk never plays a truncated prompt."""
    target = tmp_path / "welcome.wav"
    write_wav_atomically(target, b"\1\0" * 800, 8000)
    before = target.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(prompts_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_wav_atomically(target, b"\2\0" * 1600, 8000)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["welcome.wav"]


# --- the build cache --------------------------------------------------------------------------


def test_build_skips_unchanged_prompts(tmp_path):
    """A second build with the same texts and voice synthesizes nothing."""
    synth = ToneSynth()
    cfg = config(welcome="Welcome.", goodbye="Goodbye.")
    first = build_prompts(cfg, tmp_path, synth=synth)
    assert sorted(first.built) == ["goodbye", "welcome"]
    second = build_prompts(cfg, tmp_path, synth=synth)
    assert second.built == [] and sorted(second.cached) == ["goodbye", "welcome"]
    assert synth.syntheses == 2
    assert missing_prompts(cfg, tmp_path, synth=synth) == []


def test_changed_text_deleted_file_or_other_voice_rebuild(tmp_path):
    """Only the prompt whose text changed or whose file vanished is rebuilt; another voice
    rebuilds everything; force rebuilds everything."""
    synth = ToneSynth()
    build_prompts(config(welcome="Welcome.", goodbye="Goodbye."), tmp_path, synth=synth)
    changed = config(welcome="Welcome to the hotline.", goodbye="Goodbye.")
    assert missing_prompts(changed, tmp_path, synth=synth) == ["welcome"]
    assert build_prompts(changed, tmp_path, synth=synth).built == ["welcome"]
    (tmp_path / "goodbye.wav").unlink()
    assert build_prompts(changed, tmp_path, synth=synth).built == ["goodbye"]
    other_voice = ToneSynth("another-voice")
    assert sorted(missing_prompts(changed, tmp_path, synth=other_voice)) == ["goodbye", "welcome"]
    assert len(build_prompts(changed, tmp_path, force=True, synth=synth).built) == 2


def test_corrupt_manifest_means_rebuild_not_crash(tmp_path):
    """An unreadable manifest is treated as empty: prompts are rebuilt, the build succeeds."""
    synth = ToneSynth()
    cfg = config(welcome="Welcome.")
    build_prompts(cfg, tmp_path, synth=synth)
    (tmp_path / MANIFEST).write_text("{not json")
    assert build_prompts(cfg, tmp_path, synth=synth).built == ["welcome"]


# --- real piper -------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_piper_prompt_is_telephone_wav_with_speech(tmp_path):
    """With the real voice: an 8 kHz mono 16-bit WAV of plausible length for the text, with
    speech energy (not silence) peaking at -3 dBFS; a rebuild reuses it and the voice was
    loaded once."""
    synth = PiperSynthesizer()
    cfg = config(goodbye="Thank you for calling. Goodbye.")
    report = build_prompts(cfg, tmp_path, synth=synth)
    assert report.built == ["goodbye"]
    params, samples = read_wav(tmp_path / "goodbye.wav")
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    duration = len(samples) / 8000
    assert 1.0 < duration < 4.0
    rms_db = 20 * np.log10(np.sqrt(np.mean(samples.astype(float) ** 2)) / 32768)
    assert rms_db > -30
    assert np.max(np.abs(samples)) == round(32767 * 10 ** (-3 / 20))
    assert build_prompts(cfg, tmp_path, synth=synth).cached == ["goodbye"]
    assert (synth.loads, synth.syntheses) == (1, 1)


@pytest.mark.slow
def test_synthesize_to_wav_writes_any_rate(tmp_path):
    """synthesize_to_wav speaks arbitrary text into a mono 16-bit WAV at the asked rate (16 kHz
    for recognizers), about as long at either rate."""
    at_16k = synthesize_to_wav("My internet is down.", tmp_path / "say16.wav", rate=16000)
    at_8k = synthesize_to_wav("My internet is down.", tmp_path / "say8.wav")
    p16, s16 = read_wav(at_16k)
    p8, s8 = read_wav(at_8k)
    assert (p16.framerate, p16.nchannels, p16.sampwidth) == (16000, 1, 2)
    assert p8.framerate == 8000
    assert len(s16) / 16000 == pytest.approx(len(s8) / 8000, abs=0.5)
    assert 0.6 < len(s8) / 8000 < 4.0
