"""Where a run's misses come from: the classifier, the transcript, or no speech at all.

    .venv/bin/python benchmarks/speech/misses.py ROWS.json [--intents PATH] [--engine E]
        [--list classifier|transcript|none] [--json]

``ROWS.json`` is written by ``conditions.py --rows`` (or ``evaluate.py --rows``). Each call
whose category is wrong is put in one of three kinds:

- ``classifier``: the transcript carries the request's words (at most a third of the
  reference's content words lost or changed, :func:`content_error`) and the classifier
  chose wrong. Split by what the classifier makes of the reference text itself: wrong there
  too (the classifier lacks something) or right there (a word the engine dropped or changed
  turned it).
- ``transcript``: the words the request hangs on are missing or wrong.
- ``none``: no request came out: no speech, an empty transcript, or no word the classifier
  knows.

The split tells which lever is worth pulling: the classifier's data (``intents.yaml``, its
corpus) for the first kind, the recognizer for the others. The categories are the run's own
(``rescore.py`` classifies a run again); the classifier of ``--intents`` for ``--engine``
(default: the intents file's engine) only judges the reference texts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from conditions import with_engine  # noqa: E402

from ivr.speech.classifier import IntentClassifier, features  # noqa: E402
from ivr.speech.schema import DEFAULT_INTENTS, load_intents  # noqa: E402

KINDS = ("classifier", "transcript", "none")
# Share of the reference's content words a transcript may lose or change and still "carry
# the request's words": one in three leaves a request a person would still read right.
CARRIES = 1 / 3


def content_words(text: str) -> list[str]:
    """The stems the classifier reads (fillers and stop words out), in order."""
    return [f for f in features(text) if " " not in f]


def edit_distance(a: list[str], b: list[str]) -> int:
    """Words to substitute, insert or delete to turn ``a`` into ``b``."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def content_error(reference: str, heard: str) -> float:
    """Content-word error rate of ``heard`` against ``reference`` (0: the same words)."""
    ref = content_words(reference)
    if not ref:
        return 0.0 if not content_words(heard) else 1.0
    return edit_distance(ref, content_words(heard)) / len(ref)


def kind_of_miss(row: dict[str, Any]) -> str:
    """``classifier``, ``transcript`` or ``none`` for a row whose category is wrong."""
    if row["predicted"] == "(none)":
        return "none"
    return "classifier" if content_error(row["text"], row["heard"]) <= CARRIES else "transcript"


def analyse(rows: list[dict[str, Any]], classifier: IntentClassifier) -> dict[str, Any]:
    """Counts of each kind of miss, overall and per condition, and the misses themselves
    (each with its kind, its content-word error and the classifier's category for the
    reference text)."""
    misses = []
    for row in rows:
        if row["predicted"] == row["category"]:
            continue
        kind = kind_of_miss(row)
        misses.append({
            "kind": kind,
            "condition": row.get("condition", "familiar"),
            "voice": row.get("voice", "piper:joe"),
            "category": row["category"],
            "predicted": row["predicted"],
            "confidence": row["confidence"],
            "text": row["text"],
            "heard": row["heard"],
            "error": round(content_error(row["text"], row["heard"]), 2),
            "reference_category": classifier.classify(row["text"]).category,
        })
    by_condition: dict[str, Counter[str]] = defaultdict(Counter)
    for m in misses:
        by_condition[m["condition"]][m["kind"]] += 1
    classifier_misses = [m for m in misses if m["kind"] == "classifier"]
    return {
        "calls": len(rows),
        "misses": len(misses),
        "by_kind": {k: sum(m["kind"] == k for m in misses) for k in KINDS},
        "classifier_wrong_on_reference": sum(
            m["reference_category"] != m["category"] for m in classifier_misses
        ),
        "by_condition": {c: {k: n[k] for k in KINDS} for c, n in by_condition.items()},
        "confusions": dict(Counter(
            f"{m['category']}->{m['predicted']}" for m in classifier_misses
        ).most_common()),
        "rows": misses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path)
    parser.add_argument("--intents", type=Path, default=DEFAULT_INTENTS)
    parser.add_argument("--engine", choices=["pocketsphinx", "whisper", "pocketsphinx+whisper",
                                              "moonshine", "moonshine+whisper"])
    parser.add_argument("--list", choices=KINDS, help="print the misses of this kind")
    parser.add_argument("--json", action="store_true", help="print the analysis as JSON")
    args = parser.parse_args(argv)
    classifier = IntentClassifier(with_engine(load_intents(args.intents), args.engine))
    result = analyse(json.loads(args.rows.read_text())["speech"], classifier)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['misses']} misses of {result['calls']} calls: {result['by_kind']}; "
          f"of the classifier's, wrong on the reference text too: "
          f"{result['classifier_wrong_on_reference']}")
    print(f"\n{'condition':<24}" + "".join(f"{k:>12}" for k in KINDS))
    for condition, counts in result["by_condition"].items():
        print(f"{condition:<24}" + "".join(f"{counts[k]:>12}" for k in KINDS))
    print(f"\nclassifier confusions (truth->chosen): {result['confusions']}")
    for m in result["rows"] if args.list else ():
        if m["kind"] == args.list:
            print(f"\n{m['condition']} {m['voice']}: {m['category']} -> {m['predicted']} "
                  f"({m['confidence']}; reference text -> {m['reference_category']}, "
                  f"error {m['error']})\n  said  {m['text']!r}\n  heard {m['heard']!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
