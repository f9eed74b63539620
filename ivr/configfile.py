"""One config file: read, parsed as YAML, validated by its section's model; every problem a
``file: key: reason`` line of a :class:`ConfigError`.

Below both ``ivr.config`` (every file, cross-checked) and ``ivr.languages`` (the files of
each language), so that neither imports the other to read a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml
from pydantic import ValidationError

from ivr.yamlfile import load_yaml

SectionT_co = TypeVar("SectionT_co", covariant=True)


class ConfigError(Exception):
    """A config file is missing, unreadable or invalid; ``problems`` lists each as a line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class SectionParser(Protocol[SectionT_co]):
    """Validates one file's YAML data: a pydantic ``Model.model_validate`` (the file's path is
    in the validation context, for files that name other files); raises ValidationError or
    ValueError."""

    def __call__(self, obj: Any, *, context: Any | None = None) -> SectionT_co: ...


def read_yaml(path: Path) -> Any:
    """Parse one YAML file (any YAML value; an empty file is ``{}``); errors name the file and
    the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}: {where}invalid YAML: {problem}"]) from None
    return {} if data is None else data


def read_section(
    path: Path, parse: SectionParser[SectionT_co], overrides: Mapping[str, Any] | None = None
) -> SectionT_co:
    """Read, merge ``overrides`` into, and validate one file; ConfigError with every problem
    as a ``file: key: reason`` line."""
    data = read_yaml(path)
    if overrides and isinstance(data, Mapping):
        data = merge(data, overrides)
    if not isinstance(data, Mapping):
        raise ConfigError([f"{path}: the top level must be a mapping"])
    try:
        return parse(data, context={"path": path})
    except ValidationError as exc:
        raise ConfigError(validation_problems(path, exc)) from None
    except ValueError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None


def validation_problems(file: Path, error: ValidationError) -> list[str]:
    """One ``file: key.path: reason`` line per error pydantic found."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{file}: {key}: {item['msg']}")
    return lines


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``, mappings key by key, anything else replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
