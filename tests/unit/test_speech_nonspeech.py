"""Noise and sounds that are not a caller speaking do not become requests: the endpointer's
modulation gate, and the gateway's rule that a transcript with no word of a request is no
speech (ask again, then the menu). Fake engine, virtual clock, no socket."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from prometheus_client import REGISTRY
from twisted.internet import defer, task

from ivr.languages import Language
from ivr.speech.audiosocket import AudioSocketServer, Recognition
from ivr.speech.classifier import IntentClassifier, understood
from ivr.speech.gateway import SpeechGateway
from ivr.speech.pool import SpeechPool
from ivr.speech.schema import EndpointingConfig, load_intents
from ivr.speech.testing import FakeEngine, stream_call, tone_frame

INTENTS = load_intents()
GATED = EndpointingConfig(min_modulation_db=11.0)


def steady_noise(seconds: float, rms: float = 1500.0) -> bytes:
    rng = np.random.default_rng(7)
    x = rng.normal(0.0, rms, int(seconds * 8000))
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def voice(seconds: float) -> bytes:
    """Loud and quiet 100 ms stretches taking turns, as syllables do."""
    frames = int(seconds * 50)
    return b"".join(tone_frame(3000 if (i // 5) % 2 == 0 else 400) for i in range(frames))


class FakeSession:
    """The AGI calls SpeechGateway.listen makes; EXEC AudioSocket plays ``audio`` into the
    server as Asterisk would, one utterance per call."""

    uniqueid = "1700000000.1"

    def __init__(self, server: AudioSocketServer, clock: task.Clock, audio: list[bytes]) -> None:
        self.server, self.clock, self.audio = server, clock, list(audio)
        self.played: list[str] = []
        self.asked: list[str] = []

    async def command(self, *args: Any, timeout: Any = None) -> str:
        (call_uuid,) = list(self.server._expected)
        stream_call(self.server, self.clock, self.audio.pop(0), call_uuid=call_uuid)
        return "200 result=-1"

    async def stream_file(self, path: str) -> None:
        self.played.append(path)

    async def get_data(self, prompt: str, timeout_ms: int, digits: int) -> str:
        self.asked.append(prompt)
        return ""


def listen(transcripts: list[str], audio: list[bytes], endpointing: EndpointingConfig) -> Any:
    clock = task.Clock()
    engine = FakeEngine(transcripts)
    recognition = Recognition(engine, IntentClassifier(INTENTS))
    server = AudioSocketServer(
        engine, recognition.classifier, SpeechPool.inline(), clock, endpointing,
        languages={"en": recognition},
    )
    language = Language(code="en", intents=INTENTS, prompts=None, entry="main-en", default=True)
    cfg = SimpleNamespace(languages={"en": language}, intents=INTENTS)
    gateway = SpeechGateway(
        server, config=lambda: cfg, host_sound=lambda name: Path(f"/nonexistent/{name}.wav"),
        sound=lambda name: name, address=("127.0.0.1", 0),
    )
    session = FakeSession(server, clock, audio)
    out: list[Any] = []
    defer.ensureDeferred(gateway.listen(session)).addBoth(out.append)  # type: ignore[arg-type]
    assert out, "listen did not finish"
    return out[0], session, engine


def test_a_transcript_with_no_word_of_a_request_is_not_understood() -> None:
    """ "okay", "pfft", "thank you": the classifier knows none of these words, so there is
    no request; a word it knows makes one."""
    classifier = IntentClassifier(INTENTS)
    for heard in ("okay", "pfft", "thank you", "uh hello"):
        assert not understood(classifier.classify(heard)), heard
    assert understood(classifier.classify("my internet is down"))
    assert not understood(None)


def test_words_of_no_request_twice_go_to_the_menu_without_a_confirmation() -> None:
    """A TV heard as "thank you" then a cough heard as "okay": asked again, then told it was
    not understood and sent to the menu; never asked to confirm a category."""
    result, session, _ = listen(["thank you", "okay"], [voice(1.0), voice(1.0)], GATED)
    assert result is None
    assert session.asked == []
    assert session.played[-1].endswith("not-understood")


def test_steady_noise_is_no_speech_and_the_recognizer_is_not_asked() -> None:
    """A fan loud enough to open the endpointer: no speech at the end of it, so the engine's
    transcript (whatever it would make of the noise) is never taken; the caller is asked
    again and a real request the second time is taken."""
    result, _session, engine = listen(
        ["my internet is down"], [steady_noise(2.0), voice(1.0)], GATED
    )
    assert result is not None and result["category"] == "fault"
    first = engine.recognizers[0]
    assert first.closed and not first.finished


def test_a_sure_request_heard_barely_over_the_line_is_confirmed_and_a_tv_cannot() -> None:
    """A TV in the room: its programme is the line's noise under the prompt, and its words
    rise only a few dB over it. The engine hears a request in them that the classifier is
    sure of ("my internet is down"), but the words were under ``confirm_below_snr_db`` over
    the line, so the caller is asked to press 1; nobody does, so no request (the menu). The
    same words from a caller on a quiet line go through unasked."""
    margined = GATED.model_copy(update={"noise_margin_db": 7.0})
    tv_words = b"".join(
        np.clip(np.frombuffer(tone_frame(12000 if (i // 5) % 2 == 0 else 800), "<i2")
                + np.frombuffer(steady_noise(0.02, rms=1500.0), "<i2"), -32768, 32767)
        .astype("<i2").tobytes()
        for i in range(50)
    )
    tv = steady_noise(2.0) + tv_words + steady_noise(1.0)
    confirmations = ("hotline_speech_confirmations_total", {"reason": "snr", "answer": "no"})
    before = REGISTRY.get_sample_value(*confirmations) or 0.0
    result, session, _ = listen(["my internet is down"], [tv], margined)
    assert result is None
    assert session.asked == ["confirm-fault"]
    assert REGISTRY.get_sample_value(*confirmations) == before + 1

    caller = b"\0\0" * 8000 + voice(1.0) + b"\0\0" * 8000
    result, session, _ = listen(["my internet is down"], [caller], margined)
    assert result is not None and result["category"] == "fault"
    assert session.asked == []
