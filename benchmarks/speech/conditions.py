"""Speech -> category for callers the system has never heard: many voices, phone lines, noise.

    nice -n 19 .venv/bin/python benchmarks/speech/conditions.py [--split heldout|tune|all]
        [--part dev|blind] [--voices V,V,...] [--conditions C,C,...] [--sample N]
        [--engine pocketsphinx|whisper|pocketsphinx+whisper|moonshine|moonshine+whisper]
        [--nonspeech N]
        [--intents PATH] [--json] [--rows FILE]

Each sentence of the evaluation set is spoken by other voices (:mod:`voices`: piper's joe at
three speeds, espeak-ng's English accents and variants at several speeds), put through a
telephone condition (:mod:`channel`: band limit, G.711 mu-law and A-law, GSM, AMR-NB, white,
babble and street noise at several SNRs, a quiet handset, clipping) and streamed through the
production path exactly as ``evaluate.py`` does (AudioSocket protocol, endpointer, engine,
classifier). Each sentence is spoken by one voice, the voices taking turns, and goes through
every condition: conditions are compared on the same calls, and every voice meets every one.
Prints accuracy per condition, per voice and overall, the worst condition and the confusion
matrix.

Non-speech (``--nonspeech N``, default 120; 0 to skip): line hiss, coughs, music, a TV in
the room (speech played backwards: no words), street noise and a bad line, through the same
path. A false accept is one that ends as a category instead of "no speech".

``--part dev`` (default) uses the development voices; ``--part blind`` the blind voices
(``voices.BLIND_VOICES``): measured once with the config frozen, never tuned on, as the
held-out sentences before them. Rendered voices are cached in ``var/speech-conditions/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import channel  # noqa: E402
import voices as voice_cache  # noqa: E402
from evaluate import Listener, confusion  # noqa: E402
from synthesize import load_eval_set  # noqa: E402

from ivr.speech.schema import DEFAULT_INTENTS, IntentsConfig, load_intents  # noqa: E402

# The phone lines and rooms callers call from. Every chain ends in a codec: what reaches
# Asterisk has always been through one.
DEFAULT_CONDITIONS = (
    "ulaw",
    "band+ulaw",
    "band+alaw",
    "band+gsm",
    "band+amr",
    "band+white:20+ulaw",
    "band+white:10+ulaw",
    "band+babble:15+ulaw",
    "band+babble:10+gsm",
    "band+street:10+ulaw",
    "gain:-12+band+ulaw",
    "band+clip:0.3+ulaw",
)
NONSPEECH_KINDS = ("hiss", "cough", "music", "tv", "street", "white")
# Level of the voices' speech (RMS over voiced frames, 16-bit), the reference of the
# non-speech sounds' levels.
SPEECH_RMS = 3500.0
# Sentences of the tune split whose voices make the babble (never an evaluated sentence).
BABBLE_SENTENCES = 24


def seed_of(*parts: object) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def with_engine(intents: IntentsConfig, engine: str | None) -> IntentsConfig:
    if engine is None or engine == intents.speech.engine:
        return intents
    speech = intents.speech.model_copy(update={"engine": engine})
    return intents.model_copy(update={"speech": speech})


def babble_pool(voices: list[str]) -> list[np.ndarray]:
    """Other utterances for babble: tune sentences, each in one of ``voices``."""
    tune = [u["text"] for u in load_eval_set() if u["split"] == "tune"][:BABBLE_SENTENCES]
    pool = []
    for i, text in enumerate(tune):
        voice = voices[i % len(voices)]
        pool.append(channel.to_array(voice_cache.render(voice, [text])[text]))
    return pool


def nonspeech_clips(n: int, pool: list[np.ndarray]) -> list[tuple[str, bytes]]:
    """``n`` calls with no speech in them, through a band-limited mu-law line."""
    clips = []
    for i in range(n):
        kind = NONSPEECH_KINDS[i % len(NONSPEECH_KINDS)]
        rng = np.random.default_rng(seed_of("nonspeech", i))
        seconds = float(rng.uniform(2.0, 5.0))
        # Background sounds from 24 to 6 dB below a caller's voice at the handset (RMS 3,500);
        # a cough is the caller's own, as loud as speech or louder.
        level = SPEECH_RMS * 10 ** (float(rng.uniform(-24, -6)) / 20)
        if kind == "hiss":
            x = channel.line_hiss(seconds, rng)
        elif kind == "cough":
            x = channel.coughs(seconds, rng, rms=float(rng.uniform(1500, 5000)))
        elif kind == "music":
            x = channel.music(seconds, rng, rms=level)
        elif kind == "tv":
            x = channel.wordless_babble(pool, seconds, rng, rms=level)
        elif kind == "street":
            x = channel.street_alone(seconds, rng, rms=level)
        else:
            x = channel.white_alone(seconds, rng, rms=level)
        pcm = channel.apply("band+ulaw", channel.to_pcm(x), seed_of("line", i))
        clips.append((kind, pcm))
    return clips


def spread(items: list[dict], n: int | None) -> list[dict]:
    """``n`` items spread evenly over the list (every category keeps its share)."""
    if n is None or n >= len(items):
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def evaluate(
    listener: Listener,
    utterances: list[dict],
    voices: list[str],
    conditions: list[str],
    pool: list[np.ndarray],
    progress: bool = True,
) -> list[dict]:
    """One row per (condition, utterance): the voice that spoke it and what came out."""
    speaker = [voices[i % len(voices)] for i in range(len(utterances))]
    said: dict[str, list[str]] = defaultdict(list)
    for u, v in zip(utterances, speaker, strict=True):
        said[v].append(u["text"])
    rendered = {v: voice_cache.render(v, said[v]) for v in voices}
    babble = channel.babble_source(pool)
    rows = []
    for condition in conditions:
        started = time.monotonic()
        for i, u in enumerate(utterances):
            voice = speaker[i]
            pcm = channel.apply(
                condition, rendered[voice][u["text"]], seed_of(condition, u["text"]), babble
            )
            row = listener.hear(pcm)
            rows.append({**u, **row, "voice": voice, "condition": condition})
        if progress:
            done = [r for r in rows if r["condition"] == condition]
            right = sum(r["predicted"] == r["category"] for r in done)
            print(f"  {condition}: {right}/{len(done)} ({time.monotonic() - started:.0f} s)",
                  file=sys.stderr)
    return rows


def accuracy_by(rows: list[dict], key: str) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r[key]].append(r)
    return {
        name: {
            "n": len(g),
            "correct": sum(r["predicted"] == r["category"] for r in g),
            "accuracy": round(sum(r["predicted"] == r["category"] for r in g) / len(g), 4),
        }
        for name, g in groups.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["heldout", "tune", "all"], default="heldout")
    parser.add_argument("--part", choices=["dev", "blind"], default="dev")
    parser.add_argument("--voices", help="comma-separated voices (default: those of --part)")
    parser.add_argument("--conditions", help="comma-separated conditions (default: all)")
    parser.add_argument("--sample", type=int, help="only N sentences, spread over the split")
    parser.add_argument("--engine", choices=["pocketsphinx", "whisper", "pocketsphinx+whisper",
                                                  "moonshine", "moonshine+whisper"])
    parser.add_argument("--nonspeech", type=int, default=120, help="non-speech calls (0: none)")
    parser.add_argument("--only-nonspeech", action="store_true", help="skip the sentences")
    parser.add_argument("--intents", type=Path, default=DEFAULT_INTENTS)
    parser.add_argument("--json", action="store_true", help="print a JSON summary only")
    parser.add_argument("--rows", type=Path, help="also write every call's row here (JSON), "
                        "for rescore.py to classify again without decoding again")
    args = parser.parse_args(argv)

    default_voices = voice_cache.DEV_VOICES if args.part == "dev" else voice_cache.BLIND_VOICES
    voices = args.voices.split(",") if args.voices else list(default_voices)
    conditions = args.conditions.split(",") if args.conditions else list(DEFAULT_CONDITIONS)
    utterances = [u for u in load_eval_set() if args.split in ("all", u["split"])]
    utterances = [] if args.only_nonspeech else spread(utterances, args.sample)
    intents = with_engine(load_intents(args.intents), args.engine)
    listener = Listener(intents)
    # Babble talkers: development voices only, so the blind voices stay unheard.
    pool = babble_pool(list(voice_cache.DEV_VOICES))

    rows = evaluate(listener, utterances, voices, conditions, pool, progress=not args.json)
    clips = nonspeech_clips(args.nonspeech, pool)
    nonspeech = [{"kind": kind, **listener.hear(pcm)} for kind, pcm in clips]
    if args.rows:
        args.rows.write_text(json.dumps({"speech": rows, "nonspeech": nonspeech}))
    summary = summarize(rows, nonspeech)
    summary = {"engine": f"{listener.engine.name}:{listener.engine.model}", "split": args.split,
               "part": args.part, "utterances": len(utterances), **summary}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"engine {summary['engine']}; split {args.split}, {args.part} voices; "
          f"{len(utterances)} sentences x {len(conditions)} conditions = {len(rows)} calls")
    if rows:
        print_speech(summary, rows, list(intents.categories))
    ns = summary["nonspeech"]
    print(f"non-speech calls that became a category: {ns['false_accepts']}/{ns['calls']} "
          f"= {ns['rate']:.1%} {ns['by_kind']}")
    for kind, heard, predicted, confidence in ns["heard"]:
        print(f"  {kind}: heard {heard!r} -> {predicted} ({confidence})")
    return 0


def summarize(rows: list[dict], nonspeech: list[dict]) -> dict[str, Any]:
    """Accuracy overall, per condition and voice, the worst condition, CPU, false accepts."""
    accepts = [r for r in nonspeech if r["predicted"] != "(none)"]
    out: dict[str, Any] = {
        "decisions": len(rows),
        "nonspeech": {
            "calls": len(nonspeech),
            "false_accepts": len(accepts),
            "rate": round(len(accepts) / len(nonspeech), 4) if nonspeech else 0.0,
            "by_kind": dict(Counter(r["kind"] for r in accepts)),
            "heard": [(r["kind"], r["heard"], r["predicted"], r["confidence"]) for r in accepts],
        },
    }
    if not rows:
        return out
    by_condition = accuracy_by(rows, "condition")
    worst = min(by_condition, key=lambda c: by_condition[c]["accuracy"])
    correct = sum(r["predicted"] == r["category"] for r in rows)
    return {
        **out,
        "correct": correct,
        "accuracy": round(correct / len(rows), 4),
        "worst_condition": {"condition": worst, **by_condition[worst]},
        "by_condition": by_condition,
        "by_voice": accuracy_by(rows, "voice"),
        "cpu_per_audio_s": round(
            sum(r["cpu_s"] for r in rows) / sum(r["audio_s"] for r in rows), 4
        ),
        "outcomes": dict(Counter(r["outcome"] for r in rows)),
    }


def print_speech(summary: dict[str, Any], rows: list[dict], categories: list[str]) -> None:
    print(f"\n{'condition':<24}{'right':>10}{'accuracy':>10}")
    for name, acc in summary["by_condition"].items():
        print(f"{name:<24}{acc['correct']:>5}/{acc['n']:<4}{acc['accuracy']:>10.1%}")
    print(f"\n{'voice':<36}{'right':>10}{'accuracy':>10}")
    for name, acc in summary["by_voice"].items():
        print(f"{name:<36}{acc['correct']:>5}/{acc['n']:<4}{acc['accuracy']:>10.1%}")
    worst = summary["worst_condition"]
    print(f"\noverall: {summary['correct']}/{len(rows)} = {summary['accuracy']:.1%}; "
          f"worst condition: {worst['condition']} {worst['accuracy']:.1%}; "
          f"CPU per audio second {summary['cpu_per_audio_s']:.3f}; outcomes {summary['outcomes']}")
    print()
    print(confusion(rows, categories))
    print()


if __name__ == "__main__":
    raise SystemExit(main())
