"""Classify again what a conditions run heard, without decoding again.

    .venv/bin/python benchmarks/speech/rescore.py ROWS.json [--engine E] [--heard-weight W]
        [--gram-weight G --temperature T] [--intents PATH] [--json]
        [--second ROWS2.json --below 0.6,0.9,1.01]

``ROWS.json`` is written by ``conditions.py --rows``. The recognizer's transcripts do not
depend on the classifier, so a change to the classifier alone (its training data, the weight
of the heard transcripts or of the words' letter n-grams, its temperature) is measured in
seconds on the same calls: each call that ended as speech is classified again with the
classifier of ``--intents`` for ``--engine`` (default: the intents file's), the others stay
no speech. Prints what ``conditions.py`` prints.

``--second ROWS2.json``: the same calls decoded by another engine (the same ``conditions.py``
arguments with another ``--engine``): prints the combination ``pocketsphinx+whisper`` (first
the engine of ``ROWS.json``, the second engine's words when the first's make no request or
one under each ``--below`` threshold, :func:`ivr.speech.combination.second_opinion`), with
how often the second engine was asked: the share of calls whose caller waits for it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from conditions import print_speech, summarize, with_engine  # noqa: E402

from ivr.speech.classifier import (  # noqa: E402
    GRAM_WEIGHT,
    HEARD_WEIGHT,
    TEMPERATURE,
    IntentClassifier,
    understood,
)
from ivr.speech.combination import second_opinion  # noqa: E402
from ivr.speech.engines import Transcript  # noqa: E402
from ivr.speech.schema import DEFAULT_INTENTS, IntentsConfig, load_intents  # noqa: E402

ENGINES = ["pocketsphinx", "whisper", "pocketsphinx+whisper", "moonshine", "moonshine+whisper"]


def rescore(rows: list[dict], classifier: IntentClassifier) -> list[dict]:
    """``rows`` with ``predicted`` and ``confidence`` from ``classifier``."""
    out = []
    for row in rows:
        verdict = classifier.classify(row["heard"]) if row["heard"] else None
        speech = row["outcome"] == "speech" and verdict is not None and understood(verdict)
        out.append({
            "condition": "familiar", "voice": "piper:joe",  # evaluate.py's rows name neither
            **row,
            "predicted": verdict.category if speech and verdict else "(none)",
            "confidence": verdict.confidence if verdict else 0.0,
        })
    return out


def combine(
    first: list[dict], second: list[dict], judge: IntentClassifier, below: float
) -> list[dict]:
    """The rows the combined engine would have given: ``first``'s transcript, or ``second``'s
    when :func:`second_opinion` asks for it (``asked`` says which). The same calls in the
    same order, or ValueError."""
    out = []
    for a, b in zip(first, second, strict=True):
        if (a.get("text"), a.get("condition"), a.get("kind")) != (
            b.get("text"), b.get("condition"), b.get("kind")
        ):
            raise ValueError(f"not the same calls: {a.get('text')!r} / {b.get('text')!r}")
        if a["outcome"] not in ("speech", "silence"):
            out.append({**a, "asked": False})  # shed or failed: no decoding at all
            continue
        # "silence" with no words is the endpointer's verdict or an empty decoding; the
        # second engine's row says the same in the first case, so taking it is right in both
        # (``asked`` then counts a few calls where nothing was decoded).
        verdict = judge.classify(a["heard"]) if a["heard"] else None
        confidence = verdict.confidence if verdict is not None and understood(verdict) else None
        heard = Transcript(a["heard"], 0.0, "", "")
        asked = second_opinion(heard, confidence, below)
        chosen = b if asked else a
        out.append({**a, "outcome": chosen["outcome"], "heard": chosen["heard"], "asked": asked})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path)
    parser.add_argument("--engine", choices=ENGINES)
    parser.add_argument("--heard-weight", type=float, default=HEARD_WEIGHT)
    parser.add_argument("--gram-weight", type=float, default=GRAM_WEIGHT,
                        help="what a word's letter n-grams count together (0: words only)")
    parser.add_argument("--temperature", type=float, default=TEMPERATURE,
                        help="scale of the classifier's log scores before the softmax")
    parser.add_argument("--intents", type=Path, default=DEFAULT_INTENTS)
    parser.add_argument("--json", action="store_true", help="print a JSON summary only")
    parser.add_argument("--second", type=Path, help="the same calls decoded by whisper")
    parser.add_argument("--below", default="0.6,0.8,0.9,1.01",
                        help="second-opinion thresholds to try (with --second)")
    args = parser.parse_args(argv)
    intents = load_intents(args.intents)
    data = json.loads(args.rows.read_text())
    if args.second:
        return main_combined(intents, data, json.loads(args.second.read_text()), args)
    intents = with_engine(intents, args.engine)
    classifier = classifier_of(intents, args)
    rows, nonspeech = rescore(data["speech"], classifier), rescore(data["nonspeech"], classifier)
    report(rows, nonspeech, intents, args.json)
    return 0


def classifier_of(intents: IntentsConfig, args: argparse.Namespace) -> IntentClassifier:
    return IntentClassifier(intents, heard_weight=args.heard_weight,
                            gram_weight=args.gram_weight, temperature=args.temperature)


def main_combined(
    intents: IntentsConfig, first: dict, second: dict, args: argparse.Namespace
) -> int:
    """Every threshold of ``--below`` on the same calls: accuracy, false accepts, how often
    the second engine decoded."""
    judge = classifier_of(with_engine(intents, "pocketsphinx"), args)
    combined = with_engine(intents, "pocketsphinx+whisper")
    classifier = classifier_of(combined, args)
    for below in [float(b) for b in args.below.split(",")]:
        rows = combine(first["speech"], second["speech"], judge, below)
        nonspeech = combine(first["nonspeech"], second["nonspeech"], judge, below)
        asked = sum(r["asked"] for r in rows)
        print(f"\n=== second opinion below {below}: whisper decoded {asked}/{len(rows)} "
              f"speech calls, {sum(r['asked'] for r in nonspeech)}/{len(nonspeech)} non-speech")
        report(rescore(rows, classifier), rescore(nonspeech, classifier), combined, args.json)
    return 0


def report(rows: list[dict], nonspeech: list[dict], intents: IntentsConfig, as_json: bool) -> None:
    summary = summarize(rows, nonspeech, intents)
    if as_json:
        print(json.dumps({k: summary[k] for k in summary if k != "by_voice"}, indent=2))
        return
    if rows:
        print_speech(summary, rows, list(intents.categories))
    ns = summary["nonspeech"]
    print(f"non-speech calls that became a category: {ns['false_accepts']}/{ns['calls']} "
          f"= {ns['rate']:.1%} {ns['by_kind']}")


if __name__ == "__main__":
    raise SystemExit(main())
