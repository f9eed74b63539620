"""A small n-gram language model of the hotline's domain, written as ARPA text.

Pure: sentences in, ARPA text out. The pocketsphinx engine builds it from the intents config at
load, so the decoder expects "my internet is down" rather than the generic model's millions of
word sequences; on telephone audio that is the difference between a quarter of the words wrong
and the right category.

Smoothing is absolute discounting with back-off (the ARPA format's own scheme): every seen
n-gram gives up ``discount`` counts to its back-off, so unseen word orders still decode.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

BOS, EOS = "<s>", "</s>"
# Share of the smoothing floor an extra (uncounted) word gets: below every counted word, so it
# is heard only when clearly said. 1.0 did best on the tune split (0.1, 0.3 and 3.0 tried).
EXTRA_WORD_SHARE = 1.0


def _log10(p: float) -> float:
    return math.log10(max(p, 1e-99))


def build_arpa(
    sentences: Iterable[list[str]],
    order: int = 3,
    discount: float = 0.5,
    extra_words: Iterable[str] = (),
) -> str:
    """ARPA text of an ``order``-gram model of tokenized sentences.

    ``extra_words`` join the vocabulary with no count of their own: they get only the
    smoothing floor, so they can be heard without competing with the domain's phrases.
    """
    counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]
    for words in sentences:
        seq = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(seq) - n + 1):
                gram = tuple(seq[i : i + n])
                if n == 1 and gram == (BOS,):
                    continue
                counts[n][gram] += 1
    extra_words = set(extra_words)
    vocab = sorted({g[0] for g in counts[1]} | {BOS} | extra_words)

    # Unigrams: discounted counts, the freed mass spread evenly so no word is impossible.
    total = sum(counts[1].values())
    free = discount * len(counts[1]) / total
    prob: dict[tuple[str, ...], float] = {}
    extra = extra_words - {g[0] for g in counts[1]}
    floor = free / (len(vocab) - 1)  # <s> is never predicted
    for w in vocab:
        c = counts[1].get((w,), 0)
        prob[(w,)] = max(c - discount, 0) / total + floor * (EXTRA_WORD_SHARE if w in extra else 1)

    # Higher orders: p(w|h) = (c(h w) - D) / c(h) for seen, back-off weight for the rest.
    history_counts: list[dict[tuple[str, ...], int]] = [{} for _ in range(order + 1)]
    followers: list[dict[tuple[str, ...], list[tuple[str, ...]]]] = [
        defaultdict(list) for _ in range(order + 1)
    ]
    for n in range(2, order + 1):
        for gram, c in counts[n].items():
            h = gram[:-1]
            history_counts[n][h] = history_counts[n].get(h, 0) + c
            followers[n][h].append(gram)
        for gram, c in counts[n].items():
            prob[gram] = (c - discount) / history_counts[n][gram[:-1]]

    def lower(gram: tuple[str, ...]) -> float:
        """Probability of gram's last word given a history one word shorter (backed off)."""
        while gram not in prob:
            gram = gram[1:]
        return prob[gram]

    backoff: dict[tuple[str, ...], float] = {}
    for n in range(2, order + 1):
        for h, grams in followers[n].items():
            seen = sum(prob[g] for g in grams)
            seen_lower = sum(lower(g[1:]) for g in grams)
            backoff[h] = (1.0 - seen) / max(1.0 - seen_lower, 1e-9)

    lines = ["\\data\\"]
    for n in range(1, order + 1):
        size = len(vocab) if n == 1 else len(counts[n])
        lines.append(f"ngram {n}={size}")
    for n in range(1, order + 1):
        lines += ["", f"\\{n}-grams:"]
        grams = [(w,) for w in vocab] if n == 1 else sorted(counts[n])
        for gram in grams:
            p = -99.0 if gram == (BOS,) else _log10(prob[gram])
            text = f"{p:.4f} {' '.join(gram)}"
            if n < order and gram in backoff:
                text += f" {_log10(backoff[gram]):.4f}"
            elif n < order:
                text += " 0.0000"
            lines.append(text)
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)
