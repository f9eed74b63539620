"""The one schema of every file in ``config/``: loaded once, validated whole, reloaded whole.

Each file is one section, validated by the model of the package that owns it (menus here,
intents in ``ivr.speech``, queues/agents/rules in ``routing``, work orders in ``workorders``).
Every error names the file, the key path and the reason, so a typo shows up at start (or in
``ivr check-config``), not at 3 a.m. on a caller's line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ivr.menu import MenusConfig
from ivr.yamlfile import load_yaml

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
ENV_PREFIX = "HOTLINE__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Listen(_Section):
    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)


class AGIListen(Listen):
    command_timeout_s: float = Field(60.0, gt=0)


class ARISettings(_Section):
    url: str = "http://127.0.0.1:8088"
    user: str = "hotline"
    app: str = "hotline"
    password_file: str | None = None


class RedisSettings(_Section):
    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "hotline:"


class AsteriskSettings(_Section):
    root: str = ""
    sounds_dir: str = "/var/lib/hotline/sounds"

    @property
    def host_sounds_dir(self) -> Path:
        """Where the service writes prompts so that Asterisk finds them at ``sounds_dir``."""
        if not self.root:
            return Path(self.sounds_dir)
        return Path(self.root) / self.sounds_dir.lstrip("/")


class ServiceConfig(_Section):
    """``config/service.yaml``: addresses, credentials' locations, directories."""

    agi: AGIListen = AGIListen(port=4573)
    audiosocket: Listen = Listen(port=9092)
    http: Listen = Listen(port=8090)
    ari: ARISettings = ARISettings()
    redis: RedisSettings = RedisSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    spool_dir: str = "/var/lib/hotline/spool"
    instance: str = "hotline-1"

    def ari_password(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """From HOTLINE_ARI_PASSWORD, else the password file; never from the repository."""
        if environ.get("HOTLINE_ARI_PASSWORD"):
            return environ["HOTLINE_ARI_PASSWORD"]
        if self.ari.password_file and Path(self.ari.password_file).is_file():
            return Path(self.ari.password_file).read_text().strip()
        return None


class ConfigError(Exception):
    """A config file is missing, unreadable or invalid; ``problems`` lists each as a line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SectionSpec:
    file: str
    # Validates the YAML data (a pydantic ``model_validate``: the file's path goes in the
    # validation context, for files that name other files); raises ValidationError/ValueError.
    parse: Callable[..., Any]
    required: bool = True


def _section_specs() -> dict[str, SectionSpec]:
    # Imported here so that each package owns its schema and a missing optional engine does not
    # break ``import ivr.config``.
    from ivr.prompts import PromptsConfig
    from ivr.speech.schema import IntentsConfig
    from workorders.schema import WorkOrdersConfig

    return {
        "service": SectionSpec("service.yaml", ServiceConfig.model_validate),
        "prompts": SectionSpec("prompts.yaml", PromptsConfig.model_validate),
        "menus": SectionSpec("menus.yaml", MenusConfig.model_validate),
        "intents": SectionSpec("intents.yaml", IntentsConfig.model_validate),
        "workorders": SectionSpec("workorders.yaml", WorkOrdersConfig.model_validate),
    }


@dataclass(frozen=True)
class HotlineConfig:
    """Every section, validated. Attribute names are the section names."""

    directory: Path
    service: ServiceConfig
    prompts: Any
    menus: MenusConfig
    intents: Any
    workorders: Any
    routing: Any  # routing.core.RoutingConfig, built from queues, agents and routing.yaml
    # Every language, the default one included: code -> ivr.languages.Language.
    languages: dict[str, Any] = field(default_factory=dict)


def _format_validation_error(file: Path, error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{file}: {key}: {item['msg']}")
    return lines


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """HOTLINE__AGI__PORT=4574 -> {"agi": {"port": 4574}} (values parsed as YAML scalars)."""
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__") if part]
        if not path:
            continue
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = yaml.safe_load(raw) if raw else ""
    return tree


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> Any:
    """Parse one YAML file; errors name the file and the line."""
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


def load_config(
    directory: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> HotlineConfig:
    """Load and validate every file; raise :class:`ConfigError` listing every problem found."""
    environ = os.environ if environ is None else environ
    directory = Path(directory or environ.get("HOTLINE_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, spec in _section_specs().items():
        path = directory / spec.file
        overrides = _env_overrides(environ) if name == "service" else None
        try:
            sections[name] = read_section(path, spec.parse, overrides)
        except ConfigError as exc:
            problems.extend(exc.problems)
    problems.extend(_load_routing(directory, sections))
    languages: dict[str, Any] = {}
    if all(name in sections for name in ("menus", "intents", "prompts")):
        from ivr.languages import load_languages

        languages, language_problems = load_languages(directory, sections, read_section)
        problems.extend(language_problems)
    if not problems:
        problems.extend(_cross_check(directory, sections))
    if problems:
        raise ConfigError(problems)
    return HotlineConfig(directory=directory, languages=languages, **sections)


def read_section(
    path: Path, parse: Callable[..., Any], overrides: Mapping[str, Any] | None = None
) -> Any:
    """Read, merge ``overrides`` into, and validate one file; ConfigError with every problem
    as a ``file: key: reason`` line."""
    data = read_yaml(path)
    if overrides:
        data = _merge(data, overrides)
    if not isinstance(data, Mapping):
        raise ConfigError([f"{path}: the top level must be a mapping"])
    try:
        return parse(data, context={"path": path})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(path, exc)) from None
    except ValueError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None


def _load_routing(directory: Path, sections: dict[str, Any]) -> list[str]:
    """queues.yaml, agents.yaml and routing.yaml validate together (they refer to each other)."""
    from routing.schema import RoutingConfigError, load_routing_config

    raw = {}
    problems = []
    for name in ("queues", "agents", "routing"):
        try:
            raw[name] = read_yaml(directory / f"{name}.yaml")
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        return problems
    try:
        sections["routing"] = load_routing_config(raw["queues"], raw["agents"], raw["routing"])
    except RoutingConfigError as exc:
        return [f"{directory / message}" for message in exc.messages]
    except ValueError as exc:
        return [f"{directory / 'routing.yaml'}: {exc}"]
    return []


def _cross_check(directory: Path, sections: Mapping[str, Any]) -> list[str]:
    """References between files: menu prompts exist, menu categories have routing rules."""
    problems = []
    prompt_names = set(sections["prompts"].prompts)
    for name, menu in sections["menus"].menus.items():
        if menu.prompt not in prompt_names:
            problems.append(
                f"{directory / 'menus.yaml'}: menus.{name}.prompt: "
                f"prompt {menu.prompt!r} is not defined in prompts.yaml"
            )
    request_types = set(sections["routing"].rules)
    for name, menu in sections["menus"].menus.items():
        for key, option in menu.options.items():
            if option.request is not None and option.request not in request_types:
                problems.append(
                    f"{directory / 'menus.yaml'}: menus.{name}.options.{key}.request: "
                    f"no routing rule for request type {option.request!r} in routing.yaml"
                )
    return problems
