"""Planning a step's callers: kinds split by share, scripts per kind, the mix syntax."""

from __future__ import annotations

import pytest

from benchmarks.load.mix import (
    CALLBACK_NUMBER,
    KINDS,
    CallerPlan,
    Sentence,
    kind_counts,
    mix_for_speaking,
    parse_mix,
    plan_mix,
    sentences_by_category,
)

SENTENCES = [Sentence("my internet is down", "fault"), Sentence("what do i owe", "inquiry")]


def test_counts_add_up_by_largest_remainder() -> None:
    """A split that does not divide evenly still places exactly ``count`` callers, the
    leftovers going to the kinds with the largest remainders."""
    counts = kind_counts(10, {"speak": 1, "keys": 1, "callback": 1})
    assert sum(counts.values()) == 10
    assert sorted(counts.values()) == [3, 3, 4]
    assert kind_counts(60, mix_for_speaking(1 / 3))["speak"] == 20


def test_plans_are_deterministic_and_tagged() -> None:
    """The same seed gives the same plans; each caller has a unique tag naming the step."""
    first = plan_mix(30, mix_for_speaking(1 / 3), SENTENCES, seed=7, step="30")
    assert first == plan_mix(30, mix_for_speaking(1 / 3), SENTENCES, seed=7, step="30")
    assert len({plan.tag for plan in first}) == 30
    assert all(plan.tag.startswith("load-30-") for plan in first)
    assert {plan.kind for plan in first} <= set(KINDS)


def test_each_kind_has_its_script() -> None:
    """Speakers carry a sentence and expect its label; key pressers expect their key's
    category; menu hang-ups expect nothing and hang up early; callback callers enter the
    number and confirm it."""
    plans = plan_mix(50, {kind: 1 for kind in KINDS}, SENTENCES, seed=3)
    by_kind: dict[str, list[CallerPlan]] = {}
    for plan in plans:
        by_kind.setdefault(plan.kind, []).append(plan)
    for plan in by_kind["speak"]:
        assert plan.sentence is not None
        assert plan.expected_category == plan.sentence.category
    for plan in by_kind["keys"]:
        assert plan.expected_category in {"inquiry", "fault", "complaint", "other"}
    for plan in by_kind["menu-hangup"]:
        assert plan.expected_category is None and plan.hang_up_after_s < 5
    for plan in by_kind["callback"]:
        assert [keys for _at, keys in plan.keys] == ["1", "1", CALLBACK_NUMBER + "#", "1"]
    for plan in by_kind["queue-hangup"]:
        assert plan.keys[0][1] == "1" and plan.hang_up_after_s > plan.keys[0][0]


def test_mix_syntax() -> None:
    """``kind=share`` pairs; a bare kind counts 1; an unknown kind or no share is refused."""
    assert parse_mix("speak=2,keys") == {"speak": 2.0, "keys": 1.0}
    with pytest.raises(ValueError, match="unknown caller kind"):
        parse_mix("shout=1")
    with pytest.raises(ValueError):
        parse_mix("speak=0")


def test_speakers_need_sentences() -> None:
    """A mix with speakers and no sentence is refused rather than planning silent speakers."""
    with pytest.raises(ValueError):
        plan_mix(3, {"speak": 1}, [])


def test_sentences_by_category() -> None:
    """At most ``per_category`` sentences of each category, every category represented."""
    rows = [{"text": f"t{i}", "category": "fault" if i % 2 else "inquiry"} for i in range(10)]
    picked = sentences_by_category(rows, 2, seed=1)
    assert sorted(s.category for s in picked) == ["fault", "fault", "inquiry", "inquiry"]
