"""Letter n-grams of words: what a misheard word shares with the word it was."""

from __future__ import annotations

from ivr.speech.wordshape import char_grams


def test_grams_are_distinct_and_marked_at_the_word_boundaries() -> None:
    """3- to 5-letter pieces of the word between boundary marks, each once, by size; a word
    shorter than a size gives its whole marked form once."""
    assert char_grams("line") == [
        "<li", "lin", "ine", "ne>", "<lin", "line", "ine>", "<line", "line>",
    ]
    assert char_grams("a") == ["<a>"]
    assert char_grams("aaaa", sizes=(3,)) == ["<aa", "aaa", "aa>"]


def test_a_misheard_word_shares_pieces_with_the_right_one_more_than_with_others() -> None:
    """"landliving" for "landline" keeps "<land" and its pieces; an unrelated word of the
    same length shares far fewer."""
    heard = set(char_grams("landliving"))
    assert {"<land", "<lan", "land", "andl", "ndli"} <= heard & set(char_grams("landline"))
    assert len(heard & set(char_grams("landline"))) > 3 * len(heard & set(char_grams("roaming")))
