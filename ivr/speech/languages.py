"""Speech in any language the hotline serves: one engine and one classifier per language.

Each language's intents file (``intents.yaml``, ``intents.<code>.yaml``) names its engine and
model. :func:`load_language_engine` loads it once per process (``ivr check-config`` at start
and the AudioSocket server share the loaded model: a Korean vosk model is 570 MB resident),
and builds the grammar of the language's own words (any script).
"""

from __future__ import annotations

import threading
from typing import Any

from ivr.speech.schema import IntentsConfig

_engines: dict[tuple[Any, ...], Any] = {}
_engines_lock = threading.Lock()


def load_language_engine(intents: IntentsConfig) -> Any:
    """The engine of this intents file, loaded once per process and shared after that.

    Raises :class:`ivr.speech.engines.EngineLoadError` when the model is missing or broken.
    The same model with the same grammar is the same engine (two languages may share one).
    """
    from ivr.speech.engines import grammar_phrases, load_engine

    speech = intents.speech
    if speech.engine == "vosk":
        phrases = tuple(grammar_phrases(intents)) if speech.vosk_grammar else None
        key: tuple[Any, ...] = ("vosk", str(speech.vosk_model), phrases)
    else:
        key = ("pocketsphinx", intents.model_dump_json())
    with _engines_lock:
        if key not in _engines:
            _engines[key] = load_engine(intents)
        return _engines[key]
