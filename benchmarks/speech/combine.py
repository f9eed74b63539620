"""What two engines' transcripts of the same calls would give together, without decoding again.

    .venv/bin/python benchmarks/speech/combine.py FIRST.json SECOND.json
        [--first moonshine] [--second whisper] [--below 0.5,0.8,0.9,0.95,1.01]
        [--no-speech 0.2,0.4,0.6] [--intents PATH] [--json]
        [--noise NOISE.json [--noise-above=-50,-45,-40,-36,-32] [--snr-below 10,15,20]]

``FIRST.json`` and ``SECOND.json`` are ``conditions.py --rows`` of the same calls (the same
arguments, one ``--engine`` each; checked call for call). Each rule is scored on both the
sentences and the non-speech calls, with the classifier the combined engine would have (it
learns both engines' heard corpora), and prints overall, the worst condition, non-speech
false accepts and how many calls the second engine decoded (the CPU, and the wait, it adds;
with its CPU per decoding, p50/p95, when its rows saved it):

- ``first`` / ``second``: each engine alone (rescored with that classifier);
- ``oracle``: right when either engine is right (a bound no rule reaches);
- ``cascade below T``: the first engine's words, the second's when the first's make no
  request or one the first engine's classifier is less sure of than T
  (:func:`ivr.speech.combination.second_opinion`, what ``FIRST+SECOND`` runs);
- ``both``: one classification of both transcripts (concatenated: naive Bayes sums the
  log-scores of both), the second engine decoding every call; ``both, second hears
  speech``: the same, no request when the second engine heard none;
- ``surer``: the category of the more confident of the two classifications;
- ``first, judged by no-speech P``: the first engine's words, no request when the second
  engine's own no-speech probability (Whisper's, saved in its rows) is above P (a TV, a
  cough); the second engine decodes every call.

With ``--noise NOISE.json`` (``line_noise.py``'s rows of the same calls: the line's noise
under what the endpointer handed the engine and the words' level, in dBFS), the shipped rule
(``cascade to both below`` the intents' ``second_opinion_below``, the second engine's
silence vetoing) is also scored asking the second engine on every call whose line is noisier
than each ``--noise-above=`` (with ``=``: the values are negative), and on every call whose
SNR (words over noise) is under each ``--snr-below``:

- ``below T or noise > N, joined``: the calls asked only for their line join both engines'
  words, the second engine's silence vetoing nothing there (``vetoed``: it does);
- ``below T or noise > N, oracle``: on those calls, right when either engine is right: what
  no rule of the words asked that way can beat.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from conditions import summarize, with_engine  # noqa: E402
from rescore import combine, rescore  # noqa: E402

from ivr.speech.classifier import IntentClassifier, understood  # noqa: E402
from ivr.speech.schema import DEFAULT_INTENTS, load_intents  # noqa: E402

Row = dict[str, Any]


def line_end(row: Row) -> str:
    """How the row's call ended: rows from before session 14 name none (digital zeros)."""
    return str(row.get("line_end", "zeros"))


def same_calls(first: list[Row], second: list[Row]) -> None:
    """ValueError unless the two lists are the same calls in the same order (a call ending
    in the line's noise is not the call that ended in zeros)."""
    keys = ("text", "voice", "condition", "kind", "audio_s")
    if len(first) != len(second):
        raise ValueError(f"{len(first)} calls against {len(second)}")
    for a, b in zip(first, second, strict=True):
        if any(a.get(k) != b.get(k) for k in keys) or line_end(a) != line_end(b):
            raise ValueError(f"not the same call: {[a.get(k) for k in keys]} / "
                             f"{[b.get(k) for k in keys]}")


def request(row: Row, classifier: IntentClassifier) -> tuple[str, float]:
    """The category the gateway would take from ``row``'s transcript, and its confidence
    (``(none)``, 0 when it is no request)."""
    if row["outcome"] != "speech" or not row["heard"]:
        return "(none)", 0.0
    verdict = classifier.classify(row["heard"])
    return (verdict.category, verdict.confidence) if understood(verdict) else ("(none)", 0.0)


def with_prediction(row: Row, predicted: str, confidence: float, asked: bool) -> Row:
    return {**row, "predicted": predicted, "confidence": confidence, "asked": asked}


def oracle(first: list[Row], second: list[Row]) -> list[Row]:
    """Right when either is right; else the first engine's row (for non-speech: a false
    accept only when both accept)."""
    out = []
    for a, b in zip(first, second, strict=True):
        truth = a.get("category", "(none)")
        chosen = b if b["predicted"] == truth and a["predicted"] != truth else a
        out.append({**chosen, "asked": True})
    return out


def both(first: list[Row], second: list[Row], classifier: IntentClassifier,
         second_hears: bool) -> list[Row]:
    """One classification of both transcripts; with ``second_hears``, no request when the
    second engine heard no speech."""
    out = []
    for a, b in zip(first, second, strict=True):
        texts = [r["heard"] for r in (a, b) if r["outcome"] == "speech" and r["heard"]]
        verdict = classifier.classify(" ".join(texts)) if texts else None
        predicted, confidence = "(none)", 0.0
        if verdict is not None and understood(verdict) and not (
            second_hears and b["outcome"] != "speech"
        ):
            predicted, confidence = verdict.category, verdict.confidence
        out.append({**with_prediction(a, predicted, confidence, True), "heard": " ".join(texts)})
    return out


def cascade_both(first: list[Row], second: list[Row], judge: IntentClassifier,
                  classifier: IntentClassifier, below: float, veto: bool = False) -> list[Row]:
    """The cascade, but a doubtful first transcript is classified together with the second
    engine's (:func:`both`) instead of being replaced by it; with ``veto``, no request when
    the second engine, asked, heard no speech."""
    asked = combine(first, second, judge, below)
    together = both(first, second, classifier, veto)
    alone = rescore(first, classifier)
    return [
        {**(t if c["asked"] else a), "asked": c["asked"]}
        for c, t, a in zip(asked, together, alone, strict=True)
    ]


def surer(first: list[Row], second: list[Row], classifier: IntentClassifier) -> list[Row]:
    """The more confident of the two classifications (the first's on a tie)."""
    out = []
    for a, b in zip(first, second, strict=True):
        pa, pb = request(a, classifier), request(b, classifier)
        predicted, confidence = pb if pb[1] > pa[1] else pa
        out.append(with_prediction(a, predicted, confidence, True))
    return out


def judged(first: list[Row], second: list[Row], classifier: IntentClassifier,
           above: float) -> list[Row]:
    """The first engine's request, none when the second's no-speech probability is above
    ``above`` (a call the second engine did not decode keeps the first's words)."""
    out = []
    for a, b in zip(first, second, strict=True):
        predicted, confidence = request(a, classifier)
        no_speech = b.get("no_speech_prob")
        if no_speech is not None and no_speech > above:
            predicted, confidence = "(none)", 0.0
        out.append(with_prediction(a, predicted, confidence, True))
    return out


def noisier(noise: list[Row], above: float) -> list[bool]:
    """Whether each call's line is noisier than ``above`` dBFS (``line_noise.py``'s
    ``noise_dbfs``; a call with nothing decoded never is)."""
    return [n["noise_dbfs"] is not None and n["noise_dbfs"] > above for n in noise]


def under_snr(noise: list[Row], below: float) -> list[bool]:
    """Whether each call's words are less than ``below`` dB over its line's noise
    (``line_noise.py``'s ``speech_dbfs - noise_dbfs``; never for a call with nothing
    decoded)."""
    return [n["noise_dbfs"] is not None and n["speech_dbfs"] - n["noise_dbfs"] < below
            for n in noise]


def cascade_or_noisy(first: list[Row], second: list[Row], noisy: list[bool],
                     judge: IntentClassifier, classifier: IntentClassifier, below: float,
                     how: str) -> list[Row]:
    """The shipped rule (:func:`cascade_both` below ``below``, the second engine's silence
    vetoing), the second engine asked also on the ``noisy`` calls; on the calls asked only
    for their noise ``how`` is ``joined`` (both engines' words, no veto), ``vetoed`` (both,
    the second's silence vetoing) or ``oracle`` (right when either engine is)."""
    shipped = cascade_both(first, second, judge, classifier, below, True)
    together = both(first, second, classifier, how == "vetoed")
    alone, other = rescore(first, classifier), rescore(second, classifier)
    out = []
    for s, t, a, b, n in zip(shipped, together, alone, other, noisy, strict=True):
        if s["asked"] or not n or a["outcome"] not in ("speech", "silence"):
            out.append(s)
        elif how == "oracle":
            truth = a.get("category", "(none)")
            chosen = b if b["predicted"] == truth and a["predicted"] != truth else a
            out.append({**chosen, "asked": True})
        else:
            out.append({**t, "asked": True})
    return out


def decoded(asked: list[Row], second: list[Row]) -> int:
    """Calls the second engine would have decoded: asked, and not a call the endpointer
    ended as no speech (the rows of an engine that saves its decoding say which)."""
    return sum(
        bool(a.get("asked")) and (b.get("whisper_text", "") is not None)
        for a, b in zip(asked, second, strict=True)
    )


def decoding_cpu(asked: list[Row], second: list[Row]) -> dict[str, float] | None:
    """p50 and p95 of the CPU seconds of the second engine's decodings on the calls it was
    asked (rows that saved them: ``whisper_cpu_s``); None when none did."""
    cpu = sorted(
        b["whisper_cpu_s"] for a, b in zip(asked, second, strict=True)
        if a.get("asked") and b.get("whisper_cpu_s") is not None
    )
    if not cpu:
        return None
    return {"p50": cpu[len(cpu) // 2], "p95": cpu[min(len(cpu) - 1, int(0.95 * len(cpu)))]}


def figures(name: str, rows: list[Row], nonspeech: list[Row],
            second: dict[str, list[Row]]) -> dict[str, Any]:
    s = summarize(rows, nonspeech)
    worst = s["worst_condition"]
    return {
        "rule": name,
        "correct": s["correct"],
        "calls": len(rows),
        "accuracy": s["accuracy"],
        "worst": f"{worst['condition']} {worst['correct']}/{worst['n']}",
        "worst_accuracy": worst["accuracy"],
        "by_condition": {c: v["correct"] for c, v in s["by_condition"].items()},
        "nonspeech": f"{s['nonspeech']['false_accepts']}/{s['nonspeech']['calls']}",
        "nonspeech_heard": s["nonspeech"]["heard"],
        "second_decoded": decoded(rows, second["speech"]),
        "second_cpu_s": decoding_cpu(rows, second["speech"]),
        "right": [r["predicted"] == r["category"] for r in rows],
        "second_decoded_nonspeech": decoded(nonspeech, second["nonspeech"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--first-engine", default="moonshine")
    parser.add_argument("--second-engine", default="whisper")
    parser.add_argument("--below", default="0.5,0.6,0.7,0.8,0.9,0.95,0.99,1.01")
    parser.add_argument("--no-speech", default="0.1,0.2,0.3,0.4,0.5,0.6")
    parser.add_argument("--intents", type=Path, default=DEFAULT_INTENTS)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--noise", type=Path,
                        help="line_noise.py's rows of the same calls: also ask on noisy lines")
    parser.add_argument("--noise-above", default="-50,-45,-40,-36,-32",
                        help="line noise (dBFS) above which the second engine is also asked")
    parser.add_argument("--snr-below", default="10,15,20,25",
                        help="SNR (dB) under which the second engine is also asked")
    args = parser.parse_args(argv)
    intents = load_intents(args.intents)
    first, second = json.loads(args.first.read_text()), json.loads(args.second.read_text())
    noise = json.loads(args.noise.read_text()) if args.noise else None
    for part in ("speech", "nonspeech"):
        same_calls(first[part], second[part])
        if noise is not None:
            same_calls(first[part], noise[part])
    pair = f"{args.first_engine}+{args.second_engine}"
    judge = IntentClassifier(with_engine(intents, args.first_engine))
    classifier = IntentClassifier(with_engine(intents, pair))
    alone = {
        name: IntentClassifier(with_engine(intents, name))
        for name in (args.first_engine, args.second_engine)
    }

    def scored(rule: Callable[[list[Row], list[Row]], list[Row]]) -> tuple[list[Row], list[Row]]:
        return (rule(first["speech"], second["speech"]),
                rule(first["nonspeech"], second["nonspeech"]))

    a = {p: rescore(first[p], classifier) for p in ("speech", "nonspeech")}
    b = {p: rescore(second[p], classifier) for p in ("speech", "nonspeech")}
    def figures_of(name: str, rows: list[Row], nonspeech: list[Row]) -> dict[str, Any]:
        return figures(name, rows, nonspeech, second)

    results = [
        figures_of(f"{args.first_engine} alone",
                rescore(first["speech"], alone[args.first_engine]),
                rescore(first["nonspeech"], alone[args.first_engine])),
        figures_of(f"{args.second_engine} alone",
                rescore(second["speech"], alone[args.second_engine]),
                rescore(second["nonspeech"], alone[args.second_engine])),
        figures_of(f"{args.first_engine}, {pair}'s classifier", a["speech"], a["nonspeech"]),
        figures_of(f"{args.second_engine}, {pair}'s classifier", b["speech"], b["nonspeech"]),
        figures_of("oracle (either right)", *(oracle(a[p], b[p]) for p in ("speech", "nonspeech"))),
    ]
    for below in [float(x) for x in args.below.split(",")]:
        rows, nonspeech = scored(lambda x, y, t=below: combine(x, y, judge, t))
        results.append(figures_of(f"cascade below {below}", rescore(rows, classifier),
                               rescore(nonspeech, classifier)))
    for below in [float(x) for x in args.below.split(",")]:
        results.append(figures_of(
            f"cascade to both below {below}",
            *scored(lambda x, y, t=below: cascade_both(x, y, judge, classifier, t)),
        ))
    for below in [float(x) for x in args.below.split(",")]:
        results.append(figures_of(
            f"cascade to both below {below}, {args.second_engine}'s silence vetoes",
            *scored(lambda x, y, t=below: cascade_both(x, y, judge, classifier, t, True)),
        ))
    results += [
        figures_of("both transcripts", *scored(lambda x, y: both(x, y, classifier, False))),
        figures_of(f"both, {args.second_engine} hears speech",
                *scored(lambda x, y: both(x, y, classifier, True))),
        figures_of("surer of the two", *scored(lambda x, y: surer(x, y, classifier))),
    ]
    for above in [float(x) for x in args.no_speech.split(",")]:
        results.append(figures_of(
            f"{args.first_engine}, no request if no-speech > {above}",
            *scored(lambda x, y, p=above: judged(x, y, classifier, p)),
        ))
    shipped_below = intents.speech.second_opinion_below
    lines: dict[str, list[Row]] = noise or {}
    gates: list[tuple[str, Callable[[list[Row]], list[bool]]]] = [] if noise is None else [
        (f"noise > {above:g} dBFS", partial(noisier, above=above))
        for above in [float(x) for x in args.noise_above.split(",")]
    ] + [
        (f"SNR < {below:g} dB", partial(under_snr, below=below))
        for below in [float(x) for x in args.snr_below.split(",")]
    ]
    for gate, noisy in gates:
        for how in ("joined", "vetoed", "oracle"):
            results.append(figures_of(
                f"below {shipped_below} or {gate}, {how}",
                *(cascade_or_noisy(first[p], second[p], noisy(lines[p]), judge,
                                   classifier, shipped_below, how)
                  for p in ("speech", "nonspeech")),
            ))
    base = results[0]["right"]
    for r in results:
        right = r.pop("right")
        r["gained"] = sum(x and not y for x, y in zip(right, base, strict=True))
        r["lost"] = sum(y and not x for x, y in zip(right, base, strict=True))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    calls, ns = len(first["speech"]), len(first["nonspeech"])
    print(f"{'rule':<44}{'overall':>16}{'worst condition':>34}{'non-speech':>12}"
          f"{'2nd decodings':>22}{'+/- vs ' + args.first_engine:>18}")
    for r in results:
        print(f"{r['rule']:<44}{r['correct']:>6}/{calls} {r['accuracy']:>6.1%}"
              f"{r['worst']:>27} {r['worst_accuracy']:>5.1%}{r['nonspeech']:>12}"
              f"{r['second_decoded']:>8} ({r['second_decoded'] / calls:>4.0%}) "
              f"+{r['second_decoded_nonspeech']}/{ns}"
              f"{'+' + str(r['gained']) + ' -' + str(r['lost']):>14}"
              + (f"  cpu {1000 * cpu['p50']:.0f}/{1000 * cpu['p95']:.0f} ms"
                 if (cpu := r["second_cpu_s"]) else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
