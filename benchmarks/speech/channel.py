"""What a phone call does to a caller's voice, and sounds that are not a caller speaking.

Pure numpy over 8 kHz 16-bit mono PCM (``bytes``), seeded, so every condition is the same
audio on every machine and every run. Only GSM 06.10 and AMR-NB go through Debian's ``sox``
(``apt-get install sox libsox-fmt-all``), and Opus through Debian's ``ffmpeg`` (libopus; sox
has no Opus encoder): there is no Python codec for them. A TV's room is sox's ``reverb``.

A condition is a chain of steps named in one string, e.g. ``band+gsm+babble:10``:

- ``clean``: nothing (the voice resampled to 8 kHz);
- ``band``: the telephone band, 300-3400 Hz;
- ``ulaw`` / ``alaw``: G.711 encoded and decoded; ``gsm``: GSM 06.10 full rate (13 kbit/s);
  ``amr``: AMR-NB at 7.95 kbit/s (mobile calls); ``opus[:KBITS]``: Opus at ``KBITS`` kbit/s
  (default 12), narrowband, libopus's VoIP mode, 20 ms frames (a softphone or WebRTC caller at a
  low rate, decoded to signed linear before it reaches us, as Asterisk does);
  ``opus:KBITS:LOSS``: the same through libopus itself (Debian's ``libopus0``, which ``ffmpeg``
  brings), ``LOSS`` percent of the 20 ms packets lost at random (seeded) and concealed by the
  decoder (:mod:`opus_loss`);
- ``white:SNR``, ``babble:SNR``, ``street:SNR``: noise at SNR dB below the speech (speech power
  measured over its voiced frames); babble is six other utterances talking at once;
- ``tv:SNR``: a TV across the room speaking under the caller (:func:`tv_source`), its voiced
  frames SNR dB below the caller's;
- ``gain:DB``: level change (a quiet or a loud handset);
- ``clip:FRACTION``: the signal driven into the converter's limits, clipped at that fraction
  of full scale after being raised to reach it.

How a call ends after the words (:func:`open_line`): a real line does not fall silent when
the caller stops; its noise (and its codec's) goes on until the endpointer ends the
utterance. Pad the voice with :func:`open_line` before :func:`apply` and the condition's
noise and codec run over the whole call.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from collections.abc import Callable, Sequence

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

RATE = 8000
FULL_SCALE = 32767.0
# Frames (20 ms) above this fraction of the loudest frame's power count as speech when
# measuring the speech level for an SNR.
_VOICED_DB = -30.0
# Opus's rate when a condition names none: the low end of what softphones use for voice.
OPUS_KBITS = 12.0

Pcm = bytes
NoiseSource = Callable[[int, np.random.Generator], np.ndarray]


def to_array(pcm: Pcm) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def to_pcm(x: np.ndarray) -> Pcm:
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def speech_power(x: np.ndarray) -> float:
    """Mean power over the voiced 20 ms frames (pauses do not dilute the level)."""
    n = len(x) // 160
    if n == 0:
        return float(np.mean(x**2)) if len(x) else 0.0
    frames = (x[: n * 160].reshape(n, 160) ** 2).mean(axis=1)
    peak = frames.max()
    if peak <= 0:
        return 0.0
    voiced = frames[frames >= peak * 10 ** (_VOICED_DB / 10)]
    return float(voiced.mean())


def band_limit(x: np.ndarray, low: float = 300.0, high: float = 3400.0) -> np.ndarray:
    """The telephone band, with 100 Hz raised-cosine edges (no ringing of a brick wall)."""
    if len(x) == 0:
        return x
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    edge = 100.0
    gain = np.ones_like(f)
    gain[f < low - edge] = 0.0
    rise = (f >= low - edge) & (f < low)
    gain[rise] = 0.5 - 0.5 * np.cos(np.pi * (f[rise] - (low - edge)) / edge)
    gain[f > high + edge] = 0.0
    fall = (f > high) & (f <= high + edge)
    gain[fall] = 0.5 + 0.5 * np.cos(np.pi * (f[fall] - high) / edge)
    return np.fft.irfft(spectrum * gain, len(x))


def g711(x: np.ndarray, law: str) -> np.ndarray:
    """G.711 mu-law or A-law: encoded and decoded."""
    pcm = to_pcm(x)
    if law == "ulaw":
        return to_array(audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2))
    return to_array(audioop.alaw2lin(audioop.lin2alaw(pcm, 2), 2))


def sox_codec(x: np.ndarray, codec: str) -> np.ndarray:
    """GSM 06.10 or AMR-NB through sox: encoded and decoded, same length as the input."""
    if shutil.which("sox") is None:
        raise RuntimeError("sox is not installed (apt-get install sox libsox-fmt-all)")
    raw = ["-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c", "1"]
    fmt = {"gsm": ["-t", "gsm"], "amr": ["-t", "amr-nb", "-C", "4"]}[codec]
    encoded = subprocess.run(
        ["sox", *raw, "-", *fmt, "-"], input=to_pcm(x), capture_output=True, check=True
    ).stdout
    decode_fmt = fmt[:2]
    decoded = subprocess.run(
        ["sox", *decode_fmt, "-", *raw, "-"], input=encoded, capture_output=True, check=True
    ).stdout
    return _same_length(to_array(decoded), len(x))


def opus_codec(x: np.ndarray, kbits: float = OPUS_KBITS) -> np.ndarray:
    """Opus through ffmpeg's libopus, pipes only: encoded (narrowband, VoIP mode, 20 ms frames,
    ``kbits`` kbit/s) and decoded back to 8 kHz, same length as the input."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed (apt-get install ffmpeg)")
    quiet = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    raw = ["-f", "s16le", "-ar", str(RATE), "-ac", "1"]
    encoded = subprocess.run(
        [*quiet, *raw, "-i", "pipe:0", "-c:a", "libopus", "-b:a", f"{kbits * 1000:.0f}",
         "-application", "voip", "-cutoff", "4000", "-frame_duration", "20",
         "-f", "ogg", "pipe:1"],
        input=to_pcm(x), capture_output=True, check=True,
    ).stdout
    # The Ogg container carries Opus's pre-skip, so the decoded audio lines up with the input.
    decoded = subprocess.run(
        [*quiet, "-f", "ogg", "-i", "pipe:0", *raw, "pipe:1"],
        input=encoded, capture_output=True, check=True,
    ).stdout
    return _same_length(to_array(decoded), len(x))


def open_line(pcm: Pcm, seconds: float) -> Pcm:
    """``pcm`` followed by digital silence up to ``seconds`` (unchanged if already longer).
    A condition applied to the result puts its noise and codec over the padding too, so the
    line's noise goes on after the words for the whole call, as a real line's does, instead
    of the call ending in digital zeros that no noisy line gives."""
    missing = round(seconds * RATE) - len(pcm) // 2
    return pcm + b"\0\0" * max(0, missing)


def _same_length(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - len(y))])


def room(x: np.ndarray, reverberance: float, room_scale: float, pre_delay_ms: float) -> np.ndarray:
    """``x`` played into a room and picked up across it: sox's ``reverb`` (dry and wet mixed),
    same length as the input (the tail inside it: pad the input first to keep it)."""
    if shutil.which("sox") is None:
        raise RuntimeError("sox is not installed (apt-get install sox libsox-fmt-all)")
    raw = ["-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c", "1"]
    # sox works in 16 bits: bring the level to a safe one and back, so nothing clips.
    peak = np.abs(x).max() or 1.0
    scale = 8000.0 / peak
    # -D: sox dithers its 16-bit output with random noise by default; the same call has to
    # be the same audio on every run.
    wet = subprocess.run(
        ["sox", "-D", *raw, "-", *raw, "-", "reverb", f"{reverberance:.0f}", "50",
         f"{room_scale:.0f}", "100", f"{pre_delay_ms:.0f}", "0"],
        input=to_pcm(x * scale), capture_output=True, check=True,
    ).stdout
    return _same_length(to_array(wet), len(x)) / scale


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0.0, 1.0, n)


def street_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Traffic: brown rumble, a car passing now and then, a horn or a brake squeal."""
    rumble = np.cumsum(rng.normal(0.0, 1.0, n))
    rumble -= np.convolve(rumble, np.ones(400) / 400, mode="same")  # drop the drift
    rumble /= rumble.std() or 1.0
    t = np.arange(n) / RATE
    # cars: broadband noise swelling and fading over ~2 s
    swell = np.zeros(n)
    for centre in rng.uniform(0, max(t[-1], 1e-3), size=max(1, int(t[-1] / 3) + 1)):
        swell += np.exp(-(((t - centre) / 0.8) ** 2))
    cars = band_limit(rng.normal(0.0, 1.0, n), 200, 2000) * swell
    events = np.zeros(n)
    start = int(rng.uniform(0, max(1, n - RATE // 2)))
    length = min(n - start, int(0.4 * RATE))
    horn = np.sin(2 * np.pi * 420 * t[:length]) + 0.6 * np.sin(2 * np.pi * 520 * t[:length])
    events[start : start + length] = 0.7 * horn
    y = rumble + 1.5 * cars + events
    return y / (y.std() or 1.0)


def babble_source(voices: Sequence[np.ndarray], talkers: int = 6) -> NoiseSource:
    """Noise of ``talkers`` other utterances at once (a busy room, a TV), each at equal level."""

    def make(n: int, rng: np.random.Generator) -> np.ndarray:
        y = np.zeros(n)
        for i in rng.choice(len(voices), size=min(talkers, len(voices)), replace=False):
            v = voices[int(i)]
            v = v / (np.sqrt(speech_power(v)) or 1.0)
            loops = np.tile(v, n // max(1, len(v)) + 2)
            offset = int(rng.integers(0, max(1, len(v))))
            y += loops[offset : offset + n]
        return y / (y.std() or 1.0)

    return make


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x`` plus ``noise`` scaled to ``snr_db`` below the speech level."""
    power = speech_power(x)
    noise_power = float(np.mean(noise**2)) or 1.0
    scale = np.sqrt(power / noise_power / 10 ** (snr_db / 10))
    return x + noise * scale


def clip(x: np.ndarray, fraction: float) -> np.ndarray:
    """Raise the level so the speech peaks far past ``fraction`` of full scale, and clip
    there: an overdriven handset or a gain stage set too hot."""
    limit = fraction * FULL_SCALE
    peak = np.abs(x).max() or 1.0
    return np.clip(x * (2.5 * limit / peak), -limit, limit)


def apply(
    condition: str,
    pcm: Pcm,
    seed: int,
    babble: NoiseSource | None = None,
    tv: NoiseSource | None = None,
) -> Pcm:
    """``pcm`` (8 kHz) through the chain named by ``condition`` (see the module doc)."""
    x = to_array(pcm)
    rng = np.random.default_rng(seed)
    for step in condition.split("+"):
        name, _, arg = step.partition(":")
        if name == "clean":
            continue
        if name == "band":
            x = band_limit(x)
        elif name in ("ulaw", "alaw"):
            x = g711(x, name)
        elif name in ("gsm", "amr"):
            x = sox_codec(x, name)
        elif name == "opus" and arg.count(":") == 1:
            import opus_loss

            kbits, loss = arg.split(":")
            x = opus_loss.through_lossy_opus(x, float(kbits), float(loss), rng)
        elif name == "opus":
            x = opus_codec(x, float(arg) if arg else OPUS_KBITS)
        elif name in ("white", "street", "babble"):
            if name == "babble" and babble is None:
                raise ValueError("babble noise needs other utterances")
            source: NoiseSource = {"white": white_noise, "street": street_noise}.get(
                name, babble or white_noise
            )
            x = add_noise(x, source(len(x), rng), float(arg))
        elif name == "tv":
            if tv is None:
                raise ValueError("a TV under the caller needs its lines")
            noise = tv(len(x), rng)
            # Voiced level against voiced level: the TV's pauses do not make it louder.
            noise = noise / (np.sqrt(speech_power(noise)) or 1.0)
            x = x + noise * np.sqrt(speech_power(x) / 10 ** (float(arg) / 10))
        elif name == "gain":
            x = x * 10 ** (float(arg) / 20)
        elif name == "clip":
            x = clip(x, float(arg))
        else:
            raise ValueError(f"unknown condition step {step!r} in {condition!r}")
    return to_pcm(x)


# --- sounds that are not a caller speaking ----------------------------------------------------


def _at_level(x: np.ndarray, rms: float) -> np.ndarray:
    return x * (rms / (np.sqrt(np.mean(x**2)) or 1.0))


def line_hiss(seconds: float, rng: np.random.Generator, rms: float = 30.0) -> np.ndarray:
    """An open line where nobody speaks: faint hiss."""
    return rng.normal(0.0, rms, int(seconds * RATE))


def coughs(seconds: float, rng: np.random.Generator, rms: float = 3000.0) -> np.ndarray:
    """One to three coughs or throat clears: bursts of shaped noise of 150-400 ms."""
    n = int(seconds * RATE)
    y = rng.normal(0.0, 30.0, n)
    for _ in range(int(rng.integers(1, 4))):
        length = int(rng.uniform(0.15, 0.4) * RATE)
        start = int(rng.uniform(0.2 * RATE, max(0.2 * RATE + 1, n - length - 0.2 * RATE)))
        t = np.arange(length) / length
        envelope = np.exp(-6 * t) * (1 - np.exp(-60 * t))
        low, high = sorted(rng.uniform(300, 3000, 2))
        burst = band_limit(rng.normal(0.0, 1.0, length), low, high + 300) * envelope
        y[start : start + length] += _at_level(burst, rms * 2)
    return y


def music(seconds: float, rng: np.random.Generator, rms: float = 2000.0) -> np.ndarray:
    """Hold-music-like tune from a radio or TV: notes of a few harmonics with a beat."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    y = np.zeros(n)
    note_s = rng.uniform(0.2, 0.5)
    scale = 220 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    for k in range(int(seconds / note_s) + 1):
        start, stop = int(k * note_s * RATE), min(n, int((k + 1) * note_s * RATE))
        if start >= n:
            break
        f0 = rng.choice(scale) * rng.choice([1, 2])
        seg = t[start:stop] - t[start]
        env = np.exp(-3 * seg)
        for h, a in ((1, 1.0), (2, 0.5), (3, 0.25)):
            y[start:stop] += a * env * np.sin(2 * np.pi * f0 * h * seg)
    beat = (np.sin(2 * np.pi * t / (2 * note_s)) > 0.95).astype(float)
    y += 0.5 * beat * rng.normal(0.0, 1.0, n)
    return _at_level(y, rms)


def wordless_babble(
    voices: Sequence[np.ndarray], seconds: float, rng: np.random.Generator, rms: float = 2000.0
) -> np.ndarray:
    """A TV or a room in the background: several utterances played backwards at once, so it
    sounds like speech (spectrum, rhythm) but holds no words."""
    n = int(seconds * RATE)
    backwards = [v[::-1] for v in voices]
    return _at_level(babble_source(backwards, talkers=4)(n, rng), rms)


def street_alone(seconds: float, rng: np.random.Generator, rms: float = 1500.0) -> np.ndarray:
    """A caller outside who has not spoken yet: traffic only."""
    return _at_level(street_noise(int(seconds * RATE), rng), rms)


def white_alone(seconds: float, rng: np.random.Generator, rms: float = 1000.0) -> np.ndarray:
    """A bad line: loud white noise."""
    return _at_level(rng.normal(0.0, 1.0, int(seconds * RATE)), rms)


def speaking_tv(
    talker: np.ndarray, seconds: float, rng: np.random.Generator, rms: float = 700.0
) -> np.ndarray:
    """A TV across the room that speaks: ``talker`` (one voice saying one line: news, an
    advert, a film) from a random point, through a small loudspeaker into a room, picked up
    by the handset from afar (reverberant), its voiced frames at RMS ``rms``. Where the line
    ends before ``seconds``, the programme pauses."""
    n = int(seconds * RATE)
    start = int(rng.uniform(0, max(1, len(talker) - n // 2)))
    line = talker[start : start + n]
    x = np.concatenate([line, np.zeros(n - len(line))])
    x = band_limit(x, 250.0, 3800.0)  # a TV's small speaker: no bass
    x = room(x, reverberance=rng.uniform(40, 90), room_scale=rng.uniform(50, 100),
             pre_delay_ms=rng.uniform(5, 30))
    return x * (rms / (np.sqrt(speech_power(x)) or 1.0))


def loud_level(pcm: Pcm) -> float:
    """How loud a call is where it is loudest: the 95th percentile of its 20 ms frames' RMS."""
    x = to_array(pcm)
    n = len(x) // 160
    if n == 0:
        return 0.0
    rms = np.sqrt((x[: n * 160].reshape(n, 160) ** 2).mean(axis=1))
    return float(np.percentile(rms, 95))


def tv_source(talkers: Sequence[np.ndarray]) -> NoiseSource:
    """A TV across the room under the caller: one talker at a time (``talkers``, each one line
    in one voice), lines following each other from a random one, in a room
    (:func:`speaking_tv`'s loudspeaker and reverberation)."""

    def make(n: int, rng: np.random.Generator) -> np.ndarray:
        y = np.zeros(0)
        i = int(rng.integers(0, len(talkers)))
        while len(y) < n + RATE:
            y = np.concatenate([y, talkers[i % len(talkers)]])
            i += 1
        start = int(rng.integers(0, max(1, len(y) - n)))
        x = band_limit(y[start : start + n], 250.0, 3800.0)
        return room(x, reverberance=rng.uniform(40, 90), room_scale=rng.uniform(50, 100),
                    pre_delay_ms=rng.uniform(5, 30))

    return make
