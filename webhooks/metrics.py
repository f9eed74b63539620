"""Prometheus counters of the webhooks (process-wide, in the default registry).

=================================================  =========================================
``hotline_webhook_deliveries_total{webhook}``      events the receiver accepted (2xx)
``hotline_webhook_failures_total{webhook,cause}``  failed attempts, by cause: ``timeout``,
                                                   ``network``, ``http_5xx``, ``http_429``,
                                                   ``http_408``, ``http_4xx``, ``http_3xx``
``hotline_webhook_dead_letters_total{webhook}``    deliveries given up, written to the
                                                   webhook's dead-letter list
=================================================  =========================================
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["DEAD_LETTERS", "DELIVERIES", "FAILURES"]

DELIVERIES = Counter(
    "hotline_webhook_deliveries", "Webhook events the receiver accepted (2xx)", ["webhook"]
)
FAILURES = Counter(
    "hotline_webhook_failures", "Failed webhook attempts, by cause", ["webhook", "cause"]
)
DEAD_LETTERS = Counter(
    "hotline_webhook_dead_letters",
    "Webhook deliveries given up after the last attempt or a final refusal (dead-letter list)",
    ["webhook"],
)
