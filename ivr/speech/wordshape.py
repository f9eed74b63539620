"""The pieces of a word, for matching a misheard word to the word it was.

Pure. A recognizer that mishears a word mostly keeps much of its spelling: "landliving" for
"landline", "complete" for "complaint", "contrast" for "contract", "this county" for
"discount". Whole-word features see nothing in common there; the letter n-grams of the words
do, so the classifier (:mod:`ivr.speech.classifier`) takes some evidence from a word it never
saw, or from the known part of a word heard wrong.
"""

from __future__ import annotations

# Sizes of the pieces, boundary marks included: a short piece survives a badly misheard word,
# a long one counts a longer stretch spelled right ("<land", "count").
GRAM_SIZES = (3, 4, 5)
# A word's letters between boundary marks, so "<la" (a word starting "la") and "ne>" (a
# word ending "ne") say where in the word a piece sits.
_START, _END = "<", ">"


def char_grams(word: str, sizes: tuple[int, ...] = GRAM_SIZES) -> list[str]:
    """The distinct letter n-grams of ``word`` with its boundary marks, by size:
    "line" -> "<li", "lin", "ine", "ne>", "<lin", "line", "ine>", "<line", "line>". A word
    shorter than a size gives its whole marked form once instead."""
    marked = f"{_START}{word}{_END}"
    out: list[str] = []
    seen: set[str] = set()
    for n in sizes:
        for i in range(max(1, len(marked) - n + 1)):
            gram = marked[i : i + n]
            if gram not in seen:
                seen.add(gram)
                out.append(gram)
    return out
