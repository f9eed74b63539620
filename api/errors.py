"""The API's errors: one class per stable error id, and the one table of their status codes.

A client tells errors apart by ``id`` (``workorder-not-found``, ``forbidden``, ...), never by
the message, which is for people. Everything raised below the resources ends up here:
:func:`as_api_error` turns the access layer's refusals, a store that cannot be reached and any
bug into one of these, so no exception text of an unexpected error reaches the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from redis.exceptions import RedisError

from access import AccessDenied, Unauthenticated

__all__ = [
    "STATUS",
    "AgentActionRefused",
    "ApiError",
    "BadRequest",
    "BodyTooLarge",
    "Forbidden",
    "Internal",
    "MethodNotAllowed",
    "NotAuthenticated",
    "NotFound",
    "RecordingNotFound",
    "RecordingUnreadable",
    "Unavailable",
    "UnknownAgent",
    "UnsupportedMediaType",
    "WorkOrderChangeInvalid",
    "WorkOrderNotFound",
    "WorkOrderTransitionRefused",
    "as_api_error",
    "status_of",
]


class ApiError(Exception):
    """An answer other than 2xx: ``error_id`` is stable, the message is for people."""

    error_id: ClassVar[str] = "internal"

    def __init__(self, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        return {"error": self.message, "id": self.error_id}


class BadRequest(ApiError):
    error_id = "bad-request"


class UnknownAgent(ApiError):
    error_id = "unknown-agent"


class NotAuthenticated(ApiError):
    error_id = "unauthenticated"

    def __init__(self, message: str) -> None:
        super().__init__(message, {"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    error_id = "forbidden"


class NotFound(ApiError):
    error_id = "not-found"


class WorkOrderNotFound(ApiError):
    error_id = "workorder-not-found"


class RecordingNotFound(ApiError):
    error_id = "recording-not-found"


class RecordingUnreadable(ApiError):
    """The stored recording does not open: altered, its object missing, or a wrong key."""

    error_id = "recording-unreadable"


class WorkOrderTransitionRefused(ApiError):
    """The order's status does not accept the event; the body names order and event too."""

    error_id = "workorder-transition-refused"

    def __init__(self, message: str, order_id: str, event: str) -> None:
        super().__init__(message)
        self.order_id = order_id
        self.event = event

    def body(self) -> dict[str, str]:
        return {**super().body(), "order": self.order_id, "event": self.event}


class WorkOrderChangeInvalid(ApiError):
    """A well-formed request the work-order model refuses (a missing reason, an unknown
    category, an order merged into itself)."""

    error_id = "workorder-change-invalid"


class MethodNotAllowed(ApiError):
    error_id = "method-not-allowed"

    def __init__(self, message: str, allow: list[str]) -> None:
        super().__init__(message, {"Allow": ", ".join(allow)})


class AgentActionRefused(ApiError):
    error_id = "agent-action-refused"


class BodyTooLarge(ApiError):
    error_id = "body-too-large"


class UnsupportedMediaType(ApiError):
    error_id = "unsupported-media-type"


class Unavailable(ApiError):
    error_id = "unavailable"


class Internal(ApiError):
    error_id = "internal"


# The one place where error ids meet status codes.
STATUS: dict[str, int] = {
    BadRequest.error_id: 400,
    UnknownAgent.error_id: 400,
    NotAuthenticated.error_id: 401,
    Forbidden.error_id: 403,
    NotFound.error_id: 404,
    WorkOrderNotFound.error_id: 404,
    RecordingNotFound.error_id: 404,
    MethodNotAllowed.error_id: 405,
    AgentActionRefused.error_id: 409,
    WorkOrderTransitionRefused.error_id: 409,
    WorkOrderChangeInvalid.error_id: 422,
    BodyTooLarge.error_id: 413,
    RecordingUnreadable.error_id: 422,
    UnsupportedMediaType.error_id: 415,
    Internal.error_id: 500,
    Unavailable.error_id: 503,
}

ERRORS: tuple[type[ApiError], ...] = (
    BadRequest, UnknownAgent, NotAuthenticated, Forbidden, NotFound, WorkOrderNotFound,
    MethodNotAllowed, AgentActionRefused, BodyTooLarge, UnsupportedMediaType, Internal,
    Unavailable, RecordingNotFound, RecordingUnreadable,
    WorkOrderTransitionRefused, WorkOrderChangeInvalid,
)


def status_of(error: ApiError) -> int:
    return STATUS[error.error_id]


def as_api_error(exc: BaseException) -> ApiError:
    """Any exception as the error the client sees. Redis or the network away is 503
    ``unavailable`` (the message says what failed); anything unforeseen is 500 ``internal``
    with no detail (the log has it)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, Unauthenticated):
        return NotAuthenticated(exc.reason)
    if isinstance(exc, AccessDenied):
        return Forbidden(exc.reason)
    if isinstance(exc, (ConnectionError, TimeoutError, RedisError)):
        return Unavailable(f"a store the service needs is unavailable: {exc}")
    return Internal("internal error; the service log has the details")
