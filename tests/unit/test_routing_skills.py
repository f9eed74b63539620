"""Skill expressions: parsing, canonical printing, fit levels, clear errors."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.skills import All, Any, Has, SkillExpressionError, parse


def test_precedence_and_binds_tighter_than_or():
    """``a | b & c`` reads as ``a | (b & c)``."""
    assert parse("a | b & c") == Any((Has("a"), All((Has("b"), Has("c")))))


def test_parentheses_and_comparisons():
    """Comparisons normalize: ``> 2`` is ``>= 3``; ``==`` is exact."""
    assert parse("(network > 2 | sales == 4) & general") == All(
        (Any((Has("network", 3), Has("sales", 4, exact=True))), Has("general"))
    )


def test_fit_level_semantics():
    """A comparison yields the agent's level, ``&`` the weakest part, ``|`` the best part,
    0 when the agent does not qualify."""
    skills = {"network": 4, "general": 2}
    assert parse("network >= 4").fit(skills) == 4
    assert parse("network >= 5").fit(skills) == 0
    assert parse("network >= 4 & general").fit(skills) == 2
    assert parse("network >= 5 | general").fit(skills) == 2
    assert parse("billing").fit(skills) == 0
    assert parse("network == 4").fit(skills) == 4


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("", 1, "empty"),
        ("network >=", 11, "expected a level"),
        ("network >= 6", 12, "levels run 1-5"),
        ("network >= 0", 12, "levels run 1-5"),
        ("(network", 9, "expected ')'"),
        ("network general", 9, "unexpected 'general'"),
        ("Network", 1, "unexpected character 'N'"),
        ("a & | b", 5, "expected a skill name"),
        ("a & ", 5, "expected a skill name, found end"),
    ],
)
def test_bad_input_is_refused_with_column(text, column, fragment):
    """Every malformed expression is refused with the column and what was wrong."""
    with pytest.raises(SkillExpressionError) as info:
        parse(text)
    assert fragment in str(info.value)
    assert f"column {column}" in str(info.value)


def test_anchors_cover_every_qualifying_agent():
    """Anchors: an ``&`` needs only its first part's skills, an ``|`` all parts' skills."""
    assert parse("network >= 4 & general").anchors() == {"network"}
    assert parse("network | sales & general").anchors() == {"network", "sales"}


names = st.sampled_from(["billing", "sales", "network", "general", "complaints"])
leaf = st.builds(
    lambda n, lv, op: f"{n} {op} {lv}" if op else n,
    names,
    st.integers(1, 5),
    st.sampled_from(["", ">=", "=="]),
)


def _combine(children):
    return st.one_of(
        st.builds(lambda a, b: f"{a} & {b}", children, children),
        st.builds(lambda a, b: f"{a} | {b}", children, children),
        st.builds(lambda a: f"({a})", children),
    )


expressions = st.recursive(leaf, _combine, max_leaves=8)
skill_maps = st.dictionaries(names, st.integers(1, 5))


@given(expressions)
def test_round_trip(text):
    """Printing a parsed expression and parsing it again gives the same expression."""
    expr = parse(text)
    assert parse(str(expr)) == expr


@given(expressions, skill_maps)
def test_agent_without_anchor_skills_never_qualifies(text, skills):
    """An agent lacking every anchor skill has fit 0, so candidate lookup by index is exact."""
    expr = parse(text)
    if not expr.anchors() & set(skills):
        assert expr.fit(skills) == 0
    assert 0 <= expr.fit(skills) <= 5


def _fit_by_definition(expr, skills):
    if isinstance(expr, Has):
        level = skills.get(expr.skill, 0)
        holds = level == expr.min_level if expr.exact else level >= expr.min_level
        return level if holds else 0
    levels = [_fit_by_definition(p, skills) for p in expr.parts]
    if isinstance(expr, All):
        return min(levels) if all(levels) else 0
    return max(levels)


@given(expressions, skill_maps)
def test_fit_follows_the_definition(text, skills):
    """Fit is the level a comparison yields when it holds, the weakest part of an ``&``, the
    best of an ``|`` (whichever way the expression is evaluated)."""
    expr = parse(text)
    assert expr.fit(skills) == _fit_by_definition(expr, skills)
