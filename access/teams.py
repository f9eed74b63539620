"""Teams as configured (``agents.yaml``: an optional ``team`` per agent), and who may hold a
token: an agent token's user is a configured agent, a supervisor token names a configured team.
"""

from __future__ import annotations

from access.roles import Role
from routing.core import RoutingConfig


def team_of(routing_config: RoutingConfig, agent_id: str) -> str | None:
    """The team of ``agent_id``; ``None`` for an agent without a team or not configured."""
    profile = routing_config.agents.get(agent_id)
    return profile.team if profile is not None else None


def teams(routing_config: RoutingConfig) -> frozenset[str]:
    """Every team some configured agent belongs to."""
    return frozenset(p.team for p in routing_config.agents.values() if p.team is not None)


def token_subject_problem(
    routing_config: RoutingConfig, user: str, role: Role, team: str | None
) -> str | None:
    """What is wrong with a token for ``user`` as ``role`` of ``team`` under this config;
    ``None`` if nothing. (The shape of user, role and team is the store's to check.)"""
    if role is Role.AGENT and user not in routing_config.agents:
        known = ", ".join(sorted(routing_config.agents))
        return f"an agent token's user must be an agent of agents.yaml ({known}), not {user!r}"
    if role is Role.SUPERVISOR:
        known = ", ".join(sorted(teams(routing_config))) or "none configured"
        if team is None:
            return f"a supervisor token needs --team (a team of agents.yaml: {known})"
        if team not in teams(routing_config):
            return f"unknown team {team!r}; the teams of agents.yaml: {known}"
    return None
