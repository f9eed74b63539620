"""Speech in any language the hotline serves: one engine and one classifier per language.

Each language's intents file (``intents.yaml``, ``intents.<code>.yaml``) names its engine and
model. :func:`load_language_engine` loads it once per process (``ivr check-config`` at start
and the AudioSocket server share the loaded model: a Korean vosk model is 570 MB resident),
and builds the grammar of the language's own words (any script). After a config reload,
:func:`retain_engines` lets go of the models no language uses any more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from ivr.speech.schema import IntentsConfig

_engines: dict[tuple[Any, ...], Any] = {}
# Held only to read or change the cache, never while a model loads (a vosk model takes
# seconds, and the reactor thread takes this lock after a reload).
_engines_lock = threading.Lock()
_loading: dict[tuple[Any, ...], threading.Lock] = {}  # one lock per model being loaded


def load_language_engine(intents: IntentsConfig) -> Any:
    """The engine of this intents file, loaded once per process and shared after that.

    Raises :class:`ivr.speech.engines.EngineLoadError` when the model is missing or broken.
    The same model with the same grammar is the same engine (two languages may share one);
    a vosk model already loaded with another grammar is shared, not loaded again.
    """
    from ivr.speech.engines import Engine, VoskEngine, load_engine

    key = engine_key(intents)
    with _engines_lock:
        if key in _engines:
            return _engines[key]
        loading = _loading.setdefault(key, threading.Lock())
    with loading:  # a second thread wanting the same model waits for the first one's
        with _engines_lock:
            if key in _engines:
                return _engines[key]
            same_model = next(
                (e for k, e in _engines.items() if k[0] == "vosk" and k[:2] == key[:2]), None
            )
        engine: Engine
        if isinstance(same_model, VoskEngine):
            engine = same_model.with_phrases(key[2])
        else:
            engine = load_engine(intents, decoder_processes=decoder_processes(intents))
        with _engines_lock:
            _engines[key] = engine
            _loading.pop(key, None)
        return engine


def decoder_processes(intents: IntentsConfig) -> int:
    """How many processes decode for this language's engine in the service
    (``speech.decoder_processes``; default: one per speech worker, ``speech.workers`` or the
    cores)."""
    speech = intents.speech
    return speech.worker_count if speech.decoder_processes is None else speech.decoder_processes


def engine_key(intents: IntentsConfig) -> tuple[Any, ...]:
    """What makes two intents files share one engine: the same model and what is built from
    the intents (the pocketsphinx language model; the vosk grammar)."""
    from ivr.speech.engines import grammar_phrases

    speech = intents.speech
    if speech.engine == "vosk":
        phrases = tuple(grammar_phrases(intents)) if speech.vosk_grammar else None
        return ("vosk", str(speech.vosk_model), phrases)
    if speech.engine == "whisper":
        from ivr.speech.whisper import domain_prompt

        prompt = domain_prompt(intents) if speech.whisper_prompt else None
        return ("whisper", str(speech.whisper_model), prompt, speech.workers)
    if speech.engine == "moonshine":
        return ("moonshine", str(speech.moonshine_model))
    # pocketsphinx's language model (and a combination's judge) is built from everything.
    return (speech.engine, intents.model_dump_json())


def retain_engines(in_use: Iterable[Any]) -> int:
    """Forget every loaded engine not in ``in_use`` (a reload replaced it), so its memory goes
    once the calls still decoding with it end; returns how many cache entries were dropped."""
    keep = {id(engine) for engine in in_use}
    return _forget(lambda engine: id(engine) not in keep)


def release_engines(engines: Iterable[Any], in_use: Iterable[Any]) -> int:
    """Forget ``engines`` (loaded for a reload that a later one superseded) unless in use."""
    drop = {id(engine) for engine in engines} - {id(engine) for engine in in_use}
    return _forget(lambda engine: id(engine) in drop)


def _forget(which: Callable[[Any], bool]) -> int:
    """Drop the cache entries whose engine ``which`` picks; how many were dropped."""
    with _engines_lock:
        stale = [key for key, engine in _engines.items() if which(engine)]
        for key in stale:
            del _engines[key]
    return len(stale)
