"""Top-1 accuracy and confusion matrix of speech -> category on the evaluation set.

    .venv/bin/python benchmarks/speech/evaluate.py [--split heldout|tune|all] [--json]
        [--rows FILE]

Each utterance (piper voice, telephone path, see ``synthesize.py``) is streamed through the
production path: the AudioSocket protocol with its endpointer, the configured engine (the
default is pocketsphinx with the domain language model) and the classifier. Also reports the
classifier alone on the reference text, which separates recognition errors from
classification errors. Target: at least 95% on the held-out part with the default engine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from channel import loud_level  # noqa: E402
from synthesize import DEFAULT_CACHE, ensure_audio, load_eval_set  # noqa: E402

from ivr.speech.audio import read_wav  # noqa: E402
from ivr.speech.audiosocket import AudioSocketServer, SpeechResult  # noqa: E402
from ivr.speech.classifier import IntentClassifier, understood  # noqa: E402
from ivr.speech.engines import load_engine  # noqa: E402
from ivr.speech.pool import SpeechPool  # noqa: E402
from ivr.speech.schema import DEFAULT_INTENTS, IntentsConfig, load_intents  # noqa: E402
from ivr.speech.testing import stream_call  # noqa: E402

CALLS_PER_LISTENER = 1_000_000


class RecordingDecoder:
    """Whisper's model, remembering its last decoding before the hallucination guards: the
    rows keep its no-speech probability and mean log probability, so a rule judging by them
    (a TV on a non-speech call) is measured offline."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.last: Any = None
        self.cpu_s = 0.0  # CPU of the last decoding (the evaluation decodes on one thread)

    def decode(self, audio: Any, **options: Any) -> Any:
        started = time.process_time()
        self.last = self._model.decode(audio, **options)
        self.cpu_s = time.process_time() - started
        return self.last


def whisper_of(engine: Any) -> Any:
    """The Whisper engine inside ``engine`` (itself, or a combination's second), or None."""
    for candidate in (engine, getattr(engine, "second", None)):
        if getattr(candidate, "name", None) == "whisper":
            return candidate
    return None


class Listener:
    """The production path from caller audio to category, on a virtual clock: the
    AudioSocket protocol with its endpointer, the configured engine and the classifier."""

    def __init__(self, intents: IntentsConfig) -> None:
        self.intents = intents
        # Accuracy of the engine, not of this machine's load: a combination waits for its
        # second opinion however long it takes (bench_engines.py measures the skips).
        self.engine = load_engine(
            intents, intents.speech.model_copy(update={"second_opinion_wait_ms": 0})
        )
        self.classifier = IntentClassifier(intents)
        self.clock = Clock()
        # Every call stays "connected" here (a StringTransport is never lost), so the
        # server's cap on open connections (256) would refuse the 257th call: an evaluation
        # of thousands of calls needs room for all of them.
        self.server = AudioSocketServer(
            self.engine, self.classifier, SpeechPool.inline(), self.clock,
            intents.speech.endpointing, max_connections=CALLS_PER_LISTENER,
        )
        whisper = whisper_of(self.engine)
        self.whisper: RecordingDecoder | None = None
        if whisper is not None:
            self.whisper = whisper._model = RecordingDecoder(whisper._model)

    def hear(self, pcm: bytes, prompt_s: float = 0.0) -> dict:
        """Stream one call's 8 kHz audio; what came out (outcome, text, category, CPU).
        ``prompt_s``: the server plays a prompt that long first, its endpointer listening to
        the line unarmed meanwhile (the call's first ``prompt_s`` are the caller's line
        while they listen), as the speech step does."""
        results: list[SpeechResult] = []
        if self.whisper is not None:
            self.whisper.last = None
        started = time.process_time()
        prompt = b"\0\0" * round(prompt_s * 8000)
        d, _ = stream_call(self.server, self.clock, pcm, prompt=prompt)
        d.addCallback(results.append)
        for _ in range(100):  # a call that ended quietly: the line's watchdog counts the gap
            if results:
                break
            self.clock.advance(0.2)
        cpu = time.process_time() - started
        result = results[0]
        verdict = result.classification
        decoded = self.whisper.last if self.whisper is not None else None
        # Whisper's own view of the call (None: it did not decode): its raw text, which the
        # guards may have dropped, how sure it is there was no speech, its mean token score.
        whisper = {} if self.whisper is None else {
            "whisper_text": decoded.text if decoded else None,
            "no_speech_prob": round(decoded.no_speech_prob, 4) if decoded else None,
            "avg_logprob": round(decoded.avg_logprob, 4) if decoded else None,
            "whisper_cpu_s": round(self.whisper.cpu_s, 4) if decoded else None,
        }
        return {
            "outcome": result.outcome,
            "heard": result.text,
            # What the gateway takes as a request (a word the classifier knows), else none.
            "predicted": verdict.category if verdict and understood(verdict) else "(none)",
            "confidence": verdict.confidence if verdict else 0.0,
            # The recognizer's own confidence (Moonshine: mean token probability) and how
            # loud the call is, for telling callers from a TV on the saved rows.
            "engine_confidence": result.confidence,
            "level": loud_level(pcm),
            # How far the utterance rose over the line's noise under the prompt (endpointer).
            "snr_db": result.snr_db,
            # How long the endpointer held the utterance open (None: it never started).
            "utterance_s": utterance_seconds(result.timings),
            # Whether the utterance started while the prompt still played (a barge-in), and
            # when, from the call's start.
            "barge_in": "barge_in" in result.timings,
            "speech_start_s": seconds_between(result.timings, "connected", "speech_start"),
            "cpu_s": cpu,
            "audio_s": len(pcm) / 16000,
            **whisper,
        }


def utterance_seconds(timings: dict[str, float]) -> float | None:
    return seconds_between(timings, "speech_start", "end_of_speech")


def seconds_between(timings: dict[str, float], first: str, then: str) -> float | None:
    if first not in timings or then not in timings:
        return None
    return round(timings[then] - timings[first], 2)


def recognize_all(
    utterances: list[dict], intents_path: Path = DEFAULT_INTENTS, cache: Path = DEFAULT_CACHE
) -> list[dict]:
    """Stream every utterance through the production path; one row per utterance."""
    listener = Listener(load_intents(intents_path))
    paths = ensure_audio([u["text"] for u in utterances], cache)
    rows = []
    for u in utterances:
        pcm, rate = read_wav(paths[u["text"]])
        assert rate == 8000, paths[u["text"]]
        row = listener.hear(pcm)
        rows.append({**u, **row, "text_only": listener.classifier.classify(u["text"]).category})
    return rows


def confusion(rows: list[dict], categories: list[str]) -> str:
    """Confusion matrix as text: rows are the truth, columns the prediction."""
    counts = Counter((r["category"], r["predicted"]) for r in rows)
    cols = [*categories, "(none)"]
    width = max(len(c) for c in cols) + 1
    lines = ["truth \\ predicted".ljust(18) + "".join(c[:width].rjust(width) for c in cols)]
    for truth in categories:
        cells = "".join(str(counts.get((truth, c), 0)).rjust(width) for c in cols)
        lines.append(truth.ljust(18) + cells)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["heldout", "tune", "all"], default="heldout")
    parser.add_argument("--origin", help="only utterances of this origin (e.g. dev-4)")
    parser.add_argument("--intents", type=Path, default=DEFAULT_INTENTS)
    parser.add_argument("--json", action="store_true", help="print a JSON summary only")
    parser.add_argument("--rows", type=Path, help="also write every call's row here (JSON), "
                        "for rescore.py")
    args = parser.parse_args(argv)
    utterances = [u for u in load_eval_set() if args.split in ("all", u["split"])]
    if args.origin:
        utterances = [u for u in utterances if u.get("origin") == args.origin]
    rows = recognize_all(utterances, args.intents)
    if args.rows:
        args.rows.write_text(json.dumps({"speech": rows, "nonspeech": []}))
    categories = list(load_intents(args.intents).categories)
    correct = sum(r["predicted"] == r["category"] for r in rows)
    text_correct = sum(r["text_only"] == r["category"] for r in rows)
    summary = {
        "split": args.split,
        "utterances": len(rows),
        "accuracy": round(correct / len(rows), 4),
        "text_only_accuracy": round(text_correct / len(rows), 4),
        "rtf": round(sum(r["cpu_s"] for r in rows) / sum(r["audio_s"] for r in rows), 4),
        "misses": [
            {k: r[k] for k in ("category", "predicted", "confidence", "text", "heard")}
            for r in rows
            if r["predicted"] != r["category"]
        ],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"split {args.split}: {len(rows)} utterances")
    print(f"top-1 accuracy (speech): {correct}/{len(rows)} = {summary['accuracy']:.1%}")
    print(f"classifier on reference text: {text_correct}/{len(rows)}")
    print(f"CPU per audio second (single stream): {summary['rtf']}")
    print()
    print(confusion(rows, categories))
    if summary["misses"]:
        print("\nmisses:")
        for m in summary["misses"]:
            print(f"  {m['category']} -> {m['predicted']} ({m['confidence']}): {m['text']!r}")
            print(f"      heard {m['heard']!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
