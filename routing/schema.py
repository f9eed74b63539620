"""Schema of ``config/queues.yaml``, ``config/agents.yaml`` and ``config/routing.yaml``.

Pydantic models validate what ops write (unknown keys refused, every error naming its key
path); :func:`load_routing_config` validates the three files together (a rule's queue must
exist, an overflow must point at a queue or ``operator``) and converts them into the plain
frozen dataclasses of :mod:`routing.core`. ``ivr/config.py`` embeds :class:`QueuesFile`,
:class:`AgentsFile` and :class:`RoutingFile` as sections of the one config schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from callerid import PRESENTABLE_NUMBER_PATTERN, presentable_name
from routing import core
from routing.skills import SkillExpressionError, parse, valid_skill_name

M = TypeVar("M", bound=BaseModel)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REQUEST_TYPES = ("inquiry", "change", "fault", "complaint", "other", "operator")
"""The request types (categories) of the shipped config; ``other`` is the fallback rule. A rule
may name any category: ``ivr.categories`` checks them against intents.yaml and menus.yaml."""
URGENCIES = ("urgent", "important", "normal")
"""Urgency names of work orders (``workorders/model.py``), the keys of ``urgency_boost``."""

_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")
_ENDPOINT = re.compile(r"(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@-]+\Z")
_INTERVAL = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)\Z")


def _skill_expression(text: str) -> str:
    try:
        parse(text)
    except SkillExpressionError as exc:
        raise ValueError(str(exc)) from None
    return text


def _urgency_boost(value: dict[str, int] | None) -> dict[str, int] | None:
    unknown = sorted(set(value or {}) - set(URGENCIES))
    if unknown:
        raise ValueError(f"unknown urgencies {unknown}; one of {', '.join(URGENCIES)}")
    return value


def _name(text: str) -> str:
    if not _NAME.match(text):
        raise ValueError(f"{text!r} must be lowercase letters, digits, '-' or '_'")
    return text


SkillExpression = Annotated[str, AfterValidator(_skill_expression)]
Name = Annotated[str, AfterValidator(_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceLevelModel(_Strict):
    """``target_pct`` % of calls answered within ``within_s`` seconds; callers who hang up
    before ``exclude_abandons_under_s`` seconds are not counted at all."""

    target_pct: float = Field(80.0, gt=0, le=100)
    within_s: float = Field(20.0, gt=0)
    exclude_abandons_under_s: float = Field(0.0, ge=0)


class AnnouncementsModel(_Strict):
    position: bool = True
    estimated_wait: bool = True
    period_s: float = Field(60.0, gt=0)


class CallbackNumberModel(_Strict):
    """The number a caller may leave: ``min_digits``-``max_digits`` digits, starting with one
    of ``prefixes`` (any when empty); ``retries`` rounds to confirm or enter it, each key
    awaited ``timeout_s`` seconds. A caller ID outside these rules is not offered: the caller
    is asked to enter a number instead."""

    min_digits: int = Field(7, ge=2, le=32)
    max_digits: int = Field(15, ge=2, le=32)
    prefixes: list[Annotated[str, Field(pattern=r"^[0-9]{1,31}$")]] = []
    retries: int = Field(3, ge=1, le=5)
    timeout_s: float = Field(6.0, gt=0, le=30)

    @model_validator(mode="after")
    def _lengths(self) -> CallbackNumberModel:
        if self.min_digits > self.max_digits:
            raise ValueError(
                f"min_digits ({self.min_digits}) is more than max_digits ({self.max_digits})"
            )
        for prefix in self.prefixes:
            if len(prefix) >= self.max_digits:
                raise ValueError(
                    f"prefixes: {prefix!r} leaves no digit to enter within max_digits "
                    f"({self.max_digits})"
                )
        return self


class CallbackCallerIdModel(_Strict):
    """Who the customer's phone shows calling when a callback rings it: ``number`` (the
    hotline's own number, digits with an optional leading ``+``) and an optional ``name``.
    The name travels inside Dial's ``f(...)`` option to ``ast_callerid_parse``, so quotes,
    angle brackets, parentheses, brackets, commas and control characters are refused here
    rather than escaped into something the customer's phone shows differently."""

    number: str = Field(pattern=f"^{PRESENTABLE_NUMBER_PATTERN}$")
    name: str = Field("", max_length=40)

    @field_validator("name")
    @classmethod
    def _displayable(cls, value: str) -> str:
        bad = sorted({c for c in value if not presentable_name(c)})
        if bad:
            raise ValueError(f"{value!r} may not contain {''.join(bad)!r} "
                             "(quotes, <>, (), [], ',', '|', ';' or control characters)")
        if value != value.strip():
            raise ValueError(f"{value!r} has leading or trailing spaces")
        return value


class CallbackModel(_Strict):
    """Virtual hold: ``key`` while waiting leaves a callback number and keeps the place;
    ``attempts`` tries in all, ``retry_delay_s`` apart, each ringing the customer
    ``ring_timeout_s`` seconds; ``number``: which numbers the caller may leave;
    ``caller_id``: what the customer's phone shows (default: the number the caller dialled,
    when Asterisk knows it; see README "Callbacks")."""

    enabled: bool = True
    key: str = Field("1", pattern=r"^[0-9*#]$")
    attempts: int = Field(3, ge=1, le=10)
    retry_delay_s: float = Field(120.0, ge=0)
    ring_timeout_s: float = Field(30.0, gt=0)
    number: CallbackNumberModel = CallbackNumberModel()
    caller_id: CallbackCallerIdModel | None = None


class QueueModel(_Strict):
    skills: SkillExpression
    service_level: ServiceLevelModel = ServiceLevelModel()
    max_wait_s: float | None = Field(None, gt=0)
    overflow: str | None = None
    max_length: int | None = Field(None, ge=1)
    ring_timeout_s: float = Field(15.0, gt=0)
    wrapup_s: float = Field(10.0, ge=0)
    announcements: AnnouncementsModel = AnnouncementsModel()
    moh: str = "default"
    aht_s: float = Field(180.0, gt=0, description="handle time assumed before any is measured")
    callback: CallbackModel = CallbackModel()


class QueuesFile(_Strict):
    queues: dict[Name, QueueModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _overflows_exist(self) -> QueuesFile:
        for name, queue in self.queues.items():
            target = queue.overflow
            if target is None or target == core.OPERATOR:
                continue
            if target == name:
                raise ValueError(f"queues.{name}.overflow: a queue cannot overflow into itself")
            if target not in self.queues:
                raise ValueError(
                    f"queues.{name}.overflow: unknown queue {target!r} "
                    f"(a queue name or {core.OPERATOR!r})"
                )
        return self


class AgentModel(_Strict):
    name: str = Field(min_length=1)
    endpoint: str
    skills: dict[str, Annotated[int, Field(ge=1, le=5)]] = Field(min_length=1)
    languages: list[str] = []
    schedule: dict[str, list[str]] = {}
    team: Name | None = None  # the supervisors' unit (access/): see README "Access"

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not _ENDPOINT.match(value):
            raise ValueError(f"{value!r} is not a softphone endpoint like PJSIP/agent101")
        return value

    @field_validator("skills")
    @classmethod
    def _skill_names(cls, value: dict[str, int]) -> dict[str, int]:
        for skill in value:
            if not valid_skill_name(skill):
                raise ValueError(f"skill {skill!r} must be lowercase letters, digits, '-' or '_'")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, intervals in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; one of {', '.join(WEEKDAYS)}")
            for interval in intervals:
                m = _INTERVAL.match(interval)
                if not m or _minutes(interval)[0] >= _minutes(interval)[1]:
                    raise ValueError(f"{day}: {interval!r} is not an interval like 08:00-17:00")
        return value


def _minutes(interval: str) -> tuple[int, int]:
    start, end = interval.split("-")
    h1, m1 = start.split(":")
    h2, m2 = end.split(":")
    return int(h1) * 60 + int(m1), min(int(h2) * 60 + int(m2), 24 * 60)


def _zone(name: str | None) -> str | None:
    if name is not None:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {name!r}; an IANA name like Asia/Seoul or UTC"
            ) from None
    return name


class AgentsFile(_Strict):
    """``timezone``: the IANA zone the schedules are written in (default: the machine's)."""

    timezone: Annotated[str | None, AfterValidator(_zone)] = None
    agents: dict[Name, AgentModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _endpoints_unique(self) -> AgentsFile:
        seen: dict[str, str] = {}
        for agent_id, agent in self.agents.items():
            if agent.endpoint in seen:
                raise ValueError(
                    f"agents.{agent_id}.endpoint: {agent.endpoint} is also "
                    f"agent {seen[agent.endpoint]}'s"
                )
            seen[agent.endpoint] = agent_id
        return self


class StepModel(_Strict):
    """A skill expression and how long (s) it stays the only one in force."""

    skills: SkillExpression
    timeout_s: float | None = Field(None, gt=0)


class RuleModel(_Strict):
    queue: str
    priority: int = 0
    steps: list[StepModel] | None = Field(
        None, min_length=1, description="default: the queue's skills, one step"
    )
    urgency_boost: Annotated[dict[str, int] | None, AfterValidator(_urgency_boost)] = None
    vip_boost: int | None = None
    sticky_days: float | None = Field(None, gt=0)

    @field_validator("steps")
    @classmethod
    def _timeouts(cls, steps: list[StepModel] | None) -> list[StepModel] | None:
        for i, step in enumerate((steps or [])[:-1]):
            if step.timeout_s is None:
                raise ValueError(f"step {i} needs timeout_s: a later step follows it")
        return steps


class RoutingFile(_Strict):
    pause_reasons: list[Name] = list(core.DEFAULT_PAUSE_REASONS)
    urgency_boost: Annotated[dict[str, int], AfterValidator(_urgency_boost)] = {
        "urgent": 20,
        "important": 10,
    }
    vip_boost: int = 5
    rules: dict[str, RuleModel]

    @field_validator("pause_reasons")
    @classmethod
    def _system_reasons(cls, value: list[str]) -> list[str]:
        missing = core.SYSTEM_PAUSE_REASONS - set(value)
        if missing:
            raise ValueError(f"must include the reasons the router sets itself: {sorted(missing)}")
        return value

    @field_validator("rules")
    @classmethod
    def _request_types(cls, value: dict[str, RuleModel]) -> dict[str, RuleModel]:
        bad = sorted(name for name in value if not _NAME.match(name))
        if bad:
            raise ValueError(
                f"request types {bad} must be lowercase letters, digits, '-' or '_' "
                "(the category names of intents.yaml)"
            )
        if "other" not in value:
            raise ValueError("a rule for 'other' is required: it routes every unmatched call")
        return value


class RoutingConfigError(ValueError):
    """Invalid routing config; ``messages`` are ``file: key.path: reason`` lines."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("\n".join(messages))


def _errors(filename: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        # Whole-file checks put the key path in the message themselves.
        out.append(f"{filename}: {path}: {msg}" if path else f"{filename}: {msg}")
    return out


def validate_files(
    queues: Mapping[str, Any], agents: Mapping[str, Any], routing: Mapping[str, Any]
) -> tuple[QueuesFile, AgentsFile, RoutingFile]:
    """Validate the three files and their cross references; raise RoutingConfigError."""
    messages: list[str] = []

    def parsed(filename: str, model: type[M], data: Mapping[str, Any]) -> M | None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            messages.extend(_errors(filename, exc))
            return None

    q = parsed("queues.yaml", QueuesFile, queues)
    a = parsed("agents.yaml", AgentsFile, agents)
    r = parsed("routing.yaml", RoutingFile, routing)
    if q is not None and r is not None:
        for request_type, rule in r.rules.items():
            if rule.queue != core.OPERATOR and rule.queue not in q.queues:
                messages.append(
                    f"routing.yaml: rules.{request_type}.queue: unknown queue {rule.queue!r}"
                )
            if rule.queue == core.OPERATOR and rule.steps:
                messages.append(
                    f"routing.yaml: rules.{request_type}.steps: the operator takes no steps"
                )
    if messages or q is None or a is None or r is None:
        raise RoutingConfigError(messages)
    return q, a, r


def to_core(queues: QueuesFile, agents: AgentsFile, routing: RoutingFile) -> core.RoutingConfig:
    """Convert validated models into the core's dataclasses (expressions parsed here)."""
    core_queues = {
        name: core.QueueConfig(
            name=name,
            skills=parse(q.skills),
            service_level=core.ServiceLevelTarget(
                target=q.service_level.target_pct / 100.0,
                threshold_s=q.service_level.within_s,
                short_abandon_s=q.service_level.exclude_abandons_under_s,
            ),
            max_wait_s=q.max_wait_s,
            overflow=q.overflow,
            max_length=q.max_length,
            ring_timeout_s=q.ring_timeout_s,
            wrapup_s=q.wrapup_s,
            announcements=core.Announcements(
                q.announcements.position, q.announcements.estimated_wait, q.announcements.period_s
            ),
            moh=q.moh,
            aht_s=q.aht_s,
            callback=core.CallbackPolicy(
                q.callback.enabled, q.callback.key, q.callback.attempts,
                q.callback.retry_delay_s, q.callback.ring_timeout_s,
                core.CallbackNumber(
                    q.callback.number.min_digits, q.callback.number.max_digits,
                    tuple(q.callback.number.prefixes), q.callback.number.retries,
                    q.callback.number.timeout_s,
                ),
                core.CallbackCallerId(q.callback.caller_id.number, q.callback.caller_id.name)
                if q.callback.caller_id is not None else None,
            ),
        )
        for name, q in queues.queues.items()
    }
    rules = {}
    for request_type, r in routing.rules.items():
        if r.queue == core.OPERATOR:
            # The shell hands these straight to the operator; the steps are never used.
            steps: tuple[core.Step, ...] = (core.Step(parse("operator")),)
        elif r.steps:
            steps = tuple(core.Step(parse(s.skills), s.timeout_s) for s in r.steps)
        else:
            steps = (core.Step(core_queues[r.queue].skills),)
        rules[request_type] = core.Rule(
            request_type=request_type,
            queue=r.queue,
            steps=steps,
            priority=r.priority,
            urgency_boost=dict(
                routing.urgency_boost if r.urgency_boost is None else r.urgency_boost
            ),
            vip_boost=routing.vip_boost if r.vip_boost is None else r.vip_boost,
            sticky_days=r.sticky_days,
        )
    core_agents = {
        agent_id: core.AgentProfile(
            agent_id=agent_id,
            name=a.name,
            endpoint=a.endpoint,
            skills=dict(a.skills),
            languages=frozenset(a.languages),
            schedule={
                WEEKDAYS.index(day): tuple(_minutes(i) for i in intervals)
                for day, intervals in a.schedule.items()
            },
            team=a.team,
        )
        for agent_id, a in agents.agents.items()
    }
    return core.RoutingConfig(
        queues=core_queues,
        rules=rules,
        agents=core_agents,
        pause_reasons=frozenset(routing.pause_reasons),
        timezone=ZoneInfo(agents.timezone) if agents.timezone else None,
    )


def load_routing_config(
    queues: Mapping[str, Any], agents: Mapping[str, Any], routing: Mapping[str, Any]
) -> core.RoutingConfig:
    """Validate the parsed YAML of the three files and build the core's config.

    Raises :class:`RoutingConfigError` whose messages name file, key path and reason.
    """
    return to_core(*validate_files(queues, agents, routing))
