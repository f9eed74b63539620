"""Skill expressions: which agents may take a call, and how well they fit it.

Grammar (whitespace is free; ``&`` binds tighter than ``|``)::

    expr   := term ("|" term)*
    term   := factor ("&" factor)*
    factor := "(" expr ")" | SKILL [(">=" | ">" | "==") LEVEL]

``SKILL`` is a lowercase name (``network``, ``sales_changes``, ``billing-2``); ``LEVEL`` is an
integer 1-5 (higher is better). A bare ``network`` means ``network >= 1``: the agent has the
skill at any level. An agent without a skill has level 0 in it, so no expression can match an
agent that lacks every skill it names; this keeps candidate lookup by skill index exact.

Evaluation returns a *fit level* instead of a bool: 0 means "does not qualify", otherwise the
level the agent brings to the call. A comparison yields the agent's level in that skill when it
holds; ``a & b`` yields the weaker of the two (a chain is as good as its weakest link); ``a | b``
yields the better. Ranking agents by fit level is what "best level first" means for an
expression naming several skills.

Expressions are parsed once, at config load, into a tree of frozen nodes; ``str(expr)`` prints
the canonical form and ``parse(str(expr)) == expr``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

MIN_LEVEL = 1
MAX_LEVEL = 5

_TOKEN = re.compile(r"\s*(?:(?P<name>[a-z][a-z0-9_-]*)|(?P<num>\d+)|(?P<op>>=|==|>|&|\||\(|\)))")
_SKILL_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")


class SkillExpressionError(ValueError):
    """A skill expression that does not parse; the message shows where."""

    def __init__(self, text: str, position: int, reason: str) -> None:
        self.text = text
        self.position = position
        self.reason = reason
        super().__init__(f"{reason} at column {position + 1} in {text!r}")


@dataclass(frozen=True, slots=True)
class Has:
    """``skill >= min_level`` (or ``skill == level`` when ``exact``)."""

    skill: str
    min_level: int = 1
    exact: bool = False

    def fit(self, skills: Mapping[str, int]) -> int:
        level = skills.get(self.skill, 0)
        if self.exact:
            return level if level == self.min_level else 0
        return level if level >= self.min_level else 0

    def anchors(self) -> frozenset[str]:
        return frozenset((self.skill,))

    def skills(self) -> frozenset[str]:
        return frozenset((self.skill,))

    def __str__(self) -> str:
        if self.exact:
            return f"{self.skill} == {self.min_level}"
        return self.skill if self.min_level == 1 else f"{self.skill} >= {self.min_level}"


@dataclass(frozen=True, slots=True)
class All:
    """Every part must hold; the fit is the weakest part's."""

    parts: tuple[SkillExpr, ...]

    def fit(self, skills: Mapping[str, int]) -> int:
        # Plain comparisons, not min(): fit runs for every candidate agent on the decision path.
        worst = MAX_LEVEL
        for part in self.parts:
            level = part.fit(skills)
            if level == 0:
                return 0
            if level < worst:
                worst = level
        return worst

    def anchors(self) -> frozenset[str]:
        # Every qualifying agent has the skills of any one part; the first part's are enough.
        return self.parts[0].anchors()

    def skills(self) -> frozenset[str]:
        return frozenset().union(*(p.skills() for p in self.parts))

    def __str__(self) -> str:
        return " & ".join(f"({p})" if isinstance(p, Any) else str(p) for p in self.parts)


@dataclass(frozen=True, slots=True)
class Any:
    """At least one part must hold; the fit is the best part's."""

    parts: tuple[SkillExpr, ...]
    _minimums: tuple[tuple[str, int], ...] | None = field(init=False, repr=False, compare=False)
    """``(skill, min_level)`` of each part when every part is such a comparison (the usual
    ``a | b >= 3 | c``): fit then reads the levels without a method call per part."""

    _anchors: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        minimums = None
        if all(isinstance(p, Has) and not p.exact for p in self.parts):
            minimums = tuple((p.skill, p.min_level) for p in self.parts)  # type: ignore[union-attr]
        object.__setattr__(self, "_minimums", minimums)
        # Asked for on the decision path (candidate lookup), so computed once here.
        object.__setattr__(self, "_anchors", frozenset().union(*(p.anchors() for p in self.parts)))

    def fit(self, skills: Mapping[str, int]) -> int:
        best = 0
        if self._minimums is not None:
            get = skills.get
            for skill, min_level in self._minimums:
                level = get(skill, 0)
                if level >= min_level and level > best:
                    best = level
            return best
        for part in self.parts:
            level = part.fit(skills)
            if level > best:
                best = level
        return best

    def anchors(self) -> frozenset[str]:
        return self._anchors

    def skills(self) -> frozenset[str]:
        return frozenset().union(*(p.skills() for p in self.parts))

    def __str__(self) -> str:
        return " | ".join(str(p) for p in self.parts)


SkillExpr = Has | All | Any


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    stripped_end = len(text.rstrip())
    while pos < stripped_end:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            start = len(text) - len(text[pos:].lstrip())
            raise SkillExpressionError(text, start, f"unexpected character {text[start]!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, tok: tuple[str, str, int], reason: str) -> SkillExpressionError:
        return SkillExpressionError(self.text, tok[2], reason)

    def expr(self) -> SkillExpr:
        parts = [self.term()]
        while self.peek()[1] == "|":
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else Any(_flatten(Any, parts))

    def term(self) -> SkillExpr:
        parts = [self.factor()]
        while self.peek()[1] == "&":
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else All(_flatten(All, parts))

    def factor(self) -> SkillExpr:
        tok = self.take()
        if tok[1] == "(":
            inner = self.expr()
            close = self.take()
            if close[1] != ")":
                raise self.fail(close, "expected ')'")
            return inner
        if tok[0] != "name":
            what = "end of expression" if tok[0] == "end" else repr(tok[1])
            raise self.fail(tok, f"expected a skill name, found {what}")
        op = self.peek()
        if op[0] != "op" or op[1] not in (">=", ">", "=="):
            return Has(tok[1])
        self.take()
        num = self.take()
        if num[0] != "num":
            raise self.fail(num, f"expected a level after {op[1]!r}")
        level = int(num[1]) + (1 if op[1] == ">" else 0)
        if not MIN_LEVEL <= level <= MAX_LEVEL:
            raise self.fail(
                num, f"levels run {MIN_LEVEL}-{MAX_LEVEL}, so {op[1]} {num[1]} is not allowed"
            )
        return Has(tok[1], level, exact=op[1] == "==")


def _flatten(kind: type[All] | type[Any], parts: list[SkillExpr]) -> tuple[SkillExpr, ...]:
    flat: list[SkillExpr] = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, kind) else (part,))
    return tuple(flat)


def parse(text: str) -> SkillExpr:
    """Parse a skill expression; raises :class:`SkillExpressionError` naming the column."""
    if not isinstance(text, str) or not text.strip():
        raise SkillExpressionError(str(text), 0, "empty skill expression")
    parser = _Parser(text)
    result = parser.expr()
    tail = parser.peek()
    if tail[0] != "end":
        raise parser.fail(tail, f"unexpected {tail[1]!r}")
    return result


def valid_skill_name(name: str) -> bool:
    """Whether ``name`` can be used as a skill in expressions and agent profiles."""
    return bool(_SKILL_NAME.match(name))
