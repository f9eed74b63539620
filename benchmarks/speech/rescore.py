"""Classify again what a conditions run heard, without decoding again.

    .venv/bin/python benchmarks/speech/rescore.py ROWS.json [--engine E] [--heard-weight W]
        [--intents PATH] [--json]

``ROWS.json`` is written by ``conditions.py --rows``. The recognizer's transcripts do not
depend on the classifier, so a change to the classifier alone (its training data, the weight
of the heard transcripts) is measured in seconds on the same calls: each call that ended as
speech is classified again with the classifier of ``--intents`` for ``--engine`` (default:
the intents file's), the others stay no speech. Prints what ``conditions.py`` prints.
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

from ivr.speech.classifier import HEARD_WEIGHT, IntentClassifier, understood  # noqa: E402
from ivr.speech.schema import DEFAULT_INTENTS, load_intents  # noqa: E402


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path)
    parser.add_argument("--engine", choices=["pocketsphinx", "whisper"])
    parser.add_argument("--heard-weight", type=float, default=HEARD_WEIGHT)
    parser.add_argument("--intents", type=Path, default=DEFAULT_INTENTS)
    parser.add_argument("--json", action="store_true", help="print a JSON summary only")
    args = parser.parse_args(argv)
    intents = with_engine(load_intents(args.intents), args.engine)
    classifier = IntentClassifier(intents, heard_weight=args.heard_weight)
    data = json.loads(args.rows.read_text())
    rows, nonspeech = rescore(data["speech"], classifier), rescore(data["nonspeech"], classifier)
    summary = summarize(rows, nonspeech)
    if args.json:
        print(json.dumps({k: summary[k] for k in summary if k != "by_voice"}, indent=2))
        return 0
    if rows:
        print_speech(summary, rows, list(intents.categories))
    ns = summary["nonspeech"]
    print(f"non-speech calls that became a category: {ns['false_accepts']}/{ns['calls']} "
          f"= {ns['rate']:.1%} {ns['by_kind']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
