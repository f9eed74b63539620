"""Who looks at a screen, as the role table sees them: what they may see of the board."""

from __future__ import annotations

import functools

from access import AccessDenied, Identity, Permission, Scope, authorize, team_of
from routing import core

__all__ = ["agent_scope", "may"]


def agent_scope(config: core.RoutingConfig, agent_id: str | None) -> Scope:
    """An agent's scope (the agent and its team, from the config in force)."""
    return Scope(agent=agent_id, team=team_of(config, agent_id) if agent_id else None)


@functools.lru_cache(maxsize=8192)
def may(identity: Identity, permission: Permission, scope: Scope | None = None) -> bool:
    """Whether :func:`access.authorize` lets ``identity`` do this (for filtering). Kept: the
    role table is fixed, and each round asks it about every agent for every wallboard."""
    try:
        authorize(identity, permission, scope)
    except AccessDenied:
        return False
    return True
