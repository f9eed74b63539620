"""The languages of the hotline: one intents file, one prompts file and one menu entry each.

The default language is that of ``intents.yaml`` and ``prompts.yaml`` (``language:`` in
menus.yaml, ``en`` unless set). Each further language ``<code>`` declared under
``languages:`` in menus.yaml has its own ``intents.<code>.yaml`` (same schema, same category
names: the routing rules are per category, whatever the caller speaks; its own ``speech:``
engine and model) and ``prompts.<code>.yaml`` (same prompt names, its own voice), and the
entry menu of its DTMF tree.

A call's language (:func:`call_language`, pure): ``HOTLINE_LANGUAGE`` set by the dialplan
(the extension of the DID that callers of that language dial), else the default; a menu
option ``language: <code>`` switches during the call. It selects the engine and classifier
of the speech step, the menu tree, the prompts, Asterisk's ``CHANNEL(language)``, and is
recorded on the work order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# intents.<code>.yaml / prompts.<code>.yaml
LANGUAGE_FILE = re.compile(r"(intents|prompts)\.([^.]+)\.yaml")
# Set by one call of the engine that decides: the only keys of ``speech:`` a language file
# may not set differently (one AudioSocket server, one recognizer pool for every language).
_SHARED_SPEECH_KEYS = ("endpointing", "workers")


@dataclass(frozen=True)
class Language:
    """What callers of one language hear and how they are understood."""

    code: str
    intents: Any  # ivr.speech.schema.IntentsConfig
    prompts: Any  # ivr.prompts.PromptsConfig
    entry: str  # first menu of the DTMF tree
    default: bool = False

    def sound(self, name: str) -> str:
        """A prompt's name below the sounds directory: ``ko/welcome`` (default: ``welcome``)."""
        return name if self.default else f"{self.code}/{name}"

    def file(self, kind: str) -> str:
        """The name of this language's ``kind`` file: ``intents.ko.yaml`` (default:
        ``intents.yaml``)."""
        return f"{kind}.yaml" if self.default else f"{kind}.{self.code}.yaml"


def default_language(cfg: Any) -> Language:
    """The language of intents.yaml and prompts.yaml, for configs built without languages."""
    menus = cfg.menus
    return Language(
        code=getattr(menus, "language", "en"), intents=cfg.intents,
        prompts=getattr(cfg, "prompts", None), entry=menus.entry, default=True,
    )


def all_languages(cfg: Any) -> list[Language]:
    """Every language of the config, the default first (configs built without languages:
    the default one)."""
    languages: Mapping[str, Language] = getattr(cfg, "languages", None) or {}
    return list(languages.values()) or [default_language(cfg)]


def language_of(cfg: Any, code: str | None) -> Language:
    """The language ``code`` of the config in force (unknown or None: the default)."""
    languages: Mapping[str, Language] = getattr(cfg, "languages", None) or {}
    if code and code in languages:
        return languages[code]
    for language in languages.values():
        if language.default:
            return language
    return default_language(cfg)


def call_language(cfg: Any, requested: str | None) -> str:
    """The language a call starts in: the dialplan's ``HOTLINE_LANGUAGE`` when the hotline
    serves it, else the default language (an unknown value is logged, never fatal)."""
    default = language_of(cfg, None).code
    wanted = (requested or "").strip()
    if not wanted:
        return default
    if wanted in (getattr(cfg, "languages", None) or {}):
        return wanted
    log.warning("HOTLINE_LANGUAGE %r is not a language of this hotline: %s", wanted, default)
    return default


def load_languages(
    directory: Path, sections: Mapping[str, Any], read: Any
) -> tuple[dict[str, Language], list[str]]:
    """Every language's files, validated and checked against the default ones.

    ``read(path, parse)`` reads and validates one file, raising ``ConfigError`` with
    ``file: key: reason`` lines. Language files present but not declared in menus.yaml are
    validated too (a file ops prepared is checked before they switch it on), but not used.
    """
    from ivr.config import ConfigError
    from ivr.prompts import PromptsConfig
    from ivr.speech.schema import IntentsConfig

    menus, intents, prompts = sections["menus"], sections["intents"], sections["prompts"]
    languages = {
        menus.language: Language(menus.language, intents, prompts, menus.entry, default=True)
    }
    problems: list[str] = []
    present = {
        (m.group(1), m.group(2)): path
        for path in sorted(directory.glob("*.*.yaml"))
        if (m := LANGUAGE_FILE.fullmatch(path.name))
    }
    codes = set(menus.languages) | {code for _, code in present}
    for code in sorted(codes):
        declared = code in menus.languages
        files = {}
        for kind, schema, check, default in (
            ("intents", IntentsConfig, _check_intents, intents),
            ("prompts", PromptsConfig, _check_prompts, prompts),
        ):
            path = directory / f"{kind}.{code}.yaml"
            if (kind, code) not in present:
                if declared:
                    problems.append(
                        f"{directory / 'menus.yaml'}: languages.{code}: {path.name} is missing"
                    )
                continue
            if code == menus.language:
                problems.append(
                    f"{path}: {code!r} is the default language: its {kind} are {kind}.yaml"
                )
                continue
            try:
                files[kind] = read(path, schema.model_validate)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            problems.extend(f"{path}: {line}" for line in check(files[kind], default))
        if declared and len(files) == 2:
            languages[code] = Language(
                code, files["intents"], files["prompts"], menus.entry_of(code)
            )
        elif not declared and files:
            log.info("config: %s files present but %r is not under languages in menus.yaml",
                     code, code)
    return languages, problems


def _check_intents(intents: Any, default: Any) -> list[str]:
    problems = []
    missing = sorted(set(default.categories) - set(intents.categories))
    unknown = sorted(set(intents.categories) - set(default.categories))
    if missing or unknown:
        problems.append(
            "categories: must be those of intents.yaml"
            + (f"; missing {missing}" if missing else "")
            + (f"; not in intents.yaml {unknown}" if unknown else "")
        )
    for key in _SHARED_SPEECH_KEYS:
        if key in intents.speech.model_fields_set and getattr(intents.speech, key) != getattr(
            default.speech, key
        ):
            problems.append(
                f"speech.{key}: set it in intents.yaml only (one AudioSocket server and one "
                "recognizer pool serve every language)"
            )
    return problems


def _check_prompts(prompts: Any, default: Any) -> list[str]:
    missing = sorted(set(default.texts()) - set(prompts.texts()))
    unknown = sorted(set(prompts.texts()) - set(default.texts()))
    problems = []
    if missing:
        problems.append(f"prompts: missing {missing} (every prompt of prompts.yaml is needed)")
    if unknown:
        problems.append(f"prompts: {unknown} are not prompts of prompts.yaml")
    return problems
