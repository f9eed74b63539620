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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from ivr.configfile import ConfigError, SectionParser, read_section

if TYPE_CHECKING:
    from ivr.menu import MenusConfig
    from ivr.prompts import PromptsConfig
    from ivr.speech.schema import IntentsConfig

log = logging.getLogger(__name__)

# intents.<code>.yaml / prompts.<code>.yaml
LANGUAGE_FILE = re.compile(r"(intents|prompts)\.([^.]+)\.yaml")
# Set by one call of the engine that decides: the only keys of ``speech:`` a language file
# may not set differently (one AudioSocket server, one recognizer pool for every language).
_SHARED_SPEECH_KEYS = ("endpointing", "workers")

_SectionT = TypeVar("_SectionT")


@dataclass(frozen=True)
class Language:
    """What callers of one language hear and how they are understood."""

    code: str
    intents: IntentsConfig
    # None only in configs built without prompts (tests of one call flow), see LanguageConfig.
    prompts: PromptsConfig | None
    entry: str  # first menu of the DTMF tree
    default: bool = False

    def sound(self, name: str) -> str:
        """A prompt's name below the sounds directory: ``ko/welcome`` (default: ``welcome``)."""
        return name if self.default else f"{self.code}/{name}"

    def file(self, kind: str) -> str:
        """The name of this language's ``kind`` file: ``intents.ko.yaml`` (default:
        ``intents.yaml``)."""
        return f"{kind}.yaml" if self.default else f"{kind}.{self.code}.yaml"


class LanguageConfig(Protocol):
    """What the functions below read of a config: ``ivr.config.HotlineConfig``.

    Its ``languages`` (code -> :class:`Language`) and ``prompts`` are read when present:
    configs built for tests of one flow may have only ``menus`` and ``intents``, and then
    have the default language only.
    """

    @property
    def menus(self) -> MenusConfig: ...

    @property
    def intents(self) -> IntentsConfig: ...


def _languages(cfg: LanguageConfig) -> Mapping[str, Language]:
    languages: Mapping[str, Language] = getattr(cfg, "languages", None) or {}
    return languages


def default_language(cfg: LanguageConfig) -> Language:
    """The language of intents.yaml and prompts.yaml, for configs built without languages."""
    menus = cfg.menus
    return Language(
        code=getattr(menus, "language", "en"), intents=cfg.intents,
        prompts=getattr(cfg, "prompts", None), entry=menus.entry, default=True,
    )


def all_languages(cfg: LanguageConfig) -> list[Language]:
    """Every language of the config, the default first (configs built without languages:
    the default one)."""
    return list(_languages(cfg).values()) or [default_language(cfg)]


def language_of(cfg: LanguageConfig, code: str | None) -> Language:
    """The language ``code`` of the config in force (unknown or None: the default)."""
    languages = _languages(cfg)
    if code and code in languages:
        return languages[code]
    for language in languages.values():
        if language.default:
            return language
    return default_language(cfg)


def call_language(cfg: LanguageConfig, requested: str | None) -> str:
    """The language a call starts in: the dialplan's ``HOTLINE_LANGUAGE`` when the hotline
    serves it, else the default language (an unknown value is logged, never fatal)."""
    default = language_of(cfg, None).code
    wanted = (requested or "").strip()
    if not wanted:
        return default
    if wanted in _languages(cfg):
        return wanted
    log.warning("HOTLINE_LANGUAGE %r is not a language of this hotline: %s", wanted, default)
    return default


def load_languages(
    directory: Path, menus: MenusConfig, intents: IntentsConfig, prompts: PromptsConfig
) -> tuple[dict[str, Language], list[str]]:
    """Every language's files, validated and checked against the default ones (``intents``
    and ``prompts``, of intents.yaml and prompts.yaml).

    Returns the languages declared in menus.yaml, the default first, and the problems found,
    as ``file: key: reason`` lines. Language files present but not declared in menus.yaml are
    validated too (a file ops prepared is checked before they switch it on), but not used.
    """
    # Imported here: each package owns its schema, and a missing optional engine does not
    # break ``import ivr.config``.
    from ivr.prompts import PromptsConfig
    from ivr.speech.schema import IntentsConfig

    languages = {
        menus.language: Language(menus.language, intents, prompts, menus.entry, default=True)
    }
    problems: list[str] = []
    present = {
        (m.group(1), m.group(2)): path
        for path in sorted(directory.glob("*.*.yaml"))
        if (m := LANGUAGE_FILE.fullmatch(path.name))
    }

    def read(
        kind: str,
        code: str,
        parse: SectionParser[_SectionT],
        check: Callable[[_SectionT, _SectionT], list[str]],
        default: _SectionT,
    ) -> _SectionT | None:
        """The ``kind`` file of language ``code``, None when absent or invalid."""
        path = directory / f"{kind}.{code}.yaml"
        if (kind, code) not in present:
            if code in menus.languages:
                problems.append(
                    f"{directory / 'menus.yaml'}: languages.{code}: {path.name} is missing"
                )
            return None
        if code == menus.language:
            problems.append(f"{path}: {code!r} is the default language: its {kind} are {kind}.yaml")
            return None
        try:
            section = read_section(path, parse)
        except ConfigError as exc:
            problems.extend(exc.problems)
            return None
        problems.extend(f"{path}: {line}" for line in check(section, default))
        return section

    codes = set(menus.languages) | {code for _, code in present}
    for code in sorted(codes):
        declared = code in menus.languages
        code_intents = read("intents", code, IntentsConfig.model_validate, _check_intents, intents)
        code_prompts = read("prompts", code, PromptsConfig.model_validate, _check_prompts, prompts)
        if declared and code_intents is not None and code_prompts is not None:
            languages[code] = Language(code, code_intents, code_prompts, menus.entry_of(code))
        elif not declared and (code_intents is not None or code_prompts is not None):
            log.info("config: %s files present but %r is not under languages in menus.yaml",
                     code, code)
    return languages, problems


def _check_intents(intents: IntentsConfig, default: IntentsConfig) -> list[str]:
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


def _check_prompts(prompts: PromptsConfig, default: PromptsConfig) -> list[str]:
    missing = sorted(set(default.texts()) - set(prompts.texts()))
    unknown = sorted(set(prompts.texts()) - set(default.texts()))
    problems = []
    if missing:
        problems.append(f"prompts: missing {missing} (every prompt of prompts.yaml is needed)")
    if unknown:
        problems.append(f"prompts: {unknown} are not prompts of prompts.yaml")
    return problems
