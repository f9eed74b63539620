"""``GET /api/agents`` and ``POST /api/agents/<id>/<action>`` (login, logout, pause with
``?reason=`` or a JSON body ``{"reason": ...}``, resume)."""

from __future__ import annotations

from typing import Any

from access import Permission
from api.errors import AgentActionRefused, BadRequest, UnknownAgent
from api.routes import Call, Route
from api.schemas import (
    AGENT_ACTIONS,
    AgentActionBody,
    AgentActionPath,
    AgentActionQuery,
    AgentActionResult,
    Agents,
)
from api.services import AgentService


def routes(agents: AgentService) -> list[Route]:
    async def list_agents(call: Call) -> dict[str, dict[str, str]]:
        return await agents.agents(call.actor)

    async def act(call: Call) -> dict[str, Any]:
        assert isinstance(call.path, AgentActionPath)
        assert isinstance(call.query, AgentActionQuery)
        reason = call.query.reason
        if isinstance(call.body, AgentActionBody) and call.body.reason is not None:
            if reason and reason != call.body.reason:
                raise BadRequest("reason given twice (query and body) with different values")
            reason = call.body.reason
        return await agents.act(call.actor, call.path.agent_id, call.path.action, reason)

    return [
        Route("GET", "/api/agents", Permission.AGENTS_READ, list_agents,
              "Every agent's live state (as far as the token may see), schedule on or off",
              Agents, scoped=True),
        Route("POST", "/api/agents/{agent_id}/{action:" + "|".join(AGENT_ACTIONS) + "}",
              Permission.AGENT_STATE_CHANGE, act,
              "Log an agent in or out, pause it (with a reason of routing.yaml), resume it",
              AgentActionResult, path_schema=AgentActionPath, query_schema=AgentActionQuery,
              body_schema=AgentActionBody, scoped=True,
              errors=(UnknownAgent, AgentActionRefused), audit="agent.state"),
    ]
