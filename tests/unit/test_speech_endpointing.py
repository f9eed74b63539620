"""Endpointing: start and end of a caller's utterance from frame energy, counted in audio time."""

from __future__ import annotations

from ivr.speech.endpointing import PRE_ROLL_MS, Endpointer, Event
from ivr.speech.schema import EndpointingConfig
from ivr.speech.testing import silence_frame, tone_frame

CONFIG = EndpointingConfig(
    speech_threshold=500,
    speech_start_ms=100,
    trailing_silence_ms=700,
    no_speech_timeout_ms=5000,
    max_utterance_ms=12000,
)
LOUD, QUIET = tone_frame(), silence_frame()


def feed(ep: Endpointer, frame: bytes, count: int) -> list[Event]:
    events = []
    for _ in range(count):
        event, _audio = ep.feed(frame)
        if event is not None:
            events.append(event)
    return events


def test_speech_starts_after_the_configured_voiced_time() -> None:
    """Four loud frames (80 ms) are a click; the fifth (100 ms) starts the utterance."""
    ep = Endpointer(CONFIG)
    assert feed(ep, LOUD, 4) == []
    assert ep.state == "waiting"
    assert feed(ep, LOUD, 1) == [Event.SPEECH_START]
    assert ep.state == "speaking"


def test_a_short_noise_burst_does_not_start_speech() -> None:
    """Voiced time must be consecutive: loud frames broken by silence never add up."""
    ep = Endpointer(CONFIG)
    for _ in range(20):
        assert feed(ep, LOUD, 3) + feed(ep, QUIET, 1) == []


def test_trailing_silence_ends_the_utterance_exactly() -> None:
    """The utterance ends on the frame that completes 700 ms of silence, not before."""
    ep = Endpointer(CONFIG)
    feed(ep, LOUD, 30)
    assert feed(ep, QUIET, 34) == []
    assert feed(ep, QUIET, 1) == [Event.END_OF_SPEECH]
    assert ep.state == "done"


def test_a_pause_shorter_than_the_trailing_silence_keeps_the_utterance() -> None:
    """A breath between words (400 ms) does not cut the caller off."""
    ep = Endpointer(CONFIG)
    feed(ep, LOUD, 10)
    assert feed(ep, QUIET, 20) + feed(ep, LOUD, 10) == []
    assert ep.state == "speaking"


def test_no_speech_timeout_counts_only_once_armed() -> None:
    """While the prompt plays (not armed) silence is expected; after arm() 5 s of it ends the
    step as no speech."""
    ep = Endpointer(CONFIG, armed=False)
    assert feed(ep, QUIET, 1000) == []
    ep.arm()
    assert feed(ep, QUIET, 249) == []
    assert feed(ep, QUIET, 1) == [Event.NO_SPEECH]


def test_a_caller_who_never_stops_is_cut_at_the_maximum() -> None:
    """12 s of continuous speech end the utterance with MAX_LENGTH."""
    ep = Endpointer(CONFIG)
    events = feed(ep, LOUD, 600)
    assert events == [Event.SPEECH_START, Event.MAX_LENGTH]


def test_pre_roll_reaches_the_recognizer_and_silence_before_it_does_not() -> None:
    """At the start the last 300 ms before it are passed on (the first syllable is quiet);
    earlier silence is not, so no CPU is spent on it; during speech every frame passes."""
    ep = Endpointer(CONFIG)
    for _ in range(100):
        assert ep.feed(QUIET) == (None, b"")
    for _ in range(4):
        ep.feed(LOUD)
    event, audio = ep.feed(LOUD)
    assert event is Event.SPEECH_START
    assert len(audio) == len(LOUD) * PRE_ROLL_MS // 20
    assert audio.endswith(LOUD * 5)
    assert ep.feed(QUIET) == (None, QUIET)


def test_frames_after_the_verdict_are_ignored() -> None:
    """Once done, the endpointer neither reports again nor passes audio on."""
    ep = Endpointer(CONFIG)
    feed(ep, LOUD, 10)
    feed(ep, QUIET, 35)
    assert ep.feed(LOUD) == (None, b"")
