"""ARI's REST half: one method per Asterisk resource we use, over treq.

Every request carries HTTP basic auth and a timeout. Failures come back as one of two
exceptions so callers can tell "Asterisk said no" (:class:`ARIError`, with the status, method,
path and Asterisk's message) from "Asterisk is not there" (:class:`ARIUnavailable`: refused,
reset, timed out). Lookups of things that may legitimately be gone (a channel that hung up, an
endpoint that does not exist) answer ``None`` on 404 instead of raising.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from twisted.internet import defer, error
from twisted.internet.interfaces import IReactorTime
from twisted.web.client import ResponseFailed, ResponseNeverReceived

log = logging.getLogger("ivr.ari")

# Failures that mean "nobody answered at the HTTP level", as opposed to an HTTP error status.
_UNAVAILABLE = (
    error.ConnectError,  # includes ConnectionRefusedError, DNS and TCP timeouts
    error.ConnectionLost,
    error.TimeoutError,
    error.ConnectingCancelledError,  # the timeout hit while still connecting
    defer.CancelledError,  # treq cancels the request when `timeout` expires
    ResponseNeverReceived,
    ResponseFailed,
)


class ARIError(Exception):
    """Asterisk answered an ARI request with an error status."""

    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        super().__init__(f"ARI {method} {path} -> {status}: {_message(body)}")


class ARIUnavailable(Exception):
    """ARI could not be reached (refused, reset, timed out): Asterisk is down or restarting."""

    def __init__(self, method: str, path: str, reason: str) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        super().__init__(f"ARI {method} {path}: Asterisk unreachable ({reason})")


def _message(body: str) -> str:
    """Asterisk's error bodies are ``{"message": "..."}``; show just that when it is."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body[:200]
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return parsed["message"]
    return body[:200]


def _segment(value: str) -> str:
    """Quote one path segment: channel ids and device names may hold ``/`` or ``@``."""
    return quote(value, safe="")


class ARIRest:
    """The ARI REST resources the hotline uses.

    ``http`` is anything with treq's request API: :class:`treq.client.HTTPClient` in the
    service, :class:`treq.testing.StubTreq` in tests. ``clock`` drives request timeouts.
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        http: Any,
        clock: IReactorTime,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = (user, password)
        self._http = http
        self._clock = clock
        self._timeout = timeout

    def __repr__(self) -> str:  # never show the password
        return f"<ARIRest {self.base_url} user={self._auth[0]!r}>"

    @defer.inlineCallbacks
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        not_found_ok: bool = False,
    ) -> Any:
        """Send one request; the parsed JSON answer (``None`` for 204, or 404 if allowed)."""
        url = self.base_url + path
        query = {k: str(v) for k, v in (params or {}).items()}
        extra: dict[str, Any] = {} if body is None else {"json": dict(body)}
        try:
            response = yield self._http.request(
                method,
                url,
                params=query,
                auth=self._auth,
                reactor=self._clock,
                timeout=self._timeout,
                **extra,
            )
            content = yield response.content()
        except _UNAVAILABLE as e:
            raise ARIUnavailable(method, path, type(e).__name__ + ": " + str(e)) from e
        code = response.code
        text = content.decode("utf-8", "replace")
        if code == 404 and not_found_ok:
            return None
        if code >= 300:
            raise ARIError(code, method, path, text)
        if code == 204 or not content:
            return None
        try:
            return json.loads(text)
        except ValueError as e:
            raise ARIError(code, method, path, f"not JSON: {text[:200]}") from e

    # --- channels ------------------------------------------------------------------------------

    def originate(
        self,
        endpoint: str,
        *,
        extension: str | None = None,
        context: str | None = None,
        priority: int = 1,
        app: str | None = None,
        app_args: str | None = None,
        caller_id: str | None = None,
        timeout: int = 30,
        variables: Mapping[str, str] | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
    ) -> defer.Deferred[dict[str, Any]]:
        """``POST /channels``: dial ``endpoint`` and, once it answers, send the call into
        ``extension@context`` (dialplan) or into the Stasis ``app``; exactly one of those.

        The answer is the new channel as ARI describes it (``id`` is ``channel_id`` if given).
        Channel variables travel in the JSON body, as ARI documents.
        """
        if (extension is None) == (app is None):
            raise ValueError("originate needs exactly one of extension (dialplan) or app (Stasis)")
        params: dict[str, str | int] = {"endpoint": endpoint, "timeout": timeout}
        if extension is not None:
            params["extension"] = extension
            params["priority"] = priority
            if context is not None:
                params["context"] = context
        else:
            assert app is not None
            params["app"] = app
            if app_args is not None:
                params["appArgs"] = app_args
        if caller_id is not None:
            params["callerId"] = caller_id
        if channel_id is not None:
            params["channelId"] = channel_id
        if other_channel_id is not None:
            params["otherChannelId"] = other_channel_id
        body = {"variables": {str(k): str(v) for k, v in variables.items()}} if variables else None
        return self.request("POST", "/channels", params=params, body=body)

    def get_channel(self, channel_id: str) -> defer.Deferred[dict[str, Any] | None]:
        """``GET /channels/{id}``; ``None`` once the channel is gone."""
        return self.request("GET", f"/channels/{_segment(channel_id)}", not_found_ok=True)

    @defer.inlineCallbacks
    def hangup(self, channel_id: str, reason: str = "normal") -> Any:
        """``DELETE /channels/{id}``: True if we hung it up, False if it was already gone.

        Hanging up is idempotent on purpose: the caller may hang up at the same moment.
        """
        path = f"/channels/{_segment(channel_id)}"
        try:
            yield self.request("DELETE", path, params={"reason": reason})
        except ARIError as e:
            if e.status == 404:
                return False
            raise
        return True

    # --- endpoints and device states -----------------------------------------------------------

    def list_endpoints(self) -> defer.Deferred[list[dict[str, Any]]]:
        """``GET /endpoints``: every endpoint of every technology, with its ``state``."""
        return self.request("GET", "/endpoints")

    def get_endpoint(self, tech: str, resource: str) -> defer.Deferred[dict[str, Any] | None]:
        """``GET /endpoints/{tech}/{resource}`` (e.g. PJSIP, agent101); ``None`` if unknown."""
        return self.request(
            "GET", f"/endpoints/{_segment(tech)}/{_segment(resource)}", not_found_ok=True
        )

    @defer.inlineCallbacks
    def get_device_state(self, name: str) -> Any:
        """``GET /deviceStates/{name}`` (e.g. ``PJSIP/agent101``): the state word such as
        ``NOT_INUSE``, ``INUSE``, ``RINGING``, ``UNAVAILABLE``; ``None`` if Asterisk has none."""
        found = yield self.request("GET", f"/deviceStates/{_segment(name)}", not_found_ok=True)
        return None if found is None else found.get("state")

    # --- the system and our application ----------------------------------------------------------

    def asterisk_info(self) -> defer.Deferred[dict[str, Any]]:
        """``GET /asterisk/info``: build, system, config and status of the running Asterisk."""
        return self.request("GET", "/asterisk/info")

    def subscribe_event_source(self, app: str, event_source: str) -> defer.Deferred[Any]:
        """``POST /applications/{app}/subscription``: add an event source such as
        ``deviceState:PJSIP/agent101`` when the app is not connected with ``subscribeAll``."""
        return self.request(
            "POST",
            f"/applications/{_segment(app)}/subscription",
            params={"eventSource": event_source},
        )
