"""Request category from what the caller said: a naive Bayes model trained from the config.

Pure: text in, :class:`Classification` out; no I/O, no clock.

Why naive Bayes over word stems and stem pairs: the training data is a few dozen example
sentences and weighted keywords per category, written by ops. Naive Bayes is the model that
does well with that little text, and it generalizes by evidence, not by lookup: "my router
keeps dropping the connection" scores as a fault from "dropping", "connection" and "router"
though no example says it. Keywords count as extra pseudo-occurrences of their features, which
is how ops push a word ("outage") without writing more sentences.

The complement form (Rennie et al., 2003): a category's weight for a feature comes from how
rare the feature is in all the *other* categories. Ops write more examples for some categories
than others (the operator request has a handful); plain multinomial naive Bayes then favours
the small category's words ("person" beat "rude" once complaints got more examples), while
the complement estimates each use the text of several categories and stay balanced. Measured
on the evaluation set's tune split: 360/361 on reference text against 357/361.

Words a recognizer nearly got right ("landliving" for "landline", "this county" for
"discount") can also count through their letter n-grams (:mod:`ivr.speech.wordshape`), a
family of features weighed beside the words (``gram_weight``: a word's grams together count
that many words). Off by default: on Moonshine's transcripts it fixed 16 development calls and
broke 7, but on the blind voices it fixed 7 and broke 9 (docs/speech-conditions.md, "Ninth
session"); ``benchmarks/speech/rescore.py --gram-weight`` measures it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

from ivr.speech.schema import URGENCY_RANK, IntentsConfig
from ivr.speech.wordshape import char_grams

# Said by every caller whatever they want: dropped before counting.
_FILLER_WORDS = (
    "uh um er erm ah oh hi hello hey yes yeah yep ok okay so well like please just "
    "thanks thank good morning afternoon evening"
)
_FILLERS = frozenset(_FILLER_WORDS.split())
_STOP_WORDS = (
    "a an the i i'm im me my mine we our us you your it its it's this that these those "
    "is am are was were be been being to of for on in at by from with about and or "
    "can could would will shall should may might do does did have has had "
    "want wanted wanna need needed calling call called get got there here some any "
    "also really very how what"
)
_STOPWORDS = frozenset(_STOP_WORDS.split())
# A word: letters of any script (Hangul, kana, accented Latin), with an inner apostrophe.
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# Additive smoothing of the complement counts (1.0 did best on the tune split; 0.5-4 tried).
_ALPHA = 1.0
# How much one transcript of a heard tune sentence counts against one written example
# (``heard_examples``); measured on the development voices, see docs/speech-conditions.md.
HEARD_WEIGHT = 1.0
# How much the letter n-grams of one word count together, against one word feature (0: not
# used, the default). With the grams, a temperature near 0.9 keeps the confidence as
# calibrated as the words alone at 0.5 (docs/speech-conditions.md, "Ninth session").
GRAM_WEIGHT = 0.0
# Scale of the log scores before the softmax, chosen so confidence is near the observed
# accuracy on the tune split (0.8-1.0: 333/335 right, 0.6-0.8: 13/15, 0.4-0.6: 7/10).
TEMPERATURE = 0.5


def _stem(word: str) -> str:
    """A light suffix stripper: "dropping", "dropped", "drops" -> "drop"; good enough for
    matching caller words to config words, which go through the same function. Words in
    other scripts are kept whole: these suffixes are English."""
    if not word.isascii():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("ed") and len(word) > 4:
        word = word[:-2]
    elif word.endswith("s") and len(word) > 3 and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lowercase words of a transcript, with negations split off ("can't" -> "can not")."""
    text = text.lower().replace("cannot", "can not").replace("can't", "can not")
    text = text.replace("won't", "will not").replace("n't", " not")
    return _WORD.findall(text)


def content_words(text: str) -> list[str]:
    """The words of a transcript that can say what a caller wants: no fillers, no function
    words."""
    return [w for w in tokens(text) if w not in _FILLERS and w not in _STOPWORDS]


def features(text: str) -> list[str]:
    """Stems of the content words, and adjacent pairs of them ("no signal", "not work")."""
    stems = [_stem(w) for w in content_words(text)]
    return stems + [f"{a} {b}" for a, b in itertools.pairwise(stems)]


def gram_features(text: str) -> dict[str, float]:
    """The letter n-grams of the content words, each with the share of a word it stands for
    (a word's grams together count one word; a gram in two words counts for both)."""
    out: dict[str, float] = defaultdict(float)
    for word in content_words(text):
        grams = char_grams(word)
        for gram in grams:
            out[gram] += 1 / len(grams)
    return out


def _complement_weights(counts: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """weight[c][f] = -log p(f | not c): large when f is rare outside c (smoothed by
    ``_ALPHA`` over the vocabulary of ``counts``)."""
    vocabulary: set[str] = set().union(*counts.values())
    size = len(vocabulary)
    weights: dict[str, dict[str, float]] = {}
    for name in counts:
        complement: dict[str, float] = defaultdict(float)
        for other, c in counts.items():
            if other != name:
                for feature, evidence in c.items():
                    complement[feature] += evidence
        total = sum(complement.values()) + _ALPHA * size
        weights[name] = {f: -math.log((complement.get(f, 0) + _ALPHA) / total) for f in vocabulary}
    return weights


@dataclass(frozen=True)
class Classification:
    """The category of one request, how sure we are, and the next best guess."""

    category: str
    confidence: float
    urgency: str
    runner_up: str | None
    runner_up_confidence: float
    # Posterior per category, for logs and the benchmark's confusion analysis.
    scores: dict[str, float] = field(default_factory=dict, compare=False)


def understood(classification: Classification | None) -> bool:
    """Whether a transcript is a request at all: it has a word the model knows. A cough heard
    as "okay", a TV heard as "thank you" or "pfft" get the fallback category with confidence
    0; they are no speech (ask again, then the menu), not a request to confirm."""
    return classification is not None and classification.confidence > 0.0


class IntentClassifier:
    """Trained once from the intents config; :meth:`classify` is cheap and thread-safe."""

    def __init__(
        self,
        config: IntentsConfig,
        heard_weight: float = HEARD_WEIGHT,
        gram_weight: float = GRAM_WEIGHT,
        temperature: float = TEMPERATURE,
    ) -> None:
        self._config = config
        self._categories = list(config.categories)
        self._gram_weight = gram_weight
        self._temperature = temperature
        # category -> feature -> evidence (examples count 1 each, keywords their weight), for
        # the words and for the grams: each family has its own vocabulary and weights.
        counts: dict[str, dict[str, float]] = {}
        gram_counts: dict[str, dict[str, float]] = {}

        def learn(name: str, text: str, evidence: float) -> None:
            # Presence, not frequency: a word repeated in one sentence is one piece of
            # evidence.
            for feature in set(features(text)):
                counts[name][feature] += evidence
            for gram in gram_features(text) if gram_weight > 0 else ():
                gram_counts[name][gram] += evidence

        for name, category in config.categories.items():
            counts[name], gram_counts[name] = defaultdict(float), defaultdict(float)
            for example in category.examples:
                learn(name, example, 1.0)
            for phrase, weight in category.keywords.items():
                learn(name, phrase, weight)
        # The engine's own mistakes on the tune sentences, as it will make them on callers
        # (a combination's transcript is one of its engines', so it learns both).
        for engine in config.speech.engine.split("+") if heard_weight > 0 else ():
            for name, heard in config.heard_examples.get(engine, {}).items():
                for text in heard:
                    learn(name, text, heard_weight)
        # weight[c][f] = -log p(f | not c): large when f is rare outside c.
        self._weight = _complement_weights(counts)
        self._gram_weights = _complement_weights(gram_counts)
        self._vocabulary: frozenset[str] = frozenset(self._weight[self._categories[0]])
        self._grams: frozenset[str] = frozenset(self._gram_weights[self._categories[0]])
        self._overrides = [
            ([" ".join(tokens(p)) for p in override.phrases], override.urgency)
            for override in config.urgency_overrides
        ]

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every feature the model knows (stems and stem pairs)."""
        return self._vocabulary

    def classify(self, text: str) -> Classification:
        """Category, confidence (0..1), runner-up and urgency of one transcript.

        A transcript with no word the model knows gets the fallback category with confidence 0,
        so the call flow asks again or offers the menu instead of trusting a guess.
        """
        known = [f for f in features(text) if f in self._vocabulary]
        if not known:
            fallback = self._config.fallback_category
            return Classification(
                category=fallback,
                confidence=0.0,
                urgency=self.urgency(fallback, text),
                runner_up=None,
                runner_up_confidence=0.0,
            )
        # Only a known word makes a request ("zebra" shares grams with the vocabulary too);
        # the grams then weigh in, also those of the words heard wrong.
        grams = [
            (g, share) for g, share in gram_features(text).items() if g in self._grams
        ] if self._gram_weight > 0 else []
        log_scores = {
            name: sum(self._weight[name][f] for f in known)
            + self._gram_weight * sum(share * self._gram_weights[name][g] for g, share in grams)
            for name in self._categories
        }
        top = max(log_scores.values())
        weights = {n: math.exp((s - top) / self._temperature) for n, s in log_scores.items()}
        norm = sum(weights.values())
        posterior = {n: w / norm for n, w in weights.items()}
        ranked = sorted(posterior, key=posterior.__getitem__, reverse=True)
        best, second = ranked[0], ranked[1]
        return Classification(
            category=best,
            confidence=round(posterior[best], 4),
            urgency=self.urgency(best, text),
            runner_up=second,
            runner_up_confidence=round(posterior[second], 4),
            scores={n: round(p, 4) for n, p in posterior.items()},
        )

    def urgency(self, category: str, text: str) -> str:
        """The category's urgency, raised (never lowered) by any override phrase heard."""
        urgency = self._config.categories[category].urgency
        said = f" {' '.join(tokens(text))} "
        for phrases, raised in self._overrides:
            if URGENCY_RANK[raised] > URGENCY_RANK[urgency] and any(
                f" {p} " in said for p in phrases
            ):
                urgency = raised
        return urgency
