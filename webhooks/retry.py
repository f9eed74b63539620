"""When a webhook attempt counts as delivered, when it is tried again, and after how long (pure).

Verdicts (:func:`judge_status`, :func:`judge_error`):

- 2xx: delivered.
- a network error, a timeout, 5xx, 408 (Request Timeout), 429 (Too Many Requests): tried
  again, until ``attempts`` attempts in all;
- any other status (3xx: redirects of a signed POST are not followed; 4xx: the receiver
  refuses this request and will refuse it again): final at once.

A delivery that ends without success goes to the webhook's dead-letter list with the last
reason (``webhooks.deadletter``).

Waits (:meth:`Backoff.delay`): exponential, ``initial_s * multiplier ** (n - 1)`` after the
n-th failed attempt, capped at ``max_s``, with "equal jitter": a random point between half
and all of it, so instances that failed together do not retry together. A ``Retry-After``
(seconds or an HTTP date) is honoured as the least wait, up to ``max_s``: a receiver asking
for an hour does not stop its webhook's other events for an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum

RETRIED_STATUSES = frozenset({408, 429})


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FINAL = "final"


@dataclass(frozen=True)
class Judged:
    """One attempt's verdict; ``reason`` for logs and dead letters, ``cause`` a metric label
    (``http_5xx``, ``http_429``, ``timeout``, ``network``...), ``retry_after_s`` the least
    wait the receiver asked for."""

    verdict: Verdict
    reason: str
    cause: str
    retry_after_s: float | None = None


def judge_status(status: int, retry_after: str | None = None, now: float = 0.0) -> Judged:
    """The verdict on an HTTP answer with ``status`` (and its Retry-After header, if any)."""
    reason = f"HTTP {status}"
    if 200 <= status < 300:
        return Judged(Verdict.DELIVERED, reason, "ok")
    cause = f"http_{status}" if status in RETRIED_STATUSES else f"http_{status // 100}xx"
    if status in RETRIED_STATUSES or 500 <= status < 600:
        return Judged(Verdict.RETRY, reason, cause, retry_after_seconds(retry_after, now))
    return Judged(Verdict.FINAL, reason, cause)


def judge_error(error: str, *, timed_out: bool) -> Judged:
    """The verdict on an attempt that got no HTTP answer: always tried again."""
    if timed_out:
        return Judged(Verdict.RETRY, f"timeout: {error}", "timeout")
    return Judged(Verdict.RETRY, f"network: {error}", "network")


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After header (delay-seconds or an HTTP date) as seconds from ``now``; None when
    absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        return None
    return max(0.0, at.timestamp() - now)


@dataclass(frozen=True)
class Backoff:
    """The retry schedule of one webhook (``webhooks.yaml`` ``retry``)."""

    attempts: int = 10
    initial_s: float = 2.0
    max_s: float = 300.0
    multiplier: float = 2.0

    def delay(self, failed: int, draw: float, retry_after_s: float | None = None) -> float:
        """Seconds to wait after the ``failed``-th failed attempt (1-based); ``draw`` in
        [0, 1) picks the jitter."""
        ceiling = min(self.max_s, self.initial_s * self.multiplier ** (failed - 1))
        wait = ceiling * (0.5 + draw / 2)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.max_s))
        return wait
