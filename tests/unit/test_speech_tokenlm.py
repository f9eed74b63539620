"""The domain biases of Moonshine's greedy decoding (ivr.speech.tokenlm) and their seam with
the decoder loop and the config."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from ivr.speech.engines import moonshine_bias
from ivr.speech.moonshine import END_TOKEN, LAYERS, OnnxMoonshine, model_files, read_tokens
from ivr.speech.schema import SpeechEngineConfig, load_intents
from ivr.speech.tokenlm import SPACE, DomainBias, KeywordBias, TokenLM, encode_word

S = SPACE.encode()
# A toy tokenizer in the recognizer's layout: 0-2 special, then the merges in their order
# (each piece reachable through the ones before it), then single characters.
MERGES = [S + b"m", S + b"my", b"er", b"ne", S + b"i", S + b"in", S + b"int", S + b"inter",
          b"net", S + b"d", S + b"do", S + b"dow", S + b"down", S + b"u", S + b"up", S + b"is",
          S + b"M", S + b"My"]
PIECES = [b"<unk>", b"<s>", b"</s>", *MERGES,
          *(c.encode() for c in [SPACE, *"myinterdowupsxM."])]


def _ids(*pieces: bytes) -> list[int]:
    return [PIECES.index(p) for p in pieces]


def test_a_word_is_encoded_by_merging_the_best_ranked_pair_first() -> None:
    piece_ids = {p: i for i, p in enumerate(PIECES)}
    assert encode_word(SPACE + "my", piece_ids) == _ids(S + b"my")
    assert encode_word(SPACE + "internet", piece_ids) == _ids(S + b"inter", b"net")
    # a character without a piece falls back to its bytes (id 3 + byte, as Llama's)
    assert encode_word(SPACE + "\u00e9", piece_ids) == [*_ids(S), 3 + 0xC3, 3 + 0xA9]


def test_the_token_model_is_a_distribution_after_any_history() -> None:
    lm = TokenLM([[2, 3, 4], [2, 3, 5], [2, 6]], size=10, order=3)
    for history in ([0], [0, 2], [0, 2, 3], [0, 9, 9, 9]):
        p = np.exp(lm.logprobs(history))
        assert p[TokenLM.BOS] == pytest.approx(0.0, abs=1e-12)
        assert p.sum() == pytest.approx(1.0)
    after = lm.logprobs([0, 2, 3])
    assert after[4] > after[6] > after[8]  # seen after "2 3", seen elsewhere, never seen
    assert lm.logprobs([0, 2, 6])[TokenLM.EOS] > lm.logprobs([0, 2])[TokenLM.EOS]


def _bias() -> DomainBias:
    return DomainBias.build(PIECES, ["my internet is down", "my internet is down",
                                     "my internet is up"], 1.0, end_token=END_TOKEN)


def test_the_domain_model_favours_the_corpus_continuation() -> None:
    bias = _bias()
    history = bias.start()
    for token in _ids(S + b"My", S + b"inter", b"net", S + b"is"):  # case does not matter
        history = bias.advance(history, token)
    adjusted = bias.adjust(np.zeros(len(PIECES)), history)
    assert adjusted[_ids(S + b"down")[0]] > adjusted[_ids(S + b"up")[0]]
    assert adjusted[_ids(S + b"up")[0]] > adjusted[_ids(b"x")[0]]  # never in the corpus
    assert adjusted[END_TOKEN] < adjusted[_ids(S + b"down")[0]]


def test_punctuation_is_left_to_the_recognizer() -> None:
    """A token without a letter scores as the recognizer's likeliest word and is no history:
    favoured, a full stop cut sentences short."""
    bias = _bias()
    history = bias.advance(bias.start(), _ids(S + b"my")[0])
    decoder = np.full(len(PIECES), -5.0)
    decoder[_ids(S + b"down")[0]] = -1.0
    adjusted = bias.adjust(decoder, history)
    full_stop = _ids(b".")[0]
    shift = adjusted - decoder
    assert shift[full_stop] == pytest.approx(shift[_ids(S + b"down")[0]])
    assert bias.advance(list(history), full_stop) == history


def test_the_keyword_bonus_follows_a_keyword_s_spelling_only() -> None:
    bias = KeywordBias.build(PIECES, ["internet", "no service"], 2.0, end_token=END_TOKEN)
    zeros = np.zeros(len(PIECES))
    first = bias.adjust(zeros, bias.start())
    assert first[_ids(S + b"inter")[0]] == 2.0
    assert first[_ids(b"net")[0]] == 0.0  # no keyword starts inside a word
    assert first[_ids(S + b"down")[0]] == 0.0  # no penalty for other words
    history = bias.advance(bias.start(), _ids(S + b"inter")[0])
    assert bias.adjust(zeros, history)[_ids(b"net")[0]] == 2.0
    assert bias.advance(history, _ids(b"x")[0]) == []  # off the keyword
    assert bias.advance(history, _ids(S + b"down")[0]) == []  # a new word that is none


class _Encoder:
    def run(self, _names: Any, _inputs: dict[str, Any]) -> list[np.ndarray]:
        return [np.zeros((1, 3, 416), dtype=np.float32)]


class _ScriptedDecoder:
    """The merged decoder, scripted: step i returns the i-th row of log probabilities."""

    def __init__(self, steps: list[np.ndarray]) -> None:
        self.steps = steps
        self.step = 0

    def run(self, _names: Any, _inputs: dict[str, Any]) -> list[np.ndarray]:
        row = self.steps[min(self.step, len(self.steps) - 1)]
        self.step += 1
        cache = np.zeros((1, 8, 1, 52), dtype=np.float32)
        return [row[None, None, :].astype(np.float32), *([cache] * (LAYERS * 4))]


def _row(best: int, second: int | None = None, gap: float = 0.1) -> np.ndarray:
    row = np.full(len(PIECES), -20.0)
    row[best] = 0.0
    if second is not None:
        row[second] = -gap
    return row


def test_with_a_bias_a_close_call_goes_to_the_domain_a_clear_one_to_the_audio() -> None:
    down, up, x = _ids(S + b"down")[0], _ids(S + b"up")[0], _ids(b"x")[0]
    my, inter, net, is_ = _ids(S + b"my", S + b"inter", b"net", S + b"is")
    prefix = [_row(my), _row(inter), _row(net), _row(is_)]
    close = _ScriptedDecoder([*prefix, _row(up, down, gap=0.1), _row(END_TOKEN)])
    model = OnnxMoonshine(_Encoder(), close, PIECES, _bias())
    assert model.decode(np.zeros(1600), max_new_tokens=10).text == "my internet is down"
    clear = _ScriptedDecoder([*prefix, _row(x, down, gap=15.0), _row(END_TOKEN)])
    model = OnnxMoonshine(_Encoder(), clear, PIECES, _bias())
    assert model.decode(np.zeros(1600), max_new_tokens=10).text == "my internet isx"


def test_with_a_bias_nothing_said_stays_nothing() -> None:
    """The first step's end token is the recognizer's call: the domain model would hear a
    request in a cough."""
    model = OnnxMoonshine(_Encoder(), _ScriptedDecoder([_row(END_TOKEN, 4, gap=0.5)]),
                          PIECES, _bias())
    decoded = model.decode(np.zeros(1600), max_new_tokens=10)
    assert decoded.text == ""
    # and on a first step with words, the bias may not end the decoding there
    first = _row(_ids(S + b"my")[0], END_TOKEN, gap=0.01)
    model = OnnxMoonshine(_Encoder(), _ScriptedDecoder([first, _row(END_TOKEN)]), PIECES,
                          _EndingBias())
    assert model.decode(np.zeros(1600), max_new_tokens=10).text == "my"


class _EndingBias:
    """A bias that would rather end at once."""

    def start(self) -> list[int]:
        return []

    def adjust(self, logprobs: np.ndarray, history: Sequence[int]) -> np.ndarray:
        out = logprobs.copy()
        out[END_TOKEN] += 100.0
        return out

    def advance(self, history: list[int], token: int) -> list[int]:
        return history


def test_the_confidence_is_the_recognizer_s_own_probability_of_what_was_chosen() -> None:
    down, up = _ids(S + b"down")[0], _ids(S + b"up")[0]
    steps = [_row(_ids(S + b"my")[0]), _row(up, down, gap=0.5), _row(END_TOKEN)]
    model = OnnxMoonshine(_Encoder(), _ScriptedDecoder(steps), PIECES,
                          KeywordBias.build(PIECES, ["down"], 3.0, end_token=END_TOKEN))
    decoded = model.decode(np.zeros(1600), max_new_tokens=10)
    assert decoded.text == "my down"
    logp = [s - np.log(np.exp(s).sum()) for s in steps]
    expected = np.mean([logp[0].max(), logp[1][down], logp[2].max()])
    assert decoded.avg_logprob == pytest.approx(expected)


def test_one_bias_at_a_time_and_the_fusion_in_a_beam_shipped() -> None:
    with pytest.raises(ValidationError, match="moonshine_lm_weight and moonshine_keyword_bonus"):
        SpeechEngineConfig(engine="moonshine", moonshine_lm_weight=0.2,
                           moonshine_keyword_bonus=1.0)
    left_out = SpeechEngineConfig(engine="moonshine")
    assert (left_out.moonshine_beam, left_out.moonshine_lm_weight) == (1, 0.0)
    intents = load_intents(Path("config/intents.yaml"))
    assert (intents.speech.moonshine_beam, intents.speech.moonshine_lm_weight) == (3, 0.2)
    factory = moonshine_bias(intents, intents.speech)
    assert factory is not None
    assert isinstance(factory(PIECES, END_TOKEN), DomainBias)


def test_both_biases_build_on_the_real_tokenizer_and_the_shipped_intents() -> None:
    tokens = read_tokens((model_files("package:moonshine_cpp") / "tokenizer.bin").read_bytes())
    intents = load_intents(Path("config/intents.yaml"))
    piece_ids = {p: i for i, p in reversed(list(enumerate(tokens)))}
    complaint = encode_word(SPACE + "complaint", piece_ids)
    assert [tokens[i] for i in complaint] == [S + b"compla", b"int"]

    lm_settings = intents.speech.model_copy(update={"moonshine_lm_weight": 0.3})
    lm_factory = moonshine_bias(intents, lm_settings)
    assert lm_factory is not None
    bias = lm_factory(tokens, END_TOKEN)
    history = bias.start()
    for word in ["i", "want", "to", "make", "a"]:
        for token in encode_word(SPACE + word, piece_ids):
            history = bias.advance(history, token)
    adjusted = bias.adjust(np.zeros(len(tokens)), history)
    assert adjusted[complaint[0]] > adjusted[piece_ids[S + b"complete"]]

    kw_settings = intents.speech.model_copy(
        update={"moonshine_lm_weight": 0.0, "moonshine_keyword_bonus": 1.0})
    kw_factory = moonshine_bias(intents, kw_settings)
    assert kw_factory is not None
    keywords = kw_factory(tokens, END_TOKEN)
    assert keywords.adjust(np.zeros(len(tokens)), keywords.start())[complaint[0]] == 1.0


class _TableDecoder:
    """The merged decoder as a table: each row's log probabilities follow its last token
    (a batch of hypotheses in, a row each out)."""

    def __init__(self, table: dict[int, dict[int, float]]) -> None:
        self.table = table

    def run(self, _names: Any, inputs: dict[str, Any]) -> list[np.ndarray]:
        last = inputs["input_ids"][:, -1]
        rows = np.full((len(last), 1, len(PIECES)), -30.0, dtype=np.float32)
        for i, token in enumerate(last):
            for nxt, logp in self.table[int(token)].items():
                rows[i, 0, nxt] = logp
        cache = np.zeros((len(last), 8, 1, 52), dtype=np.float32)
        return [rows, *([cache] * (LAYERS * 4))]


def test_a_beam_finds_the_likelier_sentence_greedy_walks_past() -> None:
    """Greedy takes the likelier first word and then needs a doubtful second; a beam of two
    keeps the other first word, whose sentence is likelier per token."""
    my, up, x, down = _ids(S + b"my", S + b"up", b"x", S + b"down")
    ln = np.log
    table = {1: {my: ln(0.55), up: ln(0.45)},
             my: {x: ln(0.4), down: ln(0.3), END_TOKEN: ln(0.3)},
             x: {END_TOKEN: 0.0}, down: {END_TOKEN: 0.0}, up: {END_TOKEN: 0.0}}
    greedy = OnnxMoonshine(_Encoder(), _TableDecoder(table), PIECES)
    assert greedy.decode(np.zeros(1600), max_new_tokens=5).text == "myx"
    beam = OnnxMoonshine(_Encoder(), _TableDecoder(table), PIECES, beam=2)
    decoded = beam.decode(np.zeros(1600), max_new_tokens=5)
    assert decoded.text == "up"
    assert decoded.avg_logprob == pytest.approx(np.mean([ln(0.45), 0.0]), abs=1e-3)
