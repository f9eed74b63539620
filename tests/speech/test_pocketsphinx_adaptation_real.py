"""pocketsphinx's telephone transform, made and used for real: CMU Sphinx's own tools
(Debian's sphinxtrain) estimate one from rendered telephone calls, and the decoder loads
the shipped one."""

from __future__ import annotations

from pathlib import Path

import adapt_pocketsphinx
import numpy as np
import pytest

from ivr.speech.audio import read_wav
from ivr.speech.engines import PocketsphinxEngine, Transcript
from ivr.speech.mllr import WHEEL_STREAMS, read_mllr
from ivr.speech.schema import DEFAULT_MLLR

pytestmark = pytest.mark.slow


def test_the_wheels_quantized_mixture_weights_expand_to_distributions() -> None:
    weights = adapt_pocketsphinx.read_sendump(adapt_pocketsphinx.wheel_model() / "en-us" /
                                              "sendump")
    # 5,126 tied states, 3 feature streams, 128 Gaussians a stream (the wheel's PTM model)
    assert weights.shape == (5126, 3, 128)
    assert np.allclose(weights.sum(axis=2), 1.0)
    assert (weights > 0).all()


def test_sphinxtrain_estimates_a_transform_from_rendered_telephone_calls(tmp_path: Path) -> None:
    out = tmp_path / "telephone.mllr"
    assert adapt_pocketsphinx.main(["--sample", "24", "--work", str(tmp_path / "work"),
                                    "--out", str(out)]) == 0
    transform = read_mllr(out)
    assert transform.streams == WHEEL_STREAMS
    assert not np.allclose(transform.matrices[0][0], np.eye(13), atol=0.02)
    # bw aligned every call to its words: features and transcripts of all 24 were used
    assert len((tmp_path / "work" / "adapt.fileids").read_text().split()) == 24
    assert len(list((tmp_path / "work" / "wav").glob("*.mfc"))) == 24


def test_blind_voices_never_adapt_the_model(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        adapt_pocketsphinx.main(["--voices", "flite:slt", "--work", str(tmp_path)])


def test_the_decoder_loads_the_shipped_transform_and_hears_through_it(intents) -> None:
    """The engine names the transform in its model; it hears the familiar voice word for
    word through it, and with other posteriors than the model as trained: the transform is
    applied, not merely accepted."""
    from synthesize import ensure_audio

    adapted = PocketsphinxEngine.load(intents)
    assert adapted.model.startswith("en-us+mllr-")
    assert intents.speech.pocketsphinx_mllr == DEFAULT_MLLR
    speech = intents.speech.model_copy(update={"pocketsphinx_mllr": None})
    trained = PocketsphinxEngine.load(intents.model_copy(update={"speech": speech}))
    assert "+mllr-" not in trained.model

    texts = ["my internet keeps dropping every evening", "i want to cancel my contract",
             "there is a charge on my bill i do not recognize"]
    audio = ensure_audio(texts)

    def hear(engine: PocketsphinxEngine) -> list[Transcript]:
        out = []
        for text in texts:
            pcm, _ = read_wav(audio[text])
            recognizer = engine.recognizer(8000)
            recognizer.accept(pcm)
            out.append(recognizer.final())
            recognizer.close()
        return out

    through, without = hear(adapted), hear(trained)
    assert [t.text for t in through] == texts
    assert [t.confidence for t in through] != [t.confidence for t in without]
