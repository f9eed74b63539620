"""``ivr classify FILE.wav ...``: recognize and classify recorded caller audio.

Prints one JSON object per file and line:
``{"file", "text", "category", "urgency", "confidence", "engine"}`` (plus ``runner_up`` and
``model``; ``error`` instead when a file cannot be read). Accepts what Asterisk records, 8 kHz
16-bit mono WAV, and 16 kHz; other rates are resampled.
"""

from __future__ import annotations

import argparse
import json
import sys
import wave
from pathlib import Path
from typing import Any, TextIO

from ivr.speech.audio import MODEL_RATE, TELEPHONE_RATE, read_wav, resample
from ivr.speech.classifier import IntentClassifier
from ivr.speech.engines import Engine, EngineLoadError, load_engine
from ivr.speech.schema import DEFAULT_INTENTS, load_intents


def classify_file(
    path: str, engine: Engine, classifier: IntentClassifier
) -> dict[str, Any]:
    """Recognize one WAV file and classify what was said."""
    pcm, rate = read_wav(path)
    if rate not in (TELEPHONE_RATE, MODEL_RATE):
        pcm, rate = resample(pcm, rate, MODEL_RATE), MODEL_RATE
    recognizer = engine.recognizer(rate=rate)
    try:
        recognizer.accept(pcm)
        transcript = recognizer.final()
    finally:
        recognizer.close()
    verdict = classifier.classify(transcript.text)
    return {
        "file": path,
        "text": transcript.text,
        "category": verdict.category,
        "urgency": verdict.urgency,
        "confidence": verdict.confidence,
        "engine": transcript.engine,
        "model": transcript.model,
        "runner_up": verdict.runner_up,
    }


def classify_main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of ``ivr classify``; 0 when every file was classified, 1 otherwise."""
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="ivr classify", description="Recognize and classify caller audio (WAV)."
    )
    parser.add_argument("files", nargs="+", metavar="FILE.wav")
    parser.add_argument("--intents", type=Path, default=DEFAULT_INTENTS, help="intents YAML")
    args = parser.parse_args(argv)
    try:
        intents = load_intents(args.intents)
        engine = load_engine(intents)
    except (ValueError, EngineLoadError) as exc:
        print(f"ivr classify: {exc}", file=sys.stderr)
        return 2
    classifier = IntentClassifier(intents)
    status = 0
    for path in args.files:
        try:
            row = classify_file(path, engine, classifier)
        except (OSError, ValueError, EOFError, wave.Error) as exc:
            row, status = {"file": path, "error": str(exc)}, 1
        print(json.dumps(row, ensure_ascii=False), file=out, flush=True)
    return status


if __name__ == "__main__":
    raise SystemExit(classify_main())
