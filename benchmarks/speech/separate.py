"""Does a score tell a TV from a caller? Both sides' figures from saved rows, no decoding.

    .venv/bin/python benchmarks/speech/separate.py SPEECH_ROWS NONSPEECH_ROWS [--kind tv-speech]

``SPEECH_ROWS``: a ``conditions.py --rows`` file with speech rows (from a run that saved
``level`` and ``engine_confidence``); ``NONSPEECH_ROWS``: one with the non-speech rows of
``--kind``. For each score (the call's loud level, the recognizer's confidence, the
classifier's), the spread on each side, then what a rule "no request below T" would do at
thresholds set by the callers: T at the score of the lowest 1%, 2%, 5% and 10% of the callers
the gateway takes right, and how many of the non-speech requests it would stop. Nothing here
decides on a call; it is the evidence for proposing (or not) such a rule.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

SCORES = ("level", "engine_confidence", "confidence")
LOSS_SHARES = (0.01, 0.02, 0.05, 0.10)


def requests(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the gateway takes as a request (a category, not "no speech")."""
    return [r for r in rows if r["predicted"] != "(none)"]


def unasked(rows: list[dict[str, Any]], confirm_below: float, operator: str) -> list[dict]:
    """The requests the gateway takes without asking the caller to confirm (press 1): a TV
    cannot press 1, so these are the ones that cost a wrong order or an agent's time."""
    return [r for r in requests(rows)
            if r["confidence"] >= confirm_below or r["predicted"] == operator]


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    q = np.percentile(values, [0, 10, 50, 90, 100])
    return " / ".join(f"{v:.3g}" for v in q)


def thresholds(
    right: list[dict[str, Any]], accepted: list[dict[str, Any]], score: str
) -> list[dict[str, Any]]:
    """For each share of right calls given up, the threshold and the requests it stops."""
    values = np.sort([r[score] for r in right])
    out = []
    for share in LOSS_SHARES:
        t = float(values[int(share * len(values))]) if len(values) else 0.0
        lost = sum(r[score] < t for r in right)
        stopped = sum(r[score] < t for r in accepted)
        out.append({"share": share, "threshold": t, "right_lost": lost,
                    "stopped": stopped, "of": len(accepted)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("speech", type=Path)
    parser.add_argument("nonspeech", type=Path)
    parser.add_argument("--kind", default="tv-speech", help="non-speech kind (default tv-speech)")
    parser.add_argument("--conditions", help="comma-separated: only these speech conditions")
    parser.add_argument("--confirm-below", type=float, default=0.6, help="as in intents.yaml")
    parser.add_argument("--operator", default="operator", help="the category never confirmed")
    args = parser.parse_args(argv)
    speech = json.loads(args.speech.read_text())["speech"]
    if args.conditions:
        speech = [r for r in speech if r["condition"] in args.conditions.split(",")]
    others = [r for r in json.loads(args.nonspeech.read_text())["nonspeech"]
              if r["kind"] == args.kind]
    right = [r for r in speech if r["predicted"] == r["category"]]
    accepted = requests(others)
    # Rows saved before a score was kept (session 12's) are read for the scores they have.
    scores = [s for s in SCORES if all(s in r for r in [*right, *accepted])]
    direct = unasked(others, args.confirm_below, args.operator)
    print(f"speech: {len(speech)} calls, {len(right)} taken right; {args.kind}: {len(others)} "
          f"calls, {len(accepted)} became a request, {len(direct)} of them without a "
          f"confirmation question")
    print("spread (min / 10% / median / 90% / max)")
    for score in scores:
        print(f"  {score:<18} callers taken right: {spread([r[score] for r in right])}")
        print(f"  {'':<18} {args.kind} requests: {spread([r[score] for r in accepted])}")
    print("a rule 'no request below T' (T from the callers taken right):")
    for score in scores:
        for t in thresholds(right, accepted, score):
            unasked_stopped = sum(r[score] < t["threshold"] for r in direct)
            print(f"  {score:<18} T={t['threshold']:.3g}: callers lost {t['right_lost']}/"
                  f"{len(right)} ({t['share']:.0%}), {args.kind} requests stopped "
                  f"{t['stopped']}/{t['of']} (unasked {unasked_stopped}/{len(direct)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
