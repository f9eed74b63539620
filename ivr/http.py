"""The HTTP side of ``ivr serve``: a small JSON API for ops and agents, and /metrics.

Bound to loopback by default (``service.yaml: http``); roles and authentication come with the
work-order API on the roadmap. Every answer is JSON; errors carry ``{"error": ...}``.

=======================================  ==========================================================
``GET  /health``                         Redis reachable, ARI state, calls in progress
``GET  /metrics``                        Prometheus text format
``GET  /api/queues``                     per queue: waiting, longest wait, agents by state, SL
                                         (``off_schedule``: available outside their schedule)
``GET  /api/agents``                     every agent's live state, ``schedule`` on or off
``POST /api/agents/<id>/<action>``       login, logout, pause (``?reason=break``), resume
``GET  /api/decisions``                  the last routing decisions with their explanations
``GET  /api/calls/<call_id>/workorder``  the work order of a call
``GET  /api/workorders/<id>``            one work order
=======================================  ==========================================================
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client.twisted import MetricsResource
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import resource, server

from ivr.aio import deferred


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _JSON(resource.Resource):
    """Routes ``(method, path segments)`` to coroutine handlers returning JSON-able data."""

    isLeaf = True

    def __init__(self, handler: Callable[[str, list[str], dict[str, str]], Awaitable[Any]]) -> None:
        super().__init__()
        self.handler = handler

    def render(self, request: server.Request) -> Any:
        method = request.method.decode()
        parts = [p.decode() for p in request.postpath if p]
        args = {k.decode(): v[0].decode() for k, v in request.args.items() if v}
        d = defer.ensureDeferred(self._call(method, parts, args))
        d.addCallbacks(self._ok, self._error, callbackArgs=(request,), errbackArgs=(request,))
        return server.NOT_DONE_YET

    async def _call(self, method: str, parts: list[str], args: dict[str, str]) -> Any:
        return await self.handler(method, parts, args)

    def _write(self, request: server.Request, status: int, body: Any) -> None:
        if request.finished or request._disconnected:
            return
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.write(json.dumps(body, default=str).encode())
        request.finish()

    def _ok(self, body: Any, request: server.Request) -> None:
        self._write(request, 200, body)

    def _error(self, failure: Failure, request: server.Request) -> None:
        if failure.check(HTTPError):
            self._write(request, failure.value.status, {"error": str(failure.value)})
        elif failure.check(KeyError, ValueError):
            self._write(request, 400, {"error": str(failure.value).strip("'\"")})
        else:
            self._write(request, 503, {"error": failure.getErrorMessage()})


def make_site(hotline: Any) -> server.Site:
    """The HTTP site of a running :class:`hotline.service.Hotline`."""

    async def api(method: str, parts: list[str], args: dict[str, str]) -> Any:
        router = hotline.router
        match method, parts:
            case "GET", ["queues"]:
                return await deferred(queue_report(router))
            case "GET", ["agents"]:
                return await deferred(router.agents())
            case "POST", ["agents", agent_id, action] if action in (
                "login", "logout", "pause", "resume"
            ):
                status, done = await deferred(
                    router.agent_action(agent_id, action, args.get("reason", ""))
                )
                if not done:
                    raise HTTPError(409, f"{action} refused: agent {agent_id} is {status}")
                return {"agent": agent_id, "status": status}
            case "GET", ["decisions"]:
                return router.decisions
            case "GET", ["calls", call_id, "workorder"]:
                order = await deferred(hotline.workorders.get_by_call(call_id))
                if order is None:
                    raise HTTPError(404, f"no work order for call {call_id}")
                return order.to_dict()
            case "GET", ["workorders", order_id]:
                order = await deferred(hotline.workorders.get(order_id))
                if order is None:
                    raise HTTPError(404, f"no work order {order_id}")
                return order.to_dict()
        raise HTTPError(404, f"no such endpoint: {method} /api/{'/'.join(parts)}")

    async def health(method: str, parts: list[str], args: dict[str, str]) -> Any:
        try:
            redis_ok = bool(await deferred(hotline.redis.ping()))
        except Exception:
            redis_ok = False
        return {
            "redis": redis_ok,
            "ari": hotline.ari.state.value if hotline.ari is not None else "off",
            "calls": len(hotline.flow.active),
            "speech_streams": hotline.speech.server.pool.in_use if hotline.speech else None,
        }

    root = resource.Resource()
    root.putChild(b"api", _JSON(api))
    root.putChild(b"health", _JSON(health))
    root.putChild(b"metrics", MetricsResource())
    return server.Site(root)


async def queue_report(router: Any) -> dict[str, Any]:
    """Per queue: calls waiting, longest wait, agents by state, service level today."""
    from routing import core

    cfg = router.config()
    snapshot = await router.snapshot()
    out: dict[str, Any] = {}
    for name, queue in cfg.queues.items():
        waiting = snapshot.by_queue.get(name, [])
        states: dict[str, int] = {}
        for agent in snapshot.agents.values():
            if queue.skills.fit(agent.skills):
                shown = snapshot.shown_status(agent)  # available but off schedule: apart
                states[shown] = states.get(shown, 0) + 1
        stats = snapshot.stats.get(name) or core.QueueStats()
        out[name] = {
            "waiting": len(waiting),
            "longest_wait_s": round(
                max((snapshot.now - c.entered_at for c in waiting), default=0), 1
            ),
            "agents": states,
            "service_level_today": stats.service_level,
            "answered": stats.answered,
            "abandoned": stats.abandoned,
            "target": {"percent": queue.service_level.target * 100,
                       "within_s": queue.service_level.threshold_s},
        }
    return out
