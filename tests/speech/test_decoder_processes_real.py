"""pocketsphinx served from decoder processes (as ``ivr serve`` runs it) hears what it hears
in the service's own process."""

from __future__ import annotations

import pytest
import pytest_twisted
from synthesize import ensure_audio, load_eval_set
from twisted.internet import reactor

from ivr.speech.audio import read_wav
from ivr.speech.engines import load_pocketsphinx
from ivr.speech.live import open_live
from ivr.speech.pool import SpeechPool

pytestmark = pytest.mark.slow

SAMPLE = [u for u in load_eval_set() if u["split"] == "heldout"][:12]


def decode(engine, pcm: bytes):
    """One utterance in 100 ms batches, as the AudioSocket server hands them on."""
    recognizer = engine.recognizer(8000)
    try:
        for at in range(0, len(pcm), 1600):
            recognizer.accept(pcm[at:at + 1600])
        return recognizer.final()
    finally:
        recognizer.close()


def test_decoder_processes_give_the_transcripts_of_the_same_engine_in_process(
    intents, pocketsphinx_engine
) -> None:
    """Twelve held-out callers: the same words and the same confidence from two decoder
    processes as from the engine loaded here, and the same engine name in the work order."""
    served = load_pocketsphinx(intents, processes=2)
    try:
        audio = ensure_audio([u["text"] for u in SAMPLE])
        for utterance in SAMPLE:
            pcm, rate = read_wav(audio[utterance["text"]])
            assert rate == 8000
            assert decode(served, pcm) == decode(pocketsphinx_engine, pcm), utterance["text"]
        assert (served.name, served.model) == (pocketsphinx_engine.name,
                                               pocketsphinx_engine.model)
    finally:
        served.stop()


@pytest_twisted.ensureDeferred
async def test_decoder_processes_driven_by_the_reactor_give_the_same_transcripts(
    intents, pocketsphinx_engine
) -> None:
    """The same twelve callers through the live path ``ivr serve`` uses (the reactor writes
    each batch to the decoder process, no thread between): the same transcripts again."""
    served = load_pocketsphinx(intents, processes=2)
    served.attach(reactor)
    try:
        audio = ensure_audio([u["text"] for u in SAMPLE])
        for utterance in SAMPLE:
            pcm, _rate = read_wav(audio[utterance["text"]])
            lease = SpeechPool.inline(1).try_acquire()
            assert lease is not None
            live = open_live(served, lease, 8000, None)
            try:
                for at in range(0, len(pcm), 1600):
                    await live.accept(pcm[at:at + 1600])
                heard = await live.final()
            finally:
                live.close()
            assert heard == decode(pocketsphinx_engine, pcm), utterance["text"]
    finally:
        served.stop()
