"""What the store raises, and what it takes for "Redis is unreachable"."""

from redis import exceptions as redis_errors

#: What "Redis is unreachable" means here: the write is spooled instead.
UNREACHABLE = (
    redis_errors.ConnectionError,  # refused, reset, BusyLoadingError after a restart
    redis_errors.TimeoutError,
    TimeoutError,  # our own per-operation timeout
    OSError,
)


class StoreUnavailable(Exception):
    """Redis is unreachable and the local view cannot answer this request."""


class OutageWhileQueued(TimeoutError):
    """Redis was found unreachable while this operation waited for its turn to talk to it."""


class UnknownWorkOrder(LookupError):
    """No work order has this id."""
