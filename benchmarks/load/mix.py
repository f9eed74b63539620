"""Who calls in a load step: the caller kinds, their share, and each caller's script.

Pure: :func:`plan_mix` turns a count, a mix (kind -> share) and the labelled sentences into
one :class:`CallerPlan` per call, deterministically for a seed, so a step can be replayed and
the plan tested without a phone.

Times in a plan count from the first prompt the caller hears (the welcome), as a person
would act on what they hear, not on the SIP answer: the media endpoint schedules keys and
speech from there. ``hang_up_after_s`` counts from the SIP answer (SIPp's clock): the caller
hangs up then unless the hotline has hung up first (after the agent's talk time).

Kinds (the issue's "Real callers"):
    speak           says why they call (a sentence of the eval set) over the speech prompt
    keys            presses a menu key (1, 3, 4 or 5: a request) during the speech prompt
    menu-hangup     hangs up during the welcome, before anything is decided
    queue-hangup    presses 1 (billing), then hangs up after a few seconds on hold
    callback        presses 1, then the callback key while on hold, enters a number (#),
                    and confirms the read-back with 1
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

KINDS = ("speak", "keys", "menu-hangup", "queue-hangup", "callback")
# The menu key of each request category (config/menus.yaml main menu).
MENU_KEYS = {"1": "inquiry", "3": "fault", "4": "complaint", "5": "other"}
SPEAK_AT_S = 5.0  # after the welcome starts: during the speech prompt (barge-in allowed)
KEY_AT_S = 2.5
CALLBACK_NUMBER = "5551234567"
MAX_CALL_S = 90.0  # a caller nobody hangs up on gives up then


@dataclass(frozen=True)
class Sentence:
    text: str
    category: str


@dataclass(frozen=True)
class CallerPlan:
    """One caller of a step. ``tag`` is their SIP display name: it reaches the work order
    (caller name) and the agent's phone (From), which is how a call is recognised there."""

    index: int
    kind: str
    tag: str
    keys: tuple[tuple[float, str], ...] = ()
    sentence: Sentence | None = None
    hang_up_after_s: float = MAX_CALL_S

    @property
    def expected_category(self) -> str | None:
        """The category the hotline should decide: the sentence's label, or the key's."""
        if self.sentence is not None:
            return self.sentence.category
        if self.kind == "keys" and self.keys:
            return MENU_KEYS.get(self.keys[0][1])
        return "inquiry" if self.kind in ("queue-hangup", "callback") else None


def parse_mix(text: str) -> dict[str, float]:
    """``"speak=1,keys=1,menu-hangup=0.2"`` -> shares; unknown kinds are refused."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, share = part.partition("=")
        if kind not in KINDS:
            raise ValueError(f"unknown caller kind {kind!r}: one of {', '.join(KINDS)}")
        mix[kind] = float(share or 1)
    if not mix or sum(mix.values()) <= 0:
        raise ValueError("the mix needs at least one kind with a positive share")
    return mix


def mix_for_speaking(fraction: float) -> dict[str, float]:
    """The default mix with ``fraction`` of the callers speaking; the rest split between
    keys (most), and a few hanging up in the menu, in the queue, and asking for a callback."""
    rest = 1.0 - fraction
    return {"speak": fraction, "keys": rest * 0.6, "menu-hangup": rest * 0.15,
            "queue-hangup": rest * 0.15, "callback": rest * 0.1}


def kind_counts(count: int, mix: Mapping[str, float]) -> dict[str, int]:
    """``count`` callers split by ``mix`` (largest remainders, so the counts add up)."""
    total = sum(mix.values())
    exact = {kind: count * share / total for kind, share in mix.items()}
    counts = {kind: int(value) for kind, value in exact.items()}
    by_remainder = sorted(exact, key=lambda kind: (-(exact[kind] - counts[kind]), kind))
    for kind in by_remainder[: count - sum(counts.values())]:
        counts[kind] += 1
    return counts


def plan_mix(
    count: int, mix: Mapping[str, float], sentences: Sequence[Sentence], seed: int = 1,
    step: str = "s",
) -> list[CallerPlan]:
    """``count`` caller plans in ``mix``, shuffled (kinds interleave as calls start)."""
    rng = random.Random(seed)
    kinds = [kind for kind, n in kind_counts(count, mix).items() for _ in range(n)]
    rng.shuffle(kinds)
    if "speak" in kinds and not sentences:
        raise ValueError("speaking callers need sentences")
    plans = []
    for index, kind in enumerate(kinds):
        tag = f"load-{step}-{index}"
        if kind == "speak":
            sentence = sentences[rng.randrange(len(sentences))]
            plans.append(CallerPlan(index, kind, tag, sentence=sentence))
        elif kind == "keys":
            key = rng.choice(sorted(MENU_KEYS))
            plans.append(CallerPlan(index, kind, tag, keys=((KEY_AT_S, key),)))
        elif kind == "menu-hangup":
            plans.append(CallerPlan(index, kind, tag, hang_up_after_s=2.0))
        elif kind == "queue-hangup":
            plans.append(CallerPlan(index, kind, tag, keys=((KEY_AT_S, "1"),),
                                    hang_up_after_s=12.0))
        else:
            plans.append(CallerPlan(index, kind, tag, keys=(
                (KEY_AT_S, "1"), (9.0, "1"), (13.0, CALLBACK_NUMBER + "#"), (21.0, "1"))))
    return plans


def sentences_by_category(rows: Sequence[Mapping[str, str]], per_category: int,
                          seed: int = 1) -> list[Sentence]:
    """Up to ``per_category`` labelled sentences of each category, picked by ``seed``."""
    rng = random.Random(seed)
    by_category: dict[str, list[Sentence]] = {}
    for row in rows:
        by_category.setdefault(row["category"], []).append(Sentence(row["text"], row["category"]))
    picked: list[Sentence] = []
    for category in sorted(by_category):
        pool = by_category[category]
        picked.extend(rng.sample(pool, min(per_category, len(pool))))
    return picked
