"""The one schema of every file in ``config/``: loaded once, validated whole, reloaded whole.

Each file is one section, validated by the model of the package that owns it (menus here,
intents in ``ivr.speech``, queues/agents/rules in ``routing``, work orders in ``workorders``).
Every error names the file, the key path and the reason, so a typo shows up at start (or in
``ivr check-config``), not at 3 a.m. on a caller's line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ivr.categories import category_problems
from ivr.configfile import ConfigError, SectionParser, read_section, read_yaml
from ivr.languages import Language, load_languages
from ivr.menu import MenusConfig
from recordings.schema import RecordingsConfig

if TYPE_CHECKING:
    from ivr.prompts import PromptsConfig
    from ivr.speech.schema import IntentsConfig
    from routing.core import RoutingConfig
    from webhooks.schema import WebhooksConfig
    from workorders.schema import WorkOrdersConfig

__all__ = [
    "DEFAULT_CONFIG_DIR",
    "ENV_PREFIX",
    "AGIListen",
    "ARISettings",
    "AsteriskSettings",
    "AudioSocketListen",
    "ClusterSettings",
    "ConfigError",
    "HTTPListen",
    "HotlineConfig",
    "KeySettings",
    "Listen",
    "RedisSettings",
    "SentinelSettings",
    "ServiceConfig",
    "TLSFiles",
    "load_config",
    "read_section",
    "read_yaml",
]

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
ENV_PREFIX = "HOTLINE__"

_SectionT = TypeVar("_SectionT")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Listen(_Section):
    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)


class AGIListen(Listen):
    """``agi``: the FastAGI server. ``max_connections``: one per call in the IVR, beyond it
    a call is answered FAILURE (the dialplan's operator fallback); ``header_timeout_s``: a
    peer that has not sent its whole header by then is dropped (slow-loris)."""

    command_timeout_s: float = Field(60.0, gt=0)
    max_connections: int = Field(1024, ge=1, le=100_000)
    header_timeout_s: float = Field(10.0, gt=0, le=300)


class AudioSocketListen(Listen):
    """``audiosocket``: the speech server. ``max_connections``: streams at once (legitimate
    ones are bounded by the recognizer slots, ``speech.workers``)."""

    max_connections: int = Field(256, ge=1, le=100_000)


class TLSFiles(_Section):
    """A certificate chain and its private key, PEM files (``http.tls``)."""

    cert_file: str
    key_file: str


class HTTPListen(Listen):
    """``http``: where the API listens. Off loopback it must speak TLS (``tls``), or say that
    a TLS-terminating proxy on the same host or network does (``allow_plaintext: true``):
    the API carries bearer tokens and callers' personal data."""

    tls: TLSFiles | None = None
    allow_plaintext: bool = False
    # Hostile clients (README "Hostile input"): connections at once (browsers' SSE streams
    # included), the deadline for a request's headers, and how long an idle keep-alive
    # connection is kept.
    max_connections: int = Field(512, ge=1, le=100_000)
    header_timeout_s: float = Field(10.0, gt=0, le=300)
    idle_timeout_s: float = Field(60.0, gt=0, le=3600)


class ARISettings(_Section):
    url: str = "http://127.0.0.1:8088"
    user: str = "hotline"
    app: str = "hotline"
    password_file: str | None = None


class SentinelSettings(_Section):
    """``redis.sentinel``: reach the master through Redis Sentinel, which promotes a replica
    when the master dies; the client asks the sentinels for the master on every reconnect.
    Passwords are never in the file: ``password_env`` names the variable holding the data
    nodes' password (``requirepass``), ``sentinel_password_env`` the sentinels' own."""

    master: str = Field(min_length=1)
    hosts: list[str] = Field(min_length=1)
    db: int = Field(0, ge=0)
    password_env: str | None = None
    sentinel_password_env: str | None = None

    @field_validator("hosts")
    @classmethod
    def _host_and_port(cls, hosts: list[str]) -> list[str]:
        return _addresses_valid(hosts)

    def addresses(self) -> list[tuple[str, int]]:
        """The sentinels as (host, port), in the order given."""
        return [_address(host) for host in self.hosts]

    def passwords(self, environ: Mapping[str, str] = os.environ) -> tuple[str | None, str | None]:
        """(data nodes' password, sentinels' password) from the named variables; None when a
        name is not given or its variable is unset or empty."""
        return (
            environ.get(self.password_env or "") or None,
            environ.get(self.sentinel_password_env or "") or None,
        )


def _addresses_valid(entries: list[str]) -> list[str]:
    """``entries`` unchanged if each is ``host:port``; ValueError naming the first that is not."""
    for entry in entries:
        _address(entry)
    return entries


def _address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port); ValueError naming the entry."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"{text!r}: write host:port, e.g. 10.0.0.1:26379")
    return host, int(port)


class ClusterSettings(_Section):
    """``redis.cluster``: a Redis Cluster, reached through any of its ``nodes`` (the client
    learns the others and which node serves which slot from the first that answers).
    ``password_env`` names the variable holding the nodes' password (``requirepass``).
    ``ivr serve`` relays the slots' event outboxes to the events stream every
    ``relay_interval_s``; entries a dead instance's relay left unacknowledged are taken over
    after ``relay_claim_s`` (``events.relay``)."""

    nodes: list[str] = Field(min_length=1)
    password_env: str | None = None
    relay_interval_s: float = Field(0.2, gt=0, le=60)
    relay_claim_s: float = Field(30.0, gt=0, le=3600)

    @field_validator("nodes")
    @classmethod
    def _host_and_port(cls, nodes: list[str]) -> list[str]:
        return _addresses_valid(nodes)

    def addresses(self) -> list[tuple[str, int]]:
        """The nodes as (host, port), in the order given."""
        return [_address(node) for node in self.nodes]

    def password(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The nodes' password from the named variable; None when unnamed, unset or empty."""
        return environ.get(self.password_env or "") or None


class AMISettings(_Section):
    """AMI (asterisk/manager.conf, loopback only): muting a running recording
    (``MixMonitorMute``). The secret comes from HOTLINE_AMI_SECRET or ``secret_file``."""

    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    user: str = "hotline"
    secret_file: str | None = None


class RedisSettings(_Section):
    """``redis``: one Redis at ``url``, a Sentinel-watched master (``sentinel``), or a Redis
    Cluster (``cluster``); exactly one of the three."""

    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "hotline:"
    sentinel: SentinelSettings | None = None
    cluster: ClusterSettings | None = None

    @model_validator(mode="after")
    def _one_form(self) -> RedisSettings:
        url = "url" in self.model_fields_set
        if self.sentinel is not None and url:
            raise ValueError("give url or sentinel, not both (the sentinels name the master)")
        if self.cluster is not None and (url or self.sentinel is not None):
            raise ValueError("give cluster alone, not with url or sentinel (the cluster's "
                             "nodes name every Redis)")
        return self

    @property
    def is_cluster(self) -> bool:
        """True for a Redis Cluster: atomic steps then stay within one hash slot and write
        their events to the slot's outbox (``events.events_key_for``)."""
        return self.cluster is not None

    def describe(self) -> str:
        """Where the service's Redis is, for messages (no password)."""
        if self.cluster is not None:
            return f"cluster via {', '.join(self.cluster.nodes)}"
        if self.sentinel is None:
            return self.url
        return f"sentinel master {self.sentinel.master!r} via {', '.join(self.sentinel.hosts)}"


class AsteriskSettings(_Section):
    root: str = ""
    sounds_dir: str = "/var/lib/hotline/sounds"

    @property
    def host_sounds_dir(self) -> Path:
        """Where the service writes prompts so that Asterisk finds them at ``sounds_dir``."""
        if not self.root:
            return Path(self.sounds_dir)
        return Path(self.root) / self.sounds_dir.lstrip("/")


class AuditSettings(_Section):
    # Where the audit log's file copy and spool live; empty: "<spool_dir>/audit".
    dir: str = ""


class KeySettings(_Section):
    """Where the master keys are (``privacy.keys``); ``HOTLINE_MASTER_KEY`` overrides it."""

    master_key_file: str | None = None


class ServiceConfig(_Section):
    """``config/service.yaml``: addresses, credentials' locations, directories."""

    agi: AGIListen = AGIListen(port=4573)
    audiosocket: AudioSocketListen = AudioSocketListen(port=9092)
    http: HTTPListen = HTTPListen(port=8090)
    ari: ARISettings = ARISettings()
    ami: AMISettings = AMISettings()
    redis: RedisSettings = RedisSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    keys: KeySettings = KeySettings()
    spool_dir: str = "/var/lib/hotline/spool"
    audit: AuditSettings = AuditSettings()
    instance: str = "hotline-1"
    # A reactor held this long gets its stack logged (hotline.stalls); 0: no watchdog.
    stall_warning_ms: int = Field(250, ge=0, le=60_000)

    def ari_password(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """From HOTLINE_ARI_PASSWORD, else the password file; never from the repository."""
        return _secret(environ, "HOTLINE_ARI_PASSWORD", self.ari.password_file)


    def ami_secret(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """From HOTLINE_AMI_SECRET, else the secret file; never from the repository."""
        return _secret(environ, "HOTLINE_AMI_SECRET", self.ami.secret_file)


def _secret(environ: Mapping[str, str], variable: str, path: str | None) -> str | None:
    if environ.get(variable):
        return environ[variable]
    if path and Path(path).is_file():
        return Path(path).read_text().strip()
    return None


@dataclass(frozen=True)
class HotlineConfig:
    """Every section, validated. Attribute names are the section names."""

    directory: Path
    service: ServiceConfig
    prompts: PromptsConfig
    menus: MenusConfig
    intents: IntentsConfig
    workorders: WorkOrdersConfig
    routing: RoutingConfig  # built from queues.yaml, agents.yaml and routing.yaml
    # Every language, the default one included.
    languages: dict[str, Language] = field(default_factory=dict)
    recordings: RecordingsConfig = field(default_factory=RecordingsConfig)
    # webhooks.yaml, optional (None: no file, no webhooks).
    webhooks: WebhooksConfig | None = None


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


def load_config(
    directory: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> HotlineConfig:
    """Load and validate every file; raise :class:`ConfigError` listing every problem found."""
    # Imported here so that each package owns its schema and a missing optional engine does not
    # break ``import ivr.config``.
    from ivr.prompts import PromptsConfig
    from ivr.speech.schema import IntentsConfig
    from webhooks.schema import WebhooksConfig
    from workorders.schema import WorkOrdersConfig

    environ = os.environ if environ is None else environ
    folder = Path(directory or environ.get("HOTLINE_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
    problems: list[str] = []

    def section(
        file: str, parse: SectionParser[_SectionT], overrides: Mapping[str, Any] | None = None
    ) -> _SectionT | None:
        try:
            return read_section(folder / file, parse, overrides)
        except ConfigError as exc:
            problems.extend(exc.problems)
            return None

    service = section("service.yaml", ServiceConfig.model_validate, _env_overrides(environ))
    prompts = section("prompts.yaml", PromptsConfig.model_validate)
    menus = section("menus.yaml", MenusConfig.model_validate)
    intents = section("intents.yaml", IntentsConfig.model_validate)
    workorders = section("workorders.yaml", WorkOrdersConfig.model_validate)
    recordings = (section("recordings.yaml", RecordingsConfig.model_validate)
                  if (folder / "recordings.yaml").exists() else RecordingsConfig())
    webhooks = None
    if (folder / "webhooks.yaml").exists():  # optional: older config directories have none
        webhooks = section("webhooks.yaml", WebhooksConfig.model_validate)
    try:
        routing = _load_routing(folder)
    except ConfigError as exc:
        problems.extend(exc.problems)
        routing = None
    languages: dict[str, Language] = {}
    if menus is not None and intents is not None and prompts is not None:
        languages, language_problems = load_languages(folder, menus, intents, prompts)
        problems.extend(language_problems)
    if (
        problems or service is None or prompts is None or menus is None or intents is None
        or workorders is None or routing is None or recordings is None
    ):
        raise ConfigError(problems)
    problems = _cross_check(folder, prompts, menus, routing)
    problems += _capture_problems(folder, prompts, menus, routing, recordings)
    problems += category_problems(folder, languages, menus, routing)
    if problems:
        raise ConfigError(problems)
    return HotlineConfig(
        directory=folder, service=service, prompts=prompts, menus=menus, intents=intents,
        workorders=workorders, routing=routing, languages=languages, recordings=recordings,
        webhooks=webhooks,
    )


def _load_routing(directory: Path) -> RoutingConfig:
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
        raise ConfigError(problems)
    try:
        return load_routing_config(raw["queues"], raw["agents"], raw["routing"])
    except RoutingConfigError as exc:
        raise ConfigError([f"{directory / message}" for message in exc.messages]) from None
    except ValueError as exc:
        raise ConfigError([f"{directory / 'routing.yaml'}: {exc}"]) from None


def _cross_check(
    directory: Path, prompts: PromptsConfig, menus: MenusConfig, routing: RoutingConfig
) -> list[str]:
    """References between files: menu prompts exist, menu categories have routing rules."""
    problems = []
    prompt_names = set(prompts.prompts)
    for name, menu in menus.menus.items():
        if menu.prompt not in prompt_names:
            problems.append(
                f"{directory / 'menus.yaml'}: menus.{name}.prompt: "
                f"prompt {menu.prompt!r} is not defined in prompts.yaml"
            )
    request_types = set(routing.rules)
    for name, menu in menus.menus.items():
        for key, option in menu.options.items():
            if option.request is not None and option.request not in request_types:
                problems.append(
                    f"{directory / 'menus.yaml'}: menus.{name}.options.{key}.request: "
                    f"no routing rule for request type {option.request!r} in routing.yaml"
                )
    return problems


def _capture_problems(
    directory: Path, prompts: PromptsConfig, menus: MenusConfig, routing: RoutingConfig,
    recordings: RecordingsConfig,
) -> list[str]:
    """recordings.yaml capture: its queues exist, its prompts and after-agent menus too."""
    where = f"{directory / 'recordings.yaml'}: capture"
    capture = recordings.capture
    problems = [f"{where}.queues.{queue}: no such queue in queues.yaml"
                for queue in capture.queues if queue not in routing.queues]
    for name, policy in [("default", capture.default),
                         *((f"queues.{q}", p) for q, p in capture.queues.items())]:
        if policy.record and policy.consent_prompt not in prompts.prompts:
            problems.append(f"{where}.{name}.consent_prompt: prompt "
                            f"{policy.consent_prompt!r} is not defined in prompts.yaml")
        menu = policy.after_agent_menu
        if menu is not None and menu not in menus.menus:
            problems.append(f"{where}.{name}.after_agent_menu: menu {menu!r} is not "
                            "defined in menus.yaml")
    return problems
