"""Steady noise through the real path (shipped endpointing, pocketsphinx) is no speech.

The full non-speech figure (music, a TV, coughs too) is measured by
``benchmarks/speech/conditions.py`` (docs/speech-conditions.md); this pins the part the
endpointer's modulation gate guarantees, in a few seconds.
"""

from __future__ import annotations

import channel
import numpy as np
import pytest
from twisted.internet.task import Clock

from ivr.speech.audiosocket import AudioSocketServer
from ivr.speech.classifier import IntentClassifier, understood
from ivr.speech.pool import SpeechPool
from ivr.speech.testing import stream_call

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("rms", [700.0, 1500.0, 3000.0, 6000.0])
def test_steady_noise_loud_enough_to_open_the_endpointer_is_no_request(
    intents, pocketsphinx_engine, rms: float
) -> None:
    """A bad line (steady white noise) at levels from a quiet caller's voice to a shout,
    with no one speaking: the step ends without a request (the caller is asked again, then
    the DTMF menu), whatever pocketsphinx would have made of the noise. (Traffic, with its
    horns and passing cars, is not steady: its figure is in docs/speech-conditions.md.)"""
    rng = np.random.default_rng(int(rms))
    noise = channel.white_alone(3.0, rng, rms=rms)
    pcm = channel.apply("band+ulaw", channel.to_pcm(noise), 1)
    clock = Clock()
    server = AudioSocketServer(
        pocketsphinx_engine, IntentClassifier(intents), SpeechPool.inline(), clock,
        intents.speech.endpointing,
    )
    d, _ = stream_call(server, clock, pcm, trailing_silence_s=6.0)
    results: list = []
    d.addCallback(results.append)
    [result] = results
    assert not (result.outcome == "speech" and understood(result.classification)), result.text
