"""Speech -> category for callers the system has never heard: many voices, phone lines, noise.

    nice -n 19 .venv/bin/python benchmarks/speech/conditions.py [--split heldout|tune|all]
        [--part dev|blind|blind2|blind3|blind4] [--line-end noise|zeros] [--prompt-s S]
        [--voices V,...] [--conditions C,C,...] [--sample N]
        [--engine pocketsphinx|whisper|pocketsphinx+whisper|moonshine|moonshine+whisper]
        [--nonspeech N] [--nonspeech-kinds K,K,...] [--only-nonspeech] [--tv-lines PATH]
        [--intents PATH]
        [--json] [--rows FILE]

Each sentence of the evaluation set is spoken by other voices (:mod:`voices`: piper's joe at
three speeds, espeak-ng's English accents and variants at several speeds; Flite's voices in
``blind4``), put through a
telephone condition (:mod:`channel`: band limit, G.711 mu-law and A-law, GSM, AMR-NB, Opus
(``band+opus:12``; ``band+opus:12:5`` with 5% of its packets lost and concealed; not in
the default list: name it in ``--conditions``), a TV under the caller
(``band+tv:15+ulaw``, not in the default list either), white,
babble and street noise at several SNRs, a quiet handset, clipping) and streamed through the
production path exactly as ``evaluate.py`` does (AudioSocket protocol, endpointer, engine,
classifier). Each sentence is spoken by one voice, the voices taking turns, and goes through
every condition: conditions are compared on the same calls, and every voice meets every one.
Prints accuracy per condition, per voice and overall, the worst condition and the confusion
matrix.

Non-speech (``--nonspeech N``, default 120; 0 to skip): line hiss, coughs, music, a TV in
the room (speech played backwards: no words), street noise and a bad line, through the same
path. A false accept is one that ends as a category instead of "no speech".
``--nonspeech-kinds`` picks the kinds (default the six above, in that order, so the 120 calls
are the same calls as before); ``tv-speech`` is a TV that speaks forward: one voice saying one
line of ``tv_lines.yaml`` (news, weather, adverts, a film), in a room, 10-20 dB below a
caller, e.g. ``--only-nonspeech --nonspeech 60 --nonspeech-kinds tv-speech``;
``tv-programme`` a TV that plays on, line after line, for the whole call (under the prompt
too, as a TV in the room does). With a blind ``--part`` the TV talks in that part's voices;
``--tv-lines tv_lines_blind.yaml`` gives it lines nothing was tuned on (the blind TV).
Besides the categories, the run prints what the gateway would take without a confirmation
question (``confirm_below``, ``confirm_below_snr_db``, ``confirm_barge_in``): wrong requests
(misrouted calls), right ones the caller confirms, non-speech requests.

``--part dev`` (default) uses the development voices; ``--part blind`` the blind voices
(``voices.BLIND_VOICES``): measured once with the config frozen, never tuned on, as the
held-out sentences before them; ``--part blind2`` the fresh blind voices of session 14
(``voices.BLIND2_VOICES``: the first blind set had been measured three times); ``--part
blind3`` those of session 16 (``voices.BLIND3_VOICES``, blind2 measured four times); ``--part
blind4`` those of session 18 (``voices.BLIND4_VOICES``: Flite's voices, a family nothing was
developed on; blind3 measured twice). Rendered
voices are cached in ``var/speech-conditions/``.

``--line-end noise`` (default since session 14): the line goes on after the words as a real
one does, its noise and codec over the whole call (pre-roll and the endpointer's 700 ms
included) until the endpointer ends the utterance (``call_seconds``; on a line whose noise
stays above the endpointer's threshold that is its maximum length). ``--line-end zeros``: the
harness before session 14, the voice's 0.5 s pause through the line and then digital
silence, to reproduce earlier figures call for call.

``--prompt-s`` (default 3.9 with ``--line-end noise``, since session 15): the caller listens
to the speech prompt that long before speaking, as every caller does, and the endpointer
hears their line meanwhile, unarmed, as in production; it takes the line's noise from the
last three seconds of it. Before, the harness armed the endpointer at the call's start and gave it
only the voice's 0.3 s lead of the line, whose noise estimate then took in the caller's
first syllables. With ``--line-end noise`` a non-speech sound (a TV, music, traffic, a hiss)
runs for the whole call, under the prompt too, and a cough's line goes on after the coughs;
with ``--line-end zeros`` the sounds last 2 to 5 s and the call ends with them (the
non-speech calls of the sessions before 15).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import channel  # noqa: E402
import voices as voice_cache  # noqa: E402
from evaluate import Listener, confusion  # noqa: E402
from synthesize import load_eval_set  # noqa: E402

from ivr.speech.classifier import Classification  # noqa: E402
from ivr.speech.gateway import confirmation_reason  # noqa: E402
from ivr.speech.schema import (  # noqa: E402
    DEFAULT_INTENTS,
    EndpointingConfig,
    IntentsConfig,
    load_intents,
)

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
# A TV that speaks forward (one talker at a time, words and all): its own kind, run alone or
# named with the others, so the six kinds' figures stay comparable.
TV_SPEECH = "tv-speech"
# A TV whose programme goes on through the whole call, one line after another (session 16):
# what a TV in the room does. ``tv-speech`` plays one line and then pauses, so the line
# under the prompt is often digital silence and the TV's words stand far above it.
TV_PROGRAMME = "tv-programme"
ALL_NONSPEECH_KINDS = (*NONSPEECH_KINDS, TV_SPEECH, TV_PROGRAMME)
TV_LINES = Path(__file__).with_name("tv_lines.yaml")
# A TV across the room: its voice 10 to 20 dB below a caller's at the handset.
TV_BELOW_CALLER_DB = (10.0, 20.0)
# Level of the voices' speech (RMS over voiced frames, 16-bit), the reference of the
# non-speech sounds' levels.
SPEECH_RMS = 3500.0
# Sentences of the tune split whose voices make the babble (never an evaluated sentence).
BABBLE_SENTENCES = 24
# How long the caller listens to the speech prompt before speaking (the shipped English
# prompt, "tell us in a few words why you are calling", is 3.9 s): the endpointer hears the
# caller's line meanwhile, unarmed, and takes the line's noise from its last three seconds.
PROMPT_S = 3.9
# How a call ends after the words: the line's noise until the endpointer ends it, or (the
# harness until session 14) digital silence after the voice's 0.5 s pause.
LINE_ENDS = ("noise", "zeros")
PARTS = {"dev": voice_cache.DEV_VOICES, "blind": voice_cache.BLIND_VOICES,
         "blind2": voice_cache.BLIND2_VOICES, "blind3": voice_cache.BLIND3_VOICES,
         "blind4": voice_cache.BLIND4_VOICES}


def call_seconds(endpointing: EndpointingConfig) -> float:
    """How long a call's line runs when it goes on after the words: past the endpointer's
    latest verdict however the line's noise holds the utterance open (the voice's lead, the
    longest utterance, its trailing silence, and a margin); the harness's digital silence
    after it is never reached while the endpointer listens."""
    return (voice_cache.LEAD_SILENCE_S + 0.5
            + (endpointing.max_utterance_ms + endpointing.trailing_silence_ms) / 1000)


def line_call(
    said: bytes, condition: str, seed: int, babble: channel.NoiseSource | None = None,
    tv: channel.NoiseSource | None = None, line_s: float | None = None,
    prompt_s: float = 0.0,
) -> bytes:
    """What the line carries of the voice ``said`` through ``condition``: with ``line_s``
    the line goes on after the words for that long, its noise and codec over it all (a real
    line's end, :func:`call_seconds`); None: the call ends in digital silence after the
    voice (the harness before session 14). ``prompt_s``: the caller listens to the prompt
    that long before speaking, the line's noise under it (0: the harness before session
    15, whose endpointer heard the line for the voice's 0.3 s lead only)."""
    call = b"\0\0" * round(prompt_s * channel.RATE) + said
    if line_s is not None:
        call = channel.open_line(call, prompt_s + line_s)
    return channel.apply(condition, call, seed, babble, tv)


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


def load_tv_lines(path: Path = TV_LINES) -> list[dict[str, str]]:
    """What the TV says: dicts with genre and text."""
    lines: list[dict[str, str]] = yaml.safe_load(path.read_text())["lines"]
    return lines


def tv_talker(j: int, lines: Sequence[dict[str, str]], voices: Sequence[str]) -> tuple[dict, str]:
    """The ``j``-th TV clip's line and voice: every line in turn, and on each pass over the
    lines another voice says it."""
    return lines[j % len(lines)], voices[(j + j // len(lines)) % len(voices)]


def nonspeech_clips(
    n: int,
    pool: list[np.ndarray],
    kinds: Sequence[str] = NONSPEECH_KINDS,
    say: Callable[[str, str], np.ndarray] | None = None,
    tv_voices: Sequence[str] = voice_cache.DEV_VOICES,
    line_s: float | None = None,
    tv_lines: Path = TV_LINES,
) -> list[tuple[str, bytes, dict[str, str]]]:
    """``n`` calls with no speech in them, through a band-limited mu-law line: the kinds in
    turn, each call with what it is made of (the TV's line and voice). ``say(voice, text)``
    renders a TV line (needed for ``tv-speech`` only). With ``line_s`` the sound goes on
    for the whole call, as a TV, music, traffic or a hiss in the room does (a speaking TV
    with its programme, pausing where its line ends), and a cough's line goes on after it;
    None: each sound lasts 2 to 5 s (6 for a speaking TV) and the call ends with it (the
    harness before session 15). The same draws either way: the same levels, the same
    sounds, only longer. ``tv_lines``: what the TV says (``tv_lines.yaml``, or the blind
    TV's ``tv_lines_blind.yaml``)."""
    unknown = set(kinds) - set(ALL_NONSPEECH_KINDS)
    if unknown:
        raise ValueError(f"unknown non-speech kinds {sorted(unknown)} "
                         f"(known: {', '.join(ALL_NONSPEECH_KINDS)})")
    lines = load_tv_lines(tv_lines) if TV_SPEECH in kinds else []
    programme = (channel.tv_source(tv_talkers(tv_voices, say, tv_lines))
                 if TV_PROGRAMME in kinds and say is not None else None)
    clips = []
    tv_clips = 0
    for i in range(n):
        kind = kinds[i % len(kinds)]
        rng = np.random.default_rng(seed_of("nonspeech", i))
        about: dict[str, str] = {}
        if kind == TV_PROGRAMME:
            if programme is None:
                raise ValueError("a TV's programme needs a voice to render its lines")
            seconds = max(float(rng.uniform(3.0, 6.0)), line_s or 0.0)
            below = float(rng.uniform(*TV_BELOW_CALLER_DB))
            x = programme(round(seconds * channel.RATE), rng)
            x = x * (SPEECH_RMS * 10 ** (-below / 20) / (np.sqrt(channel.speech_power(x)) or 1.0))
            about = {"below_caller_db": f"{below:.1f}"}
            clips.append((kind, channel.apply("band+ulaw", channel.to_pcm(x), seed_of("line", i)),
                          about))
            continue
        if kind == TV_SPEECH:
            if say is None:
                raise ValueError("a speaking TV needs a voice to render its lines")
            line, voice = tv_talker(tv_clips, lines, tv_voices)
            tv_clips += 1
            seconds = max(float(rng.uniform(3.0, 6.0)), line_s or 0.0)
            below = float(rng.uniform(*TV_BELOW_CALLER_DB))
            x = channel.speaking_tv(say(voice, line["text"]), seconds, rng,
                                    rms=SPEECH_RMS * 10 ** (-below / 20))
            about = {"genre": line["genre"], "line": line["text"], "voice": voice,
                     "below_caller_db": f"{below:.1f}"}
            pcm = channel.apply("band+ulaw", channel.to_pcm(x), seed_of("line", i))
            clips.append((kind, pcm, about))
            continue
        drawn = float(rng.uniform(2.0, 5.0))
        seconds = max(drawn, line_s or 0.0)
        # Background sounds from 24 to 6 dB below a caller's voice at the handset (RMS 3,500);
        # a cough is the caller's own, as loud as speech or louder.
        level = SPEECH_RMS * 10 ** (float(rng.uniform(-24, -6)) / 20)
        if kind == "cough":
            # The coughs where they were, the handset's faint hiss on to the end of the call.
            x = background_sound(kind, drawn, rng, level, pool)
            after = np.random.default_rng(seed_of("after", i))
            hiss = after.normal(0.0, 30.0, round((seconds - drawn) * channel.RATE))
            x = np.concatenate([x, hiss])
        else:
            x = background_sound(kind, seconds, rng, level, pool)
        pcm = channel.apply("band+ulaw", channel.to_pcm(x), seed_of("line", i))
        clips.append((kind, pcm, about))
    return clips


def background_sound(kind: str, seconds: float, rng: np.random.Generator, level: float,
                     pool: list[np.ndarray]) -> np.ndarray:
    """``seconds`` of one of :data:`NONSPEECH_KINDS` at RMS ``level`` (a cough at a level of
    its own, drawn from ``rng``: the caller's, as loud as speech or louder); ``pool``: the
    utterances a wordless TV is made of."""
    if kind == "cough":
        return channel.coughs(seconds, rng, rms=float(rng.uniform(1500, 5000)))
    if kind == "hiss":
        return channel.line_hiss(seconds, rng)
    if kind == "music":
        return channel.music(seconds, rng, rms=level)
    if kind == "tv":
        return channel.wordless_babble(pool, seconds, rng, rms=level)
    if kind == "street":
        return channel.street_alone(seconds, rng, rms=level)
    return channel.white_alone(seconds, rng, rms=level)


def tv_talkers(
    voices: Sequence[str] = voice_cache.DEV_VOICES,
    say: Callable[[str, str], np.ndarray] | None = None,
    path: Path = TV_LINES,
) -> list[np.ndarray]:
    """Every TV line of ``path``, each in one of ``voices`` (as the first pass of the TV
    clips), said by ``say(voice, text)`` (default: from the voices' cache)."""
    lines = load_tv_lines(path)
    return [(say or render_one)(voice, line["text"])
            for line, voice in (tv_talker(j, lines, voices) for j in range(len(lines)))]


def render_one(voice: str, text: str) -> np.ndarray:
    """One sentence in one voice, from the voices' cache."""
    return channel.to_array(voice_cache.render(voice, [text])[text])


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
    line_s: float | None = None,
    prompt_s: float = 0.0,
) -> list[dict]:
    """One row per (condition, utterance): the voice that spoke it and what came out.
    ``line_s``: the call's line goes on for that long, noise and codec over it all (the
    line's end as a real one); None: the call ends in digital silence after the voice.
    ``prompt_s``: the speech prompt's length, the line heard under it (:func:`line_call`)."""
    speaker = [voices[i % len(voices)] for i in range(len(utterances))]
    said: dict[str, list[str]] = defaultdict(list)
    for u, v in zip(utterances, speaker, strict=True):
        said[v].append(u["text"])
    rendered = {v: voice_cache.render(v, said[v]) for v in voices}
    babble = channel.babble_source(pool)
    tv = channel.tv_source(tv_talkers()) if any("tv:" in c for c in conditions) else None
    rows = []
    for condition in conditions:
        started = time.monotonic()
        for i, u in enumerate(utterances):
            voice = speaker[i]
            said_pcm = rendered[voice][u["text"]]
            pcm = line_call(said_pcm, condition, seed_of(condition, u["text"]), babble, tv,
                            line_s, prompt_s)
            row = listener.hear(pcm, prompt_s)
            # CPU per second of the voice, as before: the line after it is not speech.
            row["audio_s"] = len(said_pcm) / 16000
            rows.append({**u, **row, "voice": voice, "condition": condition,
                         "line_end": "zeros" if line_s is None else "noise",
                         "prompt_s": prompt_s})
        if progress and utterances:
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
    parser.add_argument("--part", choices=list(PARTS), default="dev")
    parser.add_argument("--line-end", choices=LINE_ENDS, default="noise",
                        help="after the words: the line's noise until the endpointer ends the "
                        "call (default), or digital silence (the harness before session 14)")
    parser.add_argument("--prompt-s", type=float,
                        help="seconds the caller listens to the speech prompt before speaking, "
                        f"the line's noise heard under it (default {PROMPT_S} with --line-end "
                        "noise, 0 with zeros: the harnesses before session 15)")
    parser.add_argument("--voices", help="comma-separated voices (default: those of --part)")
    parser.add_argument("--conditions", help="comma-separated conditions (default: all)")
    parser.add_argument("--sample", type=int, help="only N sentences, spread over the split")
    parser.add_argument("--engine", choices=["pocketsphinx", "whisper", "pocketsphinx+whisper",
                                                  "moonshine", "moonshine+whisper"])
    parser.add_argument("--nonspeech", type=int, default=120, help="non-speech calls (0: none)")
    parser.add_argument("--nonspeech-kinds", default=",".join(NONSPEECH_KINDS),
                        help=f"comma-separated, in turn (of {','.join(ALL_NONSPEECH_KINDS)})")
    parser.add_argument("--only-nonspeech", action="store_true", help="skip the sentences")
    parser.add_argument("--tv-lines", type=Path, default=TV_LINES,
                        help="what a speaking TV says (default tv_lines.yaml; the blind TV: "
                             "tv_lines_blind.yaml)")
    parser.add_argument("--intents", type=Path, default=DEFAULT_INTENTS)
    parser.add_argument("--json", action="store_true", help="print a JSON summary only")
    parser.add_argument("--rows", type=Path, help="also write every call's row here (JSON), "
                        "for rescore.py to classify again without decoding again")
    args = parser.parse_args(argv)

    voices = args.voices.split(",") if args.voices else list(PARTS[args.part])
    conditions = args.conditions.split(",") if args.conditions else list(DEFAULT_CONDITIONS)
    utterances = [u for u in load_eval_set() if args.split in ("all", u["split"])]
    utterances = [] if args.only_nonspeech else spread(utterances, args.sample)
    intents = with_engine(load_intents(args.intents), args.engine)
    listener = Listener(intents)
    # Babble talkers: development voices only, so the blind voices stay unheard.
    pool = babble_pool(list(voice_cache.DEV_VOICES))

    line_s = call_seconds(intents.speech.endpointing) if args.line_end == "noise" else None
    prompt_s = args.prompt_s if args.prompt_s is not None else (
        PROMPT_S if line_s is not None else 0.0)
    rows = evaluate(listener, utterances, voices, conditions, pool, progress=not args.json,
                    line_s=line_s, prompt_s=prompt_s)
    kinds = args.nonspeech_kinds.split(",")
    # A sound in the room is there from the call's start, under the prompt too.
    # A blind part's TV talks in that part's voices: unheard as its callers are.
    clips = nonspeech_clips(args.nonspeech, pool, kinds, say=render_one,
                            tv_voices=PARTS[args.part],
                            line_s=None if line_s is None else prompt_s + line_s,
                            tv_lines=args.tv_lines)
    nonspeech = [{"kind": kind, **about, **listener.hear(pcm, prompt_s)}
                 for kind, pcm, about in clips]
    if args.rows:
        args.rows.write_text(json.dumps({"speech": rows, "nonspeech": nonspeech}))
    summary = summarize(rows, nonspeech, intents)
    summary = {"engine": f"{listener.engine.name}:{listener.engine.model}", "split": args.split,
               "part": args.part, "line_end": args.line_end, "prompt_s": prompt_s,
               "utterances": len(utterances),
               **summary}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"engine {summary['engine']}; split {args.split}, {args.part} voices; "
          f"{len(utterances)} sentences x {len(conditions)} conditions = {len(rows)} calls; "
          f"line end {args.line_end}, prompt {prompt_s:g} s")
    if rows:
        print_speech(summary, rows, list(intents.categories))
    ns = summary["nonspeech"]
    print(f"non-speech calls that became a category: {ns['false_accepts']}/{ns['calls']} "
          f"= {ns['rate']:.1%} {ns['by_kind']}; taken without a confirmation question "
          f"(nobody there to press 1 to): {ns['unasked']}")
    for kind, heard, predicted, confidence in ns["heard"]:
        print(f"  {kind}: heard {heard!r} -> {predicted} ({confidence})")
    return 0


def unasked(row: dict, intents: IntentsConfig) -> bool:
    """Whether the gateway takes the call's request without asking the caller to confirm it
    (the operator never is): a wrong one then routes the call wrongly, a TV's stands."""
    verdict = Classification(row["predicted"], row["confidence"], "normal", None, 0.0)
    return confirmation_reason(verdict, intents, row.get("snr_db"),
                               bool(row.get("barge_in"))) is None


def summarize(
    rows: list[dict], nonspeech: list[dict], intents: IntentsConfig | None = None
) -> dict[str, Any]:
    """Accuracy overall, per condition and voice, the worst condition, CPU, false accepts;
    with ``intents``, the requests its gateway would take without asking (wrong ones,
    non-speech: -1 without)."""

    def taken(rows: list[dict]) -> int:
        return sum(unasked(r, intents) for r in rows) if intents is not None else -1

    accepts = [r for r in nonspeech if r["predicted"] != "(none)"]
    out: dict[str, Any] = {
        "decisions": len(rows),
        "nonspeech": {
            "calls": len(nonspeech),
            "false_accepts": len(accepts),
            "unasked": taken(accepts),
            "rate": round(len(accepts) / len(nonspeech), 4) if nonspeech else 0.0,
            "by_kind": dict(Counter(r["kind"] for r in accepts)),
            "kinds": dict(Counter(r["kind"] for r in nonspeech)),
            "heard": [(r["kind"], r["heard"], r["predicted"], r["confidence"]) for r in accepts],
        },
    }
    if not rows:
        return out
    by_condition = accuracy_by(rows, "condition")
    worst = min(by_condition, key=lambda c: by_condition[c]["accuracy"])
    correct = sum(r["predicted"] == r["category"] for r in rows)
    requests = [r for r in rows if r["predicted"] != "(none)"]
    right = [r for r in requests if r["predicted"] == r["category"]]
    return {
        **out,
        "correct": correct,
        # Wrong requests taken without a question (the call goes to the wrong queue), and
        # right ones the caller is asked to confirm (one key more).
        "wrong_unasked": taken([r for r in requests if r["predicted"] != r["category"]]),
        "right_asked": len(right) - taken(right) if intents is not None else -1,
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
    print(f"wrong requests taken without a confirmation question: {summary['wrong_unasked']}; "
          f"right ones the caller confirms: {summary['right_asked']}")
    print()
    print(confusion(rows, categories))
    print()


if __name__ == "__main__":
    raise SystemExit(main())
