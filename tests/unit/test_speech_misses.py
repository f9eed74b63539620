"""The miss analysis of ``benchmarks/speech/misses.py``: which calls count as the
classifier's misses, the transcript's, or no request at all."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.speech import misses
from ivr.speech.classifier import IntentClassifier
from ivr.speech.schema import IntentsConfig


def row(category: str, predicted: str, text: str, heard: str, **extra: Any) -> dict[str, Any]:
    return {"category": category, "predicted": predicted, "text": text, "heard": heard,
            "confidence": 0.5, "outcome": "speech", **extra}


def classifier() -> IntentClassifier:
    return IntentClassifier(IntentsConfig.model_validate({
        "fallback_category": "other",
        "operator_category": "other",
        "categories": {
            "inquiry": {"urgency": "normal", "keywords": {"bill": 3},
                        "examples": ["how much is my bill"]},
            "fault": {"urgency": "urgent", "keywords": {"broken": 3},
                      "examples": ["my internet is broken"]},
            "other": {"urgency": "normal", "examples": ["i moved house"]},
        },
    }))


def test_content_words_are_the_stems_the_classifier_reads_without_pairs() -> None:
    assert misses.content_words("Um, my internet keeps DROPPING.") == [
        "internet", "keep", "drop"
    ]


def test_edit_distance_counts_substitutions_insertions_and_deletions() -> None:
    assert misses.edit_distance([], []) == 0
    assert misses.edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert misses.edit_distance(["a", "b"], ["a", "b", "c", "d"]) == 2
    assert misses.edit_distance(["a", "b", "c"], []) == 3


def test_content_error_ignores_fillers_case_and_punctuation() -> None:
    """Moonshine writes "Hi, my bill is wrong." for "hi um my bill is wrong": the same
    content words."""
    assert misses.content_error("hi um my bill is wrong", "Hi, my bill is wrong.") == 0.0
    assert misses.content_error("my bill is wrong", "my pill is long") == pytest.approx(2 / 2)
    assert misses.content_error("um", "") == 0.0
    assert misses.content_error("um", "router") == 1.0


def test_a_wrong_category_on_the_requests_words_is_the_classifiers_miss() -> None:
    said = "i want to switch from prepaid to a monthly contract"
    # One content word of four changed: still the request's words.
    assert misses.kind_of_miss(row("change", "inquiry", said,
                                   "I want to switch from prepaid to a monthly contact.")
                               ) == "classifier"
    # Two of four lost or changed: the transcript's.
    assert misses.kind_of_miss(row("change", "inquiry", said,
                                   "I want to itch from prepaid to a monthly.")) == "transcript"
    assert misses.kind_of_miss(row("change", "(none)", said, "")) == "none"


def test_the_analysis_counts_misses_by_kind_and_condition_and_checks_the_reference() -> None:
    rows = [
        row("inquiry", "inquiry", "how much is my bill", "how much is my bill", condition="ulaw"),
        # Right words, wrong category; the classifier gets the reference right.
        row("inquiry", "fault", "how much is my phone bill this month",
            "how much is my phone bill this month broken", condition="ulaw"),
        row("fault", "inquiry", "my internet is broken", "my bill", condition="gsm"),
        row("fault", "(none)", "my internet is broken", "", condition="gsm"),
        # The classifier is wrong on the reference itself.
        row("other", "inquiry", "i moved my bill", "i moved my bill", condition="gsm"),
    ]
    result = misses.analyse(rows, classifier())
    assert result["calls"] == 5
    assert result["misses"] == 4
    assert result["by_kind"] == {"classifier": 2, "transcript": 1, "none": 1}
    assert result["classifier_wrong_on_reference"] == 1
    assert result["by_condition"] == {
        "ulaw": {"classifier": 1, "transcript": 0, "none": 0},
        "gsm": {"classifier": 1, "transcript": 1, "none": 1},
    }
    assert result["confusions"] == {"inquiry->fault": 1, "other->inquiry": 1}
    assert [m["reference_category"] for m in result["rows"]] == [
        "inquiry", "fault", "fault", "inquiry"
    ]
