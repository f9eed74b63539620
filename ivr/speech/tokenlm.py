"""The hotline's domain in a subword recognizer's greedy decoding: shallow fusion, keyword bonus.

Moonshine decodes with a general English decoder; pocketsphinx decodes with the domain's own
n-gram model (:mod:`ivr.speech.lm`). This module gives Moonshine's greedy decoding the same
knowledge as a bias: at each step the decoder's log probabilities get ``weight`` times the
domain model's log probability of each token added ("shallow fusion"), so "complaint" beats
"complete notification" where the audio is in doubt, and the audio wins where it is clear.

Pure (numpy, no model): sentences and the recognizer's token table in, a :class:`DomainBias`
out. The corpus is tokenized as the recognizer's own tokenizer would (SentencePiece BPE: its
pieces ranked by id, :func:`encode_word`). The recognizer writes case and punctuation that the
corpus (lowercase words) has not: tokens are compared lowercased, and tokens without a letter
(punctuation, digits) are left to the recognizer (they score as the step's best domain token,
and are no history).

The model: interpolated absolute discounting over token n-grams; a token the corpus never
has shares the unigram floor, so an unusual word is heard when it is clearly said.

A lighter bias, :class:`KeywordBias`, only adds a bonus to the tokens that spell one of the
intents' keywords (contextual biasing over a prefix tree) and leaves every other word alone.

In greedy decoding neither pays: the fusion makes up fluent domain sentences in the noise
and the bonus moves calls by chance. In a beam of three the fusion does: the shipped config
sets ``speech.moonshine_beam: 3`` and ``speech.moonshine_lm_weight: 0.2``
(docs/speech-conditions.md, "Thirteenth session"); ``moonshine_keyword_bonus`` stays
selectable, off.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

SPACE = "\u2581"  # SentencePiece's word boundary
_NONE = np.zeros(0, dtype=np.int64)
# Share of the unigram mass kept for tokens the corpus never has (all of them together).
UNSEEN_MASS = 0.05


class DecodingBias(Protocol):
    """What a decoder asks of a bias at each step, for each hypothesis: the decoder's log
    probabilities adjusted after the tokens so far, kept as the bias's own history."""

    def start(self) -> list[int]: ...
    def adjust(self, logprobs: np.ndarray, history: Sequence[int]) -> np.ndarray: ...
    def advance(self, history: list[int], token: int) -> list[int]: ...


# A bias made for a recognizer's tokens (UTF-8 pieces, in id order) and its end token.
BiasFactory = Callable[[Sequence[bytes], int], DecodingBias]


def _symbols(pieces: Sequence[bytes], end_token: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Each token's symbol (its lowercased piece numbered from 2, or -1 for the special
    tokens and those without a letter), whether it starts a word, and how many symbols."""
    symbols: dict[bytes, int] = {}
    symbol_of = np.full(len(pieces), -1, dtype=np.int64)
    starts_word = np.zeros(len(pieces), dtype=bool)
    for i, piece in enumerate(pieces):
        text = piece.decode("utf-8", errors="ignore")
        if i <= end_token or not any(ch.isalpha() for ch in text):
            continue
        symbol_of[i] = symbols.setdefault(text.lower().encode(), len(symbols) + 2)
        starts_word[i] = text.startswith(SPACE)
    return symbol_of, starts_word, len(symbols) + 2


def _piece_ids(pieces: Sequence[bytes]) -> dict[bytes, int]:
    return {piece: i for i, piece in reversed(list(enumerate(pieces)))}


def encode_word(word: str, piece_ids: dict[bytes, int], byte_base: int = 3) -> list[int]:
    """``word`` (with its leading word boundary) as SentencePiece BPE encodes it: characters,
    then the adjacent pair whose joined piece has the lowest id (the highest score) merged,
    again and again. A character with no piece falls back to its UTF-8 bytes (ids
    ``byte_base + byte``, as Llama's tokenizer)."""
    parts = [ch.encode("utf-8") for ch in word]
    while len(parts) > 1:
        best, at = None, -1
        for i in range(len(parts) - 1):
            rank = piece_ids.get(parts[i] + parts[i + 1])
            if rank is not None and (best is None or rank < best):
                best, at = rank, i
        if best is None:
            break
        parts[at : at + 2] = [parts[at] + parts[at + 1]]
    ids: list[int] = []
    for part in parts:
        known = piece_ids.get(part)
        ids.extend([known] if known is not None else [byte_base + b for b in part])
    return ids


class TokenLM:
    """Interpolated absolute discounting over sequences of small integers (0 the sentence
    start, 1 its end); :meth:`logprobs` gives every symbol's log probability after a
    history at once."""

    BOS, EOS = 0, 1

    def __init__(self, sequences: Iterable[Sequence[int]], size: int, order: int = 4,
                 discount: float = 0.7) -> None:
        self.size, self.order, self.discount = size, order, discount
        counts: list[Counter[tuple[int, ...]]] = [Counter() for _ in range(order + 1)]
        for seq in sequences:
            full = [self.BOS, *seq, self.EOS]
            for n in range(1, order + 1):
                for i in range(len(full) - n + 1):
                    counts[n][tuple(full[i : i + n])] += 1
        unigram = np.zeros(size)
        for (w,), c in counts[1].items():
            if w != self.BOS:
                unigram[w] = c
        seen = unigram > 0
        unseen = size - 1 - int(seen.sum())
        self._unigram = np.where(seen, unigram / unigram.sum() * (1 - UNSEEN_MASS),
                                 UNSEEN_MASS / max(unseen, 1))
        self._unigram[self.BOS] = 0.0
        # For each history: its followers, their discounted probabilities, and the mass left.
        self._next: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, float]] = {}
        grouped: dict[tuple[int, ...], list[tuple[int, int]]] = defaultdict(list)
        for n in range(2, order + 1):
            for gram, c in counts[n].items():
                grouped[gram[:-1]].append((gram[-1], c))
        for history, followers in grouped.items():
            total = sum(c for _, c in followers)
            words = np.array([w for w, _ in followers])
            probs = np.array([max(c - discount, 0.0) / total for _, c in followers])
            self._next[history] = (words, probs, discount * len(followers) / total)

    def logprobs(self, history: Sequence[int]) -> np.ndarray:
        """Natural log probability of each symbol after ``history`` (the sentence start first)."""
        p = self._unigram.copy()
        start = max(0, len(history) - self.order + 1)
        for i in range(len(history) - 1, start - 1, -1):  # shortest history first
            found = self._next.get(tuple(history[i:]))
            if found is None:
                break
            words, probs, left = found
            p *= left
            p[words] += probs
        return np.log(np.maximum(p, 1e-30))


@dataclass
class DomainBias:
    """The domain model mapped onto a recognizer's token ids: what :meth:`adjust` adds to the
    decoder's log probabilities at each step, given the tokens so far (:meth:`advance`)."""

    weight: float
    lm: TokenLM
    # per recognizer token: its symbol in ``lm``, or -1 (no letter: left to the recognizer)
    symbol_of: np.ndarray
    history_start: tuple[int, ...] = field(default=(TokenLM.BOS,))

    @classmethod
    def build(cls, pieces: Sequence[bytes], sentences: Iterable[str], weight: float, *,
              end_token: int, order: int = 4) -> DomainBias:
        """The bias of ``sentences`` (lowercase words) for a recognizer whose token ``i`` is
        ``pieces[i]`` (UTF-8, SentencePiece's word boundary as U+2581)."""
        piece_ids = _piece_ids(pieces)
        symbol_of, _, size = _symbols(pieces, end_token)
        symbol_of[end_token] = TokenLM.EOS
        words: dict[str, list[int]] = {}
        sequences = []
        for sentence in sentences:
            seq: list[int] = []
            for word in sentence.split():
                if word not in words:
                    words[word] = [int(symbol_of[t]) for t in encode_word(SPACE + word, piece_ids)
                                   if t < len(symbol_of) and symbol_of[t] >= 0]
                seq.extend(words[word])
            if seq:
                sequences.append(seq)
        return cls(weight, TokenLM(sequences, size, order), symbol_of)

    def start(self) -> list[int]:
        return list(self.history_start)

    def adjust(self, logprobs: np.ndarray, history: Sequence[int]) -> np.ndarray:
        """``logprobs`` (the decoder's, over its tokens) with the domain model's added. A token
        without a letter gets what the decoder's likeliest word token gets: the domain model
        has no view of punctuation and digits, so it neither favours nor holds them back
        (favoured, a full stop cut sentences short before words it doubted)."""
        lm = self.lm.logprobs(history)
        known = self.symbol_of[: len(logprobs)]
        extra = np.zeros(len(logprobs))
        extra[: len(known)] = np.where(known >= 0, lm[np.maximum(known, 0)], 0.0)
        words = np.flatnonzero(known >= 0)
        best_word = words[int(logprobs[words].argmax())]
        extra[: len(known)][known < 0] = extra[best_word]
        extra[len(known):] = extra[best_word]  # the decoder's output padded past its tokens
        return logprobs + self.weight * extra

    def advance(self, history: list[int], token: int) -> list[int]:
        symbol = int(self.symbol_of[token]) if token < len(self.symbol_of) else -1
        if symbol >= 0:
            history.append(symbol)
        return history


@dataclass
class KeywordBias:
    """A bonus for the tokens that spell one of the domain's keywords (contextual biasing
    over a prefix tree of their tokens): words the classifier weighs are heard where the
    audio is in doubt; every other word is left to the decoder (no penalty)."""

    bonus: float
    # a prefix of a keyword's symbols -> the recognizer tokens that extend it
    extends: dict[tuple[int, ...], np.ndarray]
    symbol_of: np.ndarray
    starts_word: np.ndarray  # per token: does it begin a word (SentencePiece's boundary)
    children: dict[tuple[int, ...], set[int]]  # a keyword prefix -> the symbols that extend it

    @classmethod
    def build(cls, pieces: Sequence[bytes], keywords: Iterable[str], bonus: float, *,
              end_token: int) -> KeywordBias:
        piece_ids = _piece_ids(pieces)
        symbol_of, starts_word, _ = _symbols(pieces, end_token)
        tokens_of: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(symbol_of):
            if s >= 0:
                tokens_of[int(s)].append(i)
        children: dict[tuple[int, ...], set[int]] = defaultdict(set)
        for word in {w for k in keywords for w in k.split()}:
            ids = encode_word(SPACE + word, piece_ids)
            if any(t >= len(symbol_of) or symbol_of[t] < 0 for t in ids):
                continue  # spelled with a piece that has no letter or is not in the table
            spelled = [int(symbol_of[t]) for t in ids]
            for n in range(len(spelled)):
                children[tuple(spelled[:n])].add(spelled[n])
        extends = {
            prefix: np.array(sorted(t for s in nxt for t in tokens_of[s]
                                    if bool(starts_word[t]) == (not prefix)), dtype=np.int64)
            for prefix, nxt in children.items()
        }
        return cls(bonus, extends, symbol_of, starts_word, dict(children))

    def start(self) -> list[int]:
        return []  # the current word's symbols while it spells a keyword's prefix

    def adjust(self, logprobs: np.ndarray, history: Sequence[int]) -> np.ndarray:
        out = logprobs.copy()
        out[self.extends.get((), _NONE)] += self.bonus  # a keyword may start here
        if history and (more := self.extends.get(tuple(history))) is not None:
            out[more] += self.bonus
        return out

    def advance(self, history: list[int], token: int) -> list[int]:
        if token >= len(self.symbol_of) or self.symbol_of[token] < 0:
            return []
        symbol = int(self.symbol_of[token])
        prefix = () if self.starts_word[token] else tuple(history)
        if not (prefix or self.starts_word[token]) or symbol not in self.children.get(prefix, ()):
            return []
        return [*prefix, symbol]
