"""What is checked and built before ``ivr serve`` takes a call: the runtime problems the
config schema cannot see (speech models, voices or prompts built elsewhere, HTTP exposure,
webhook secrets, writable directories), and every language's prompts; and what is brought
up to date while it already takes calls (the work orders' index sets after an upgrade).

``ivr check-config`` runs :func:`check_runtime` too, so a problem is found before a restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotline.jobs import Job
from ivr.languages import all_languages

if TYPE_CHECKING:
    from ivr.config import HotlineConfig
    from workorders.upgrade import IndexedStore

log = logging.getLogger(__name__)


def check_runtime(cfg: HotlineConfig) -> list[str]:
    """Problems that the schema cannot see: speech models present, directories writable."""
    problems: list[str] = []
    from ivr.prompts import prompts_on_disk, voice_problem
    from ivr.speech.engines import EngineLoadError
    from ivr.speech.gateway import speech_languages
    from ivr.speech.languages import load_language_engine

    for language in speech_languages(cfg):
        # Each language's model is loaded here once (and kept for the AudioSocket server), so
        # a missing or broken model directory is a clear error at start (and in `ivr
        # check-config`), not at the first call.
        try:
            load_language_engine(language.intents)
        except EngineLoadError as exc:
            problems.append(f"{cfg.directory / language.file('intents')}: "
                            f"speech.engine {language.intents.speech.engine}: {exc}")
    for language in all_languages(cfg):
        if language.prompts is None:
            continue  # a config built without prompts (tests of one call flow)
        reason = voice_problem(language.prompts)
        if reason is None:
            continue
        sounds = prompts_dir(cfg, language)
        missing = prompts_on_disk(language.prompts, sounds)
        if missing:
            problems.append(
                f"{cfg.directory / language.file('prompts')}: voice: {reason}; "
                f"{len(missing)} prompts are not built in {sounds} (install the voices with "
                f"pip install 'hotline[voices]', or build them elsewhere: ivr prompts build)"
            )
        else:
            log.warning("prompts (%s): no voice here (%s): using the prompts already built in "
                        "%s, not checked against %s", language.code, reason, sounds,
                        language.file("prompts"))
    from hotline.endpoints import http_exposure_problems

    problems += http_exposure_problems(cfg.service.http, cfg.directory / "service.yaml")
    from webhooks import secret_problems

    problems += secret_problems(cfg.webhooks, cfg.directory / "webhooks.yaml")
    for label, path in (
        ("service.yaml: asterisk.sounds_dir", cfg.service.asterisk.host_sounds_dir),
        ("service.yaml: spool_dir", Path(cfg.service.spool_dir)),
    ):
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problems.append(f"{cfg.directory / label}: cannot create {path}: {exc.strerror}")
            continue
        if not os.access(path, os.W_OK):
            problems.append(f"{cfg.directory / label}: {path} is not writable")
    return problems


def ensure_prompts(cfg: HotlineConfig) -> None:
    """Synthesize prompts that are missing or changed before the first call can need them:
    every language's, each in its directory (``<sounds dir>/<code>/`` beside the default)."""
    for language, report in build_language_prompts(cfg, with_voice_only=True):
        log.info("prompts (%s): %s", language, report)


def build_language_prompts(
    cfg: HotlineConfig, force: bool = False, sounds_dir: Path | None = None,
    with_voice_only: bool = False,
) -> list[tuple[str, Any]]:
    """Build every language's prompts, the default language's in the sounds directory
    (``sounds_dir``, else the configured one) and each other's in ``<sounds>/<code>/``;
    (language code, BuildReport) per language. ``with_voice_only``: languages whose voice is
    not installed here are left as they are (``ivr serve`` then plays the prompts built
    elsewhere, see :func:`check_runtime`)."""
    from ivr.prompts import build_prompts, voice_problem

    return [
        (language.code, build_prompts(
            language.prompts, prompts_dir(cfg, language, sounds_dir), force=force,
        ))
        for language in all_languages(cfg)
        if language.prompts is not None
        and (not with_voice_only or voice_problem(language.prompts) is None)
    ]


def prompts_dir(cfg: HotlineConfig, language: Any, sounds_dir: Path | None = None) -> Path:
    """Where ``language``'s prompts are written: the sounds directory (``sounds_dir``, else
    the configured one) for the default language, ``<sounds>/<code>/`` for the others."""
    sounds = sounds_dir or cfg.service.asterisk.host_sounds_dir
    return Path(sounds) if language.default else Path(sounds) / language.code


#: Seconds between an instance's looks at the work orders' index version until it is
#: recorded (another instance held the rebuild's lock, or Redis was away).
INDEX_UPGRADE_EVERY_S = 60.0


def index_upgrade_job(store: IndexedStore, instance: str, clock: Callable[[], float]) -> Job:
    """The rebuild of the index sets that orders stored before an upgrade lack
    (``workorders.upgrade``): a first round at start, in the background, then one a minute
    until the version is recorded by this instance or another; nothing after that."""
    from workorders.upgrade import IndexUpgrade

    upgrade = IndexUpgrade(store, instance=instance, clock=clock)
    return Job("index upgrade", INDEX_UPGRADE_EVERY_S, upgrade.round, now=True)
