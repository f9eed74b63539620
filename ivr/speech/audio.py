"""Signed-linear audio: WAV files, sample-rate conversion and the telephone path.

Asterisk hands us 8 kHz 16-bit mono (slin); the recognizers' models are trained on 16 kHz.
Everything here is 16-bit little-endian mono PCM in ``bytes``.
"""

from __future__ import annotations

import warnings
import wave

with warnings.catch_warnings():
    # stdlib until 3.12 (deprecated there), the audioop-lts package from 3.13 (see pyproject)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop
from pathlib import Path

import numpy as np

TELEPHONE_RATE = 8000
MODEL_RATE = 16000
FRAME_MS = 20
SAMPLE_WIDTH = 2


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """Return (pcm16 mono, sample rate) of a 16-bit WAV file; stereo is mixed down."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != SAMPLE_WIDTH:
            raise ValueError(f"{path}: {8 * wav.getsampwidth()}-bit audio, want 16-bit PCM")
        pcm = wav.readframes(wav.getnframes())
        if wav.getnchannels() == 2:
            pcm = audioop.tomono(pcm, SAMPLE_WIDTH, 0.5, 0.5)
        elif wav.getnchannels() != 1:
            raise ValueError(f"{path}: {wav.getnchannels()} channels, want mono")
        return pcm, wav.getframerate()


def write_wav(path: str | Path, pcm: bytes, rate: int) -> None:
    """Write pcm16 mono as a WAV file (what Asterisk plays: 8 kHz 16-bit mono)."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(rate)
        wav.writeframes(pcm)


def resample(pcm: bytes, rate_in: int, rate_out: int) -> bytes:
    """Resample a whole utterance band-limited (FFT), so going down to 8 kHz does not alias.

    For streams use :class:`Upsampler` instead; this needs the whole signal.
    """
    if rate_in == rate_out or not pcm:
        return pcm
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    n_out = round(len(x) * rate_out / rate_in)
    spectrum = np.fft.rfft(x)
    bins = n_out // 2 + 1
    if bins <= len(spectrum):
        spectrum = spectrum[:bins]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(bins - len(spectrum), complex)])
    y = np.fft.irfft(spectrum, n_out) * (n_out / len(x))
    return np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()


def telephone_path(pcm: bytes, rate: int, line_noise_rms: float = 0.0, seed: int = 0) -> bytes:
    """What a caller's voice becomes on a G.711 line: 8 kHz, mu-law encoded and decoded.

    ``line_noise_rms`` adds the faint hiss of a real line (a seeded Gaussian, so the result
    is reproducible). Synthesized speech is otherwise framed by exact digital zeros, which no
    phone line delivers and which throw off the feature normalization of some recognizers
    (vosk's, measured).
    """
    narrow = resample(pcm, rate, TELEPHONE_RATE)
    if line_noise_rms > 0:
        x = np.frombuffer(narrow, dtype="<i2").astype(np.float64)
        x = x + np.random.default_rng(seed).normal(0.0, line_noise_rms, len(x))
        narrow = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
    return audioop.ulaw2lin(audioop.lin2ulaw(narrow, SAMPLE_WIDTH), SAMPLE_WIDTH)


class Upsampler:
    """Streaming conversion of caller audio to the model rate, chunk by chunk.

    For whole-number ratios (8 -> 16 kHz) a windowed-sinc interpolation filter with its state
    carried between chunks: 20 ms frames join seamlessly and nothing above the caller's 4 kHz
    band is invented. Other ratios fall back to ``audioop.ratecv`` (linear interpolation).
    """

    TAPS_PER_PHASE = 16

    def __init__(self, rate_in: int, rate_out: int = MODEL_RATE) -> None:
        self.rate_in = rate_in
        self.rate_out = rate_out
        self._state: tuple[int, tuple[tuple[int, int], ...]] | None = None
        self._factor = rate_out // rate_in if rate_out % rate_in == 0 else 0
        if self._factor > 1:
            n = self.TAPS_PER_PHASE * self._factor
            t = (np.arange(n) - n // 2) / self._factor
            kernel = np.sinc(t) * np.kaiser(n, 8.0)
            # phase p of the output uses taps p, p+L, p+2L, ... of the kernel
            self._phases = kernel.reshape(self.TAPS_PER_PHASE, self._factor).T[:, ::-1]
            self._phases = self._phases / self._phases.sum(axis=1, keepdims=True)
            self._history = np.zeros(self.TAPS_PER_PHASE - 1)

    def convert(self, pcm: bytes) -> bytes:
        if self.rate_in == self.rate_out or not pcm:
            return pcm
        if self._factor <= 1:
            out, self._state = audioop.ratecv(
                pcm, SAMPLE_WIDTH, 1, self.rate_in, self.rate_out, self._state
            )
            return out
        x = np.concatenate([self._history, np.frombuffer(pcm, "<i2").astype(np.float64)])
        self._history = x[len(x) - (self.TAPS_PER_PHASE - 1) :]
        windows = np.lib.stride_tricks.sliding_window_view(x, self.TAPS_PER_PHASE)
        y = (windows @ self._phases.T).reshape(-1)
        return np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()


def frame_energy(pcm: bytes) -> float:
    """Root-mean-square level of a frame (0..32768), the input of the voice detector."""
    return float(audioop.rms(pcm, SAMPLE_WIDTH)) if pcm else 0.0


def thinking_cue(seconds: float, rate: int = TELEPHONE_RATE) -> bytes:
    """``seconds`` of the cue a caller hears while the recognizer decides: a soft 100 ms
    two-tone blip (523 and 659 Hz, about -23 dBFS, raised-cosine edges) every 600 ms, so
    the longest quiet is 0.5 s (not dead air), and nothing in it sounds like a prompt."""
    period, blip = int(0.6 * rate), int(0.1 * rate)
    t = np.arange(blip) / rate
    tone = 0.5 * (np.sin(2 * np.pi * 523.25 * t) + np.sin(2 * np.pi * 659.25 * t))
    envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02) ** 2  # 20 ms fades
    one = np.zeros(period)
    one[:blip] = 2300 * tone * envelope
    cycles = max(1, int(np.ceil(seconds * rate / period)))
    return np.tile(one, cycles)[: int(seconds * rate)].astype("<i2").tobytes()
