"""Who may do what: roles, permissions, scopes (the names of issue 10's access contract).

A minimal stand-in so that the API runs and is tested on this branch; the access package
proper (tokens, teams in agents.yaml) replaces this file when the branches meet. It keeps to
the contract's names exactly and holds one role table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "AccessDenied",
    "Authenticator",
    "Identity",
    "Permission",
    "Role",
    "Scope",
    "Unauthenticated",
    "authorize",
    "team_of",
]


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    QUALITY = "quality"
    OPS = "ops"
    AUDITOR = "auditor"


class Permission(StrEnum):
    PUBLIC = "public"
    QUEUES_READ = "queues:read"
    AGENTS_READ = "agents:read"
    AGENT_STATE_CHANGE = "agents:state"
    DECISIONS_READ = "decisions:read"
    WORKORDERS_READ = "workorders:read"
    WORKORDERS_CHANGE = "workorders:change"
    RECORDINGS_READ = "recordings:read"
    AUDIT_READ = "audit:read"
    CONFIG_RELOAD = "config:reload"
    TOKENS_MANAGE = "tokens:manage"


@dataclass(frozen=True)
class Identity:
    user: str
    role: Role
    team: str | None = None
    token_id: str = ""


@dataclass(frozen=True)
class Scope:
    """Whose thing a request touches; ``None`` in :func:`authorize` is the whole collection."""

    agent: str | None = None
    team: str | None = None


class Unauthenticated(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AccessDenied(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Authenticator(Protocol):
    async def authenticate(self, authorization: str | None, now: float) -> Identity: ...


# How far each role reaches with each permission: everything, its team's, its own.
_ALL, _TEAM, _OWN = "all", "team", "own"
_REACH: dict[Role, dict[Permission, str]] = {
    Role.AGENT: {
        Permission.QUEUES_READ: _ALL,
        Permission.AGENTS_READ: _OWN,
        Permission.AGENT_STATE_CHANGE: _OWN,
        Permission.WORKORDERS_READ: _OWN,
        Permission.WORKORDERS_CHANGE: _OWN,
    },
    Role.SUPERVISOR: {
        Permission.QUEUES_READ: _ALL,
        Permission.AGENTS_READ: _TEAM,
        Permission.AGENT_STATE_CHANGE: _TEAM,
        Permission.DECISIONS_READ: _ALL,
        Permission.WORKORDERS_READ: _TEAM,
        Permission.WORKORDERS_CHANGE: _TEAM,
    },
    Role.QUALITY: {Permission.RECORDINGS_READ: _ALL},
    Role.OPS: {
        Permission.QUEUES_READ: _ALL,
        Permission.AGENTS_READ: _ALL,
        Permission.AGENT_STATE_CHANGE: _ALL,
        Permission.DECISIONS_READ: _ALL,
        Permission.WORKORDERS_READ: _ALL,
        Permission.WORKORDERS_CHANGE: _ALL,
        Permission.CONFIG_RELOAD: _ALL,
        Permission.TOKENS_MANAGE: _ALL,
    },
    Role.AUDITOR: {Permission.AUDIT_READ: _ALL},
}


def authorize(identity: Identity, permission: Permission, scope: Scope | None = None) -> None:
    """Raise :class:`AccessDenied` unless ``identity`` may use ``permission`` on ``scope``."""
    if permission is Permission.PUBLIC:
        return
    reach = _REACH.get(identity.role, {}).get(permission)
    if reach is None:
        raise AccessDenied(f"role {identity.role} lacks {permission}")
    if reach == _ALL:
        return
    if scope is None:
        raise AccessDenied(f"role {identity.role} has {permission} only for its {reach}")
    if scope.agent is not None and scope.agent == identity.user:
        return
    if reach == _TEAM and identity.team is not None and scope.team == identity.team:
        return
    whose = f"agent {scope.agent}" if scope.agent else "this object"
    raise AccessDenied(f"{permission} on {whose}: role {identity.role} reaches its {reach} only")


def team_of(routing_config: Any, agent_id: str) -> str | None:
    """The team of ``agent_id`` in agents.yaml, ``None`` when it has none or is unknown."""
    profile = routing_config.agents.get(agent_id)
    team = getattr(profile, "team", None)
    return team if isinstance(team, str) else None
