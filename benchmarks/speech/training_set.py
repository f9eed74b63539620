"""What a model learns telephone callers from: the tune split (never a held-out sentence the
evaluation scores), spoken by the development voices over the development lines. Shared by
``adapt_pocketsphinx.py`` and ``tune_whisper.py``; blind voices are refused, so they stay
unheard."""

from __future__ import annotations

import argparse

import voices as voice_cache
from conditions import DEFAULT_CONDITIONS
from synthesize import load_eval_set


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sample", type=int, help="only the first N tune sentences")
    parser.add_argument("--voices", help="comma-separated (default: the development voices)")
    parser.add_argument("--conditions", help="comma-separated (default: the 12 development "
                        "conditions)")


def voices_and_lines(parser: argparse.ArgumentParser, args: argparse.Namespace
                     ) -> tuple[list[str], list[str]]:
    """The voices and conditions ``args`` name (the development ones by default); a blind
    voice is a usage error."""
    voices = args.voices.split(",") if args.voices else list(voice_cache.DEV_VOICES)
    for voice in voices:
        if voice not in voice_cache.DEV_VOICES:
            parser.error(f"{voice}: only development voices teach a model (blind stay unheard)")
    conditions = args.conditions.split(",") if args.conditions else list(DEFAULT_CONDITIONS)
    return voices, conditions


def tune_sentences(sample: int | None = None) -> list[str]:
    """The tune split's sentences, the first ``sample`` of them when given."""
    tune = [u["text"] for u in load_eval_set() if u["split"] == "tune"]
    return tune[:sample] if sample else tune
