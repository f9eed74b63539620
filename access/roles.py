"""Who may do what: the role × permission table and the scope rules, pure.

A permission alone says *what* (read work orders); the :class:`Scope` of a request says
*whose* (agent101's order, the billing desk's agents). Each cell of :data:`TABLE` says how far a
role reaches with a permission:

- ``OWN``: only things of the identity itself (``scope.agent == identity.user``): an agent's
  own state and own work orders;
- ``TEAM``: only things of the identity's team (``scope.team == identity.team``): a
  supervisor's agents and their orders;
- ``ANY``: whatever the scope, the whole collection included.

A permission missing from a role's row is refused whatever the scope. ``scope=None`` means the
whole collection (every agent, every order), which only ``ANY`` reaches: a supervisor lists
their team with ``Scope(team=...)``. A scope that does not say whose the thing is (no agent,
no team) is refused to ``OWN`` and ``TEAM``: the caller resolves the team first
(:func:`access.teams.team_of`), so a missing answer refuses rather than grants.

The README's ``## Access`` section shows the same table (:func:`table_markdown`; a test keeps
the two equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    QUALITY = "quality"
    OPS = "ops"
    AUDITOR = "auditor"


class Permission(StrEnum):
    PUBLIC = "public"  # /health, /metrics, /api/openapi.json: no token needed
    QUEUES_READ = "queues:read"
    AGENTS_READ = "agents:read"
    AGENT_STATE_CHANGE = "agents:state"
    DECISIONS_READ = "decisions:read"
    WORKORDERS_READ = "workorders:read"
    WORKORDERS_CHANGE = "workorders:change"
    RECORDINGS_READ = "recordings:read"
    RECORDINGS_HOLD = "recordings:hold"  # put a recording on legal hold, release it
    AUDIT_READ = "audit:read"
    CONFIG_RELOAD = "config:reload"
    TOKENS_MANAGE = "tokens:manage"


class Reach(StrEnum):
    """How far a role's permission reaches (see the module docstring)."""

    OWN = "own"
    TEAM = "team"
    ANY = "any"


@dataclass(frozen=True)
class Identity:
    """Who a request comes from: a token's (or a session's) user, role and team."""

    user: str
    role: Role
    team: str | None = None
    token_id: str = ""


@dataclass(frozen=True)
class Scope:
    """Whose thing a request touches: the agent it belongs to, the team of that agent."""

    agent: str | None = None
    team: str | None = None


class AccessDenied(Exception):
    """Refused (HTTP 403); ``reason`` names role, user, permission and the rule that refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


P = Permission
OWN, TEAM, ANY = Reach.OWN, Reach.TEAM, Reach.ANY

TABLE: Final[Mapping[Role, Mapping[Permission, Reach]]] = {
    Role.AGENT: {
        P.AGENTS_READ: OWN, P.AGENT_STATE_CHANGE: OWN,
        P.WORKORDERS_READ: OWN, P.WORKORDERS_CHANGE: OWN,
    },
    Role.SUPERVISOR: {
        P.QUEUES_READ: ANY, P.DECISIONS_READ: ANY,
        P.AGENTS_READ: TEAM, P.AGENT_STATE_CHANGE: TEAM,
        P.WORKORDERS_READ: TEAM, P.WORKORDERS_CHANGE: TEAM,
        P.RECORDINGS_READ: TEAM,
    },
    Role.QUALITY: {
        P.RECORDINGS_READ: ANY,
    },
    Role.OPS: {
        P.QUEUES_READ: ANY, P.DECISIONS_READ: ANY,
        P.AGENTS_READ: ANY, P.AGENT_STATE_CHANGE: ANY,
        P.WORKORDERS_READ: ANY, P.WORKORDERS_CHANGE: ANY,
        P.CONFIG_RELOAD: ANY, P.TOKENS_MANAGE: ANY,
        P.RECORDINGS_READ: ANY, P.RECORDINGS_HOLD: ANY,
    },
    Role.AUDITOR: {
        P.AUDIT_READ: ANY,
    },
}
"""Every role's row; ``PUBLIC`` is in no row because it needs no identity at all."""

_WHAT: Final[Mapping[Permission, tuple[str, str]]] = {
    # (verb, object) for the refusals: "agent agent101 may only read its own work orders".
    P.QUEUES_READ: ("read", "queues"),
    P.AGENTS_READ: ("read", "agent entries"),
    P.AGENT_STATE_CHANGE: ("change", "agent state"),
    P.DECISIONS_READ: ("read", "routing decisions"),
    P.WORKORDERS_READ: ("read", "work orders"),
    P.WORKORDERS_CHANGE: ("change", "work orders"),
    P.RECORDINGS_READ: ("read", "recordings"),
    P.RECORDINGS_HOLD: ("hold or release", "recordings"),
    P.AUDIT_READ: ("read", "the audit log"),
    P.CONFIG_RELOAD: ("reload", "the config"),
    P.TOKENS_MANAGE: ("manage", "tokens"),
}


def authorize(identity: Identity, permission: Permission, scope: Scope | None = None) -> None:
    """Pass, or raise :class:`AccessDenied` saying which rule refused."""
    if permission is Permission.PUBLIC:
        return
    who = f"{identity.role} {identity.user}"
    verb, what = _WHAT[permission]
    reach = TABLE[identity.role].get(permission)
    if reach is None:
        raise AccessDenied(
            f"{who} may not {verb} {what} ({permission}): not in the {identity.role} role's "
            f"permissions ({', '.join(TABLE[identity.role]) or 'none'})"
        )
    if reach is Reach.ANY:
        return
    if reach is Reach.OWN:
        if scope is None or scope.agent != identity.user:
            raise AccessDenied(
                f"{who} may only {verb} its own {what} ({permission}){_whose(scope)}"
            )
        return
    if identity.team is None:
        raise AccessDenied(f"{who} has no team, so may not {verb} any team's {what} ({permission})")
    if scope is None or scope.team != identity.team:
        raise AccessDenied(
            f"{who} may only {verb} the {what} of team {identity.team} ({permission})"
            f"{_whose(scope)}"
        )


def permits(identity: Identity, permission: Permission, scope: Scope | None = None) -> bool:
    """Whether :func:`authorize` would pass (to choose what to show, not to refuse)."""
    try:
        authorize(identity, permission, scope)
    except AccessDenied:
        return False
    return True


def _whose(scope: Scope | None) -> str:
    """Whose thing was asked for, as the refusal names it ("" for a whole collection)."""
    if scope is None or (scope.agent is None and scope.team is None):
        return ""
    parts = [f"agent {scope.agent}"] if scope.agent else []
    parts += [f"team {scope.team}"] if scope.team else []
    return ": this one is " + ", ".join(parts)


def table_markdown() -> str:
    """The table as the README shows it: a row per permission, a column per role."""
    roles = list(Role)
    lines = [
        "| permission | " + " | ".join(roles) + " |",
        "| --- | " + " | ".join("---" for _ in roles) + " |",
    ]
    for permission in Permission:
        if permission is Permission.PUBLIC:
            cells = ["yes" for _ in roles]  # no token needed at all
        else:
            cells = [_cell(TABLE[role].get(permission)) for role in roles]
        lines.append(f"| `{permission}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(reach: Reach | None) -> str:
    return {None: "-", Reach.OWN: "own", Reach.TEAM: "team", Reach.ANY: "all"}[reach]
