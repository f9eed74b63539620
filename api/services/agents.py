"""Agents' live state: the list (as far as the asker may see) and state changes.

Scopes: an agent sees and changes its own entry, a supervisor its team's, ops everyone's
(the role table is :mod:`access`'s). A change made for another agent (a supervisor pausing
someone of the team) is recorded in the audit trail as ``agent.state``.
"""

from __future__ import annotations

from typing import Any

from access import Permission, Scope
from api.errors import AgentActionRefused, BadRequest, UnknownAgent
from api.routes import Actor
from api.seams import AuditTrail, RouterView, Teams


class AgentService:
    def __init__(self, router: RouterView, audit: AuditTrail, teams: Teams) -> None:
        self.router = router
        self.audit = audit
        self.teams = teams

    def scope(self, agent_id: str) -> Scope:
        return Scope(agent=agent_id, team=self.teams(agent_id))

    async def agents(self, actor: Actor) -> dict[str, dict[str, str]]:
        """Every agent's live state the asker may see: all, its team's, or its own."""
        whole = actor.may(Permission.AGENTS_READ)
        if not whole:
            own = actor.identity
            assert own is not None  # authenticated route
            # refuses a role that may read no agent at all (403 with the reason)
            actor.authorize(Permission.AGENTS_READ, Scope(agent=own.user, team=own.team))
        agents = await self.router.agents()
        if whole:
            return agents
        return {
            agent_id: row for agent_id, row in agents.items()
            if actor.may(Permission.AGENTS_READ, self.scope(agent_id))
        }

    async def act(self, actor: Actor, agent_id: str, action: str, reason: str) -> dict[str, Any]:
        """login, logout, pause (with a configured reason), resume; 409 when the agent's state
        refuses it (e.g. resume while not paused)."""
        identity = actor.authorize(Permission.AGENT_STATE_CHANGE, self.scope(agent_id))
        cfg = self.router.config()
        if agent_id not in cfg.agents:
            raise UnknownAgent(f"unknown agent {agent_id!r}")
        if action == "pause" and reason not in cfg.pause_reasons:
            raise BadRequest(
                f"unknown pause reason {reason!r}; one of {sorted(cfg.pause_reasons)}"
            )
        try:
            status, done = await self.router.agent_action(agent_id, action, reason)
        except KeyError as exc:  # the config changed under the request (a reload)
            raise UnknownAgent(str(exc).strip("'\"")) from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if not done:
            raise AgentActionRefused(f"{action} refused: agent {agent_id} is {status}")
        if identity.user != agent_id:
            await self.audit.record(
                user=identity.user, role=str(identity.role), action="agent.state",
                obj=f"agent:{agent_id}", address=actor.address, now=actor.now,
                reason=reason or None, details={"action": action, "status": status},
            )
        return {"agent": agent_id, "status": status}
