"""The UI's words: one file per language (``screens/strings/<code>.yaml``, flat keys), English
shipped. Every language must have every key English has: a missing string stops the start,
never shows a key to an agent. Placeholders are ``str.format`` fields (``{seconds}``).

Numbers are formatted here too (durations, percentages): how they read is the language's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import yaml

__all__ = ["Strings", "load_strings"]

DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Strings:
    language: str
    table: Mapping[str, str]

    def __call__(self, key: str, **values: object) -> str:
        text = self.table[key]  # a KeyError here is a template bug, caught by the tests
        return text.format(**values) if values else text

    def duration(self, seconds: float | None) -> str:
        """``m:ss`` under an hour, ``h:mm:ss`` from one; an em dash for nothing."""
        if seconds is None:
            return "\u2014"
        total = max(0, int(seconds))
        hours, rest = divmod(total, 3600)
        minutes, secs = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

    def clock(self, epoch: float, *, seconds: bool = False) -> str:
        """A time of day, ``HH:MM`` (``HH:MM:SS`` with ``seconds``) UTC (the figures'
        intervals are UTC, like the report)."""
        return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S" if seconds else "%H:%M")

    def label(self, group: str, name: str) -> str:
        """The words for a configurable name (``category.fault``, ``reason.lunch``); a name
        the strings do not know reads as itself (categories and pause reasons are config)."""
        return self.table.get(f"{group}.{name}", name)

    def category(self, name: str) -> str:
        return self.label("category", name)

    def percent(self, fraction: float | None) -> str:
        return "\u2014" if fraction is None else self("percent", value=round(fraction * 100))


def _read(language: str) -> dict[str, str]:
    path = resources.files("screens") / "strings" / f"{language}.yaml"
    if not path.is_file():
        raise ValueError(f"no UI strings for language {language!r} (screens/strings/)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"screens/strings/{language}.yaml: a mapping of keys to strings")
    return {str(k): str(v) for k, v in data.items()}


def load_strings(language: str = DEFAULT_LANGUAGE) -> Strings:
    """The strings of ``language``, checked against English's keys."""
    english = _read(DEFAULT_LANGUAGE)
    table = english if language == DEFAULT_LANGUAGE else _read(language)
    missing = sorted(set(english) - set(table))
    if missing:
        raise ValueError(f"screens/strings/{language}.yaml lacks {', '.join(missing[:10])}")
    return Strings(language, table)
