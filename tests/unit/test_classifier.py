"""The intent classifier: generalization beyond the config's sentences, confidence, urgency."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from ivr.speech.classifier import IntentClassifier, features, tokens
from ivr.speech.schema import IntentsConfig, load_intents

ROOT = Path(__file__).resolve().parents[2]

SMALL = {
    "categories": {
        "fault": {
            "urgency": "urgent",
            "keywords": {"outage": 3, "no signal": 3},
            "examples": ["my internet is down", "the line is dead", "calls keep dropping"],
        },
        "inquiry": {
            "urgency": "normal",
            "keywords": {"bill": 3},
            "examples": ["how much is my bill", "what is my balance"],
        },
        "other": {"urgency": "normal", "examples": ["where is your store"]},
        "operator": {"urgency": "normal", "keywords": {"agent": 3, "human": 3}},
    },
    "urgency_overrides": [{"phrases": ["emergency", "no service at all"], "urgency": "urgent"}],
}


@pytest.fixture(scope="module")
def shipped() -> IntentClassifier:
    return IntentClassifier(load_intents())


# Sentences written for this test, none of them in config/intents.yaml.
UNSEEN = [
    ("inquiry", "could you read me the total on this month's invoice"),
    ("inquiry", "i am not sure how much credit is left on my account"),
    ("change", "i would like to get rid of my contract when it ends"),
    ("change", "my wife needs a sim for the family plan"),
    ("fault", "the router keeps dropping the connection every evening"),
    ("fault", "no signal anywhere in the house since yesterday"),
    ("complaint", "the man on the phone was rude and hung up"),
    ("complaint", "i have waited a month and nobody came to fix it, unacceptable"),
    ("other", "do you sell phone cases in the shop downtown"),
    ("other", "my battery is swollen does the warranty cover that"),
    ("operator", "just put me through to a human being"),
]


@pytest.mark.parametrize(("expected", "text"), UNSEEN)
def test_unseen_phrasing_gets_the_right_category(
    shipped: IntentClassifier, expected: str, text: str
) -> None:
    """Sentences that appear nowhere in the config are classified from their words: the
    classifier generalizes instead of looking sentences up."""
    config = load_intents()
    assert all(text not in c.examples for c in config.categories.values())
    assert shipped.classify(text).category == expected


def test_result_has_confidence_and_a_different_runner_up(shipped: IntentClassifier) -> None:
    """A verdict carries a confidence in 0..1 and a runner-up that is another category with
    lower confidence; the posteriors over all categories sum to 1."""
    verdict = shipped.classify("my internet is down again")
    assert verdict.category == "fault"
    assert 0.5 < verdict.confidence <= 1.0
    assert verdict.runner_up not in (None, "fault")
    assert verdict.runner_up_confidence < verdict.confidence
    assert sum(verdict.scores.values()) == pytest.approx(1.0, abs=1e-3)


def test_ambiguous_request_is_less_confident_than_a_clear_one(shipped: IntentClassifier) -> None:
    """Mixed evidence ("bill" and "internet down") lowers the confidence, which is what sends
    the caller to the confirmation question."""
    clear = shipped.classify("my internet is down")
    mixed = shipped.classify("my bill and my internet")
    assert mixed.confidence < clear.confidence


def test_a_doubtful_category_is_confirmed_by_the_caller(shipped: IntentClassifier) -> None:
    """The confirmation question follows the category's confidence: a clear request goes
    through at the shipped threshold, a transcript mangled by the line (a misheard "cannot
    get online") is asked about, and a threshold of 1.0 asks every caller."""
    from ivr.speech.gateway import confirmation_reason

    intents = load_intents()
    clear = shipped.classify("my internet is down")
    doubtful = shipped.classify("cannot get on mall and")
    assert confirmation_reason(clear, intents) is None
    assert confirmation_reason(doubtful, intents) == "confidence"
    always = intents.model_copy(update={"confirm_below": 1.0})
    assert confirmation_reason(clear, always) == "confidence"


def test_each_strong_keyword_alone_gets_its_category(shipped: IntentClassifier) -> None:
    """A keyword weighted 2 or more, said alone, is classified as its category: the corpus
    may mention outages in complaints, but "outage" stays a fault. Keywords whose stem is
    also another category's keyword ("disconnect": cancel, "disconnecting": fault) are left
    to the words around them."""
    config = load_intents()
    stems = {
        name: {f for k in c.keywords for f in features(k)} for name, c in config.categories.items()
    }
    for name, category in config.categories.items():
        for keyword, weight in category.keywords.items():
            others = set().union(*(s for other, s in stems.items() if other != name))
            if weight >= 2 and not set(features(keyword)) & others:
                assert shipped.classify(keyword).category == name, keyword


def test_no_known_word_falls_back_with_zero_confidence(shipped: IntentClassifier) -> None:
    """Words the model never saw (or an empty transcript) give the fallback category with
    confidence 0 and no runner-up, so the flow re-prompts instead of trusting a guess."""
    for text in ("", "zebra giraffe", "uh um hello"):
        verdict = shipped.classify(text)
        assert (verdict.category, verdict.confidence, verdict.runner_up) == ("other", 0.0, None)


def test_urgency_comes_from_the_category() -> None:
    """fault -> urgent; inquiry and other -> normal, as configured per category."""
    clf = IntentClassifier(IntentsConfig.model_validate(SMALL))
    assert clf.classify("the line is dead").urgency == "urgent"
    assert clf.classify("how much is my bill").urgency == "normal"


def test_override_phrase_raises_urgency_but_never_lowers_it() -> None:
    """An override phrase heard anywhere raises the urgency of any category ("emergency" on a
    billing question is urgent); a category already urgent stays urgent."""
    clf = IntentClassifier(IntentsConfig.model_validate(SMALL))
    assert clf.classify("emergency question about my bill").urgency == "urgent"
    assert clf.classify("my bill, i have no service at all").urgency == "urgent"
    assert clf.urgency("inquiry", "no service") == "normal"  # a phrase, not loose words
    assert clf.urgency("fault", "nothing special") == "urgent"


def test_keywords_count_like_examples() -> None:
    """A keyword with no example sentence is enough to recognize its category."""
    clf = IntentClassifier(IntentsConfig.model_validate(SMALL))
    assert clf.classify("is there an outage").category == "fault"
    assert clf.classify("agent").category == "operator"


def test_features_are_stems_and_pairs_without_fillers() -> None:
    """Fillers and function words are dropped, inflections meet their stem, and adjacent
    stems pair up ("no signal"), so word order carries some meaning."""
    assert features("uh hi yes so my calls keep dropping") == [
        "call",
        "keep",
        "drop",
        "call keep",
        "keep drop",
    ]
    assert features("I can't connect") == ["not", "connect", "not connect"]


def test_schema_rejects_unknown_fallback_and_bad_weights() -> None:
    """Config errors surface at load: a fallback that is not a category, a weight <= 0, a
    category with no evidence, vosk without a model directory."""
    bad_fallback = {**SMALL, "fallback_category": "nope"}
    with pytest.raises(ValidationError, match="fallback_category"):
        IntentsConfig.model_validate(bad_fallback)
    zero = {"urgency": "normal", "keywords": {"a": 0}}
    bad_weight = {"categories": {**SMALL["categories"], "x": zero}}
    with pytest.raises(ValidationError, match="> 0"):
        IntentsConfig.model_validate(bad_weight)
    empty = {"categories": {**SMALL["categories"], "x": {"urgency": "normal"}}}
    with pytest.raises(ValidationError, match="keywords or examples"):
        IntentsConfig.model_validate(empty)
    with pytest.raises(ValidationError, match="vosk_model"):
        IntentsConfig.model_validate({**SMALL, "speech": {"engine": "vosk"}})


def test_load_intents_names_the_file(tmp_path) -> None:
    """A broken intents file fails with its path in the message."""
    path = tmp_path / "intents.yaml"
    path.write_text("categories: {fault: {urgency: sometimes, examples: [x]}}\n")
    with pytest.raises(ValueError, match=str(path)):
        load_intents(path)


def test_corpus_file_adds_examples_and_names_its_errors(tmp_path) -> None:
    """``corpus:`` names a file (relative to the intents file) of more examples per category:
    they join the examples once (also through ``ivr check-config``'s loader), and a category
    the intents file lacks is refused naming the corpus file and the category."""
    import yaml

    from ivr.config import ConfigError, load_config

    config_dir = tmp_path / "config"
    shutil.copytree(ROOT / "config", config_dir)
    intents = yaml.safe_load((config_dir / "intents.yaml").read_text())
    intents["corpus"] = "more.yaml"
    (config_dir / "intents.yaml").write_text(yaml.safe_dump(intents))
    (config_dir / "more.yaml").write_text("fault: [the fiber box blinks amber all night]\n")
    before = len(intents["categories"]["fault"]["examples"])
    for loaded in (load_intents(config_dir / "intents.yaml"), load_config(config_dir).intents):
        examples = loaded.categories["fault"].examples
        assert len(examples) == before + 1 and examples[-1].startswith("the fiber box")
        again = IntentsConfig.model_validate(loaded.model_dump())
        assert again.categories["fault"].examples == examples  # merged once
    (config_dir / "more.yaml").write_text("billing: [my bill]\n")
    with pytest.raises(ConfigError, match=r"more\.yaml: billing: not a category"):
        load_config(config_dir)


def test_shipped_config_has_every_category_of_the_standard() -> None:
    """The default taxonomy: inquiry, change, fault, complaint, other, plus operator, with
    the urgencies of the service-process standard."""
    config = load_intents()
    urgencies = {name: c.urgency for name, c in config.categories.items()}
    assert urgencies == {
        "inquiry": "normal",
        "change": "important",
        "fault": "urgent",
        "complaint": "important",
        "other": "normal",
        "operator": "normal",
    }


def test_shipped_heard_corpora_come_from_tune_sentences_only() -> None:
    """None of a shipped heard corpus's transcripts is a held-out sentence of the evaluation
    set: they are what an engine heard of tune sentences (``benchmarks/speech/heard.py``),
    and a held-out sentence among them would let the evaluations measure the classifier on
    its own training data."""
    config = load_intents()
    assert set(config.heard_examples) == {"pocketsphinx", "whisper"}
    eval_set = yaml.safe_load((ROOT / "benchmarks/speech/eval_set.yaml").read_text())
    held_out = {
        " ".join(tokens(u["text"])) for u in eval_set["utterances"] if u["split"] == "heldout"
    }
    for engine, heard in config.heard_examples.items():
        assert set(heard) == set(config.categories), engine
        transcripts = {" ".join(tokens(t)) for texts in heard.values() for t in texts}
        assert len(transcripts) > 500, engine
        assert not transcripts & held_out, engine


def test_heard_transcripts_teach_the_engine_that_made_them_its_own_mistakes() -> None:
    """``heard_examples`` (what an engine heard of tune sentences) count like examples for the
    classifier of that engine only: pocketsphinx's "due date" for "two days" becomes an
    inquiry for pocketsphinx, and stays an unknown phrase (no request) for whisper."""
    heard = {"pocketsphinx": {"inquiry": ["when is the due date of my bill"]}}
    config = IntentsConfig.model_validate({**SMALL, "heard_examples": heard})
    pocketsphinx = IntentClassifier(config)
    assert pocketsphinx.classify("due date").category == "inquiry"
    assert pocketsphinx.classify("due date").confidence > 0
    whisper_speech = config.speech.model_copy(update={"engine": "whisper"})
    whisper = IntentClassifier(config.model_copy(update={"speech": whisper_speech}))
    assert whisper.classify("due date").confidence == 0.0
    assert "due dat" not in IntentClassifier(IntentsConfig.model_validate(SMALL)).vocabulary


def test_heard_weight_scales_what_a_transcript_counts() -> None:
    """A heard transcript at weight 0 adds no evidence; at weight 1 it counts like an
    example: the same words written as an example give the same confidence."""
    heard = {"pocketsphinx": {"fault": ["my bill is down"]}}
    config = IntentsConfig.model_validate({**SMALL, "heard_examples": heard})
    plain = IntentClassifier(IntentsConfig.model_validate(SMALL))
    nothing = IntentClassifier(config, heard_weight=0.0)
    assert nothing.classify("bill down").scores == plain.classify("bill down").scores
    written = {**SMALL, "categories": {**SMALL["categories"], "fault": {
        **SMALL["categories"]["fault"],
        "examples": [*SMALL["categories"]["fault"]["examples"], "my bill is down"],
    }}}
    as_example = IntentClassifier(IntentsConfig.model_validate(written))
    assert IntentClassifier(config, heard_weight=1.0).classify("bill down").scores == (
        as_example.classify("bill down").scores
    )


def test_heard_corpus_files_are_read_once_and_name_their_errors(tmp_path) -> None:
    """``heard_corpus:`` maps engines to files (relative to the intents file) of transcripts
    per category: read into ``heard_examples`` at load (also through ``ivr check-config``'s
    loader), not read again when the config is validated again, and a category the intents
    file lacks or a file that is not category -> list is refused naming the file."""
    import yaml

    from ivr.config import ConfigError, load_config

    config_dir = tmp_path / "config"
    shutil.copytree(ROOT / "config", config_dir)
    intents = yaml.safe_load((config_dir / "intents.yaml").read_text())
    intents["heard_corpus"] = {"pocketsphinx": "heard.yaml"}
    (config_dir / "intents.yaml").write_text(yaml.safe_dump(intents))
    (config_dir / "heard.yaml").write_text("inquiry: [due date]\nfault: []\n")
    for loaded in (load_intents(config_dir / "intents.yaml"), load_config(config_dir).intents):
        assert loaded.heard_examples["pocketsphinx"] == {"inquiry": ["due date"], "fault": []}
        assert loaded.heard_corpus == {}
        again = IntentsConfig.model_validate(loaded.model_dump())
        assert again.heard_examples == loaded.heard_examples
    (config_dir / "heard.yaml").write_text("billing: [my bill]\n")
    with pytest.raises(ConfigError, match=r"heard_examples: pocketsphinx: not categories"):
        load_config(config_dir)
    (config_dir / "heard.yaml").write_text("inquiry: my bill\n")
    with pytest.raises(ConfigError, match=r"heard\.yaml: must map categories"):
        load_config(config_dir)


# Moonshine's transcripts of held-out development calls that the words alone got wrong: the
# misheard words ("this county", "feeling trapped") still share letters with the right ones.
MISHEARD = [
    ("other", "do you have a student this county i'm starting college in september"),
    ("other", "my phone's feeling trapped can you repair it"),
]


@pytest.mark.parametrize(("expected", "heard"), MISHEARD)
def test_letter_grams_take_evidence_from_misheard_words(expected: str, heard: str) -> None:
    """With ``gram_weight``, the letter n-grams of each word weigh in beside the words: a
    transcript whose key word was misheard gets its category from what the word still
    shares with the right one, where the words alone pick another. The classifier of
    Moonshine alone, as measured (a combination's also learns Whisper's heard corpus)."""
    shipped = load_intents()
    config = shipped.model_copy(update={
        "speech": shipped.speech.model_copy(update={"engine": "moonshine"})})
    words = IntentClassifier(config, gram_weight=0.0)
    grams = IntentClassifier(config, gram_weight=1.0, temperature=0.9)
    assert words.classify(heard).category != expected
    assert grams.classify(heard).category == expected


def test_letter_grams_alone_never_make_a_request() -> None:
    """Every English word shares some grams with the vocabulary, so only a known word makes
    a transcript a request; with the grams on, words of no request still get confidence 0
    (the caller is asked again, not asked to confirm a guess)."""
    grams = IntentClassifier(load_intents(), gram_weight=1.0, temperature=0.9)
    for text in ("", "zebra giraffe", "uh um hello", "thank you", "pfft"):
        verdict = grams.classify(text)
        assert (verdict.category, verdict.confidence, verdict.runner_up) == ("other", 0.0, None)
    assert grams.classify("my internet is down").category == "fault"


def test_grams_off_is_the_words_only_model() -> None:
    """``gram_weight`` 0 adds nothing: the scores are those of the words alone; the default
    is off (measured, see docs/speech-conditions.md, "Ninth session")."""
    config = IntentsConfig.model_validate(SMALL)
    text = "the billl is dead"  # "billl": unknown as a word, "bill" in its grams
    default, off = IntentClassifier(config), IntentClassifier(config, gram_weight=0.0)
    assert default.classify(text).scores == off.classify(text).scores
    assert off.classify(text).category == "fault"
    on = IntentClassifier(config, gram_weight=1.0)
    assert on.classify(text).scores["inquiry"] > off.classify(text).scores["inquiry"]


def test_a_higher_temperature_lowers_the_confidence_not_the_category() -> None:
    """The temperature scales the scores before the softmax: the ranking stays, the
    confidence of the best category falls as it rises."""
    config = IntentsConfig.model_validate(SMALL)
    sharp, soft = IntentClassifier(config), IntentClassifier(config, temperature=1.0)
    for text in ("my internet is down", "my bill and my internet"):
        a, b = sharp.classify(text), soft.classify(text)
        assert a.category == b.category
        assert b.confidence < a.confidence


def test_a_tv_heard_word_for_word_is_asked_about_and_clear_callers_are_not(
    shipped: IntentClassifier,
) -> None:
    """The shipped ``confirm_below`` (0.8): what Moonshine heard of a TV in the room, word for
    word, reads as a request at 0.76-0.78 and is asked about (nobody there presses 1); the
    unseen callers' sentences above are taken as they are (docs/speech-conditions.md,
    "Fourteenth session")."""
    from ivr.speech.gateway import confirmation_reason

    intents = load_intents()
    assert intents.confirm_below == 0.8
    for heard in ("family roaming included in over fifty countries", "the captain on the radio"):
        tv = shipped.classify(heard)
        assert tv.category != intents.operator_category
        assert confirmation_reason(tv, intents, 30.0) == "confidence", heard
    for _, text in UNSEEN:
        assert confirmation_reason(shipped.classify(text), intents, 30.0) is None, text


def test_a_sure_request_heard_barely_over_the_line_is_confirmed(shipped: IntentClassifier) -> None:
    """``confirm_below_snr_db``: a request the classifier is sure of is still confirmed when
    its words rose less than that over the line's own noise (a TV in the room cannot press
    1); above it, or unmeasured, or with the rule off (0), it goes through. A request for
    the operator is never asked about."""
    from ivr.speech.gateway import confirmation_reason

    intents = load_intents()
    assert intents.confirm_below_snr_db == 18  # shipped (docs/speech-conditions.md)
    clear = shipped.classify("my internet is down")
    assert confirmation_reason(clear, intents, 12.0) == "snr"
    assert confirmation_reason(clear, intents, 30.0) is None
    assert confirmation_reason(clear, intents, None) is None
    off = intents.model_copy(update={"confirm_below_snr_db": 0.0})
    assert confirmation_reason(clear, off, 12.0) is None
    operator = shipped.classify("can i speak to a real person please")
    assert operator.category == intents.operator_category
    assert confirmation_reason(operator, intents, 12.0) is None


def test_a_sure_request_that_began_over_the_question_is_confirmed(
    shipped: IntentClassifier,
) -> None:
    """``confirm_barge_in``: words that began while the question still played (a TV in the
    room talks from the first moment) are confirmed, however sure and however loud; with
    the rule off they go through. The operator is never asked about."""
    from ivr.speech.gateway import confirmation_reason

    intents = load_intents()
    assert intents.confirm_barge_in  # shipped (docs/speech-conditions.md)
    clear = shipped.classify("my internet is down")
    assert confirmation_reason(clear, intents, 60.0, barged_in=True) == "barge_in"
    assert confirmation_reason(clear, intents, 60.0, barged_in=False) is None
    assert confirmation_reason(clear, intents, 12.0, barged_in=True) == "snr"  # the first reason
    off = intents.model_copy(update={"confirm_barge_in": False})
    assert confirmation_reason(clear, off, 60.0, barged_in=True) is None
    assert IntentsConfig.model_fields["confirm_barge_in"].default is False  # off unless set
    operator = shipped.classify("can i speak to a real person please")
    assert confirmation_reason(operator, intents, 60.0, barged_in=True) is None
