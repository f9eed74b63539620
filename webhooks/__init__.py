"""Outbound webhooks: work-order events POSTed, signed, to the receivers of
``config/webhooks.yaml``.

- :mod:`webhooks.schema`: the config (receivers, kinds, retries; secrets by reference only);
- :mod:`webhooks.signature`: body and Standard Webhooks signature, and a receiver's check
  (pure);
- :mod:`webhooks.retry`: verdicts on an attempt and the backoff schedule (pure);
- :mod:`webhooks.delivery`: one event to one receiver, retried, dead-lettered (Twisted, treq);
- :mod:`webhooks.deliverer`: each webhook's loop over its consumer group, inside ``ivr serve``;
- :mod:`webhooks.deadletter`: the dead-letter and re-drive lists in Redis;
- :mod:`webhooks.cli`: ``ivr webhooks dead|redrive``;
- :mod:`webhooks.testing`: fakes for unit tests.

docs/contracts.md ("Webhooks") is the receiver's reference.
"""

from __future__ import annotations

from webhooks.schema import WebhooksConfig, WebhookSecretError, WebhookSettings, secret_problems
from webhooks.signature import InvalidSignature, verify

__all__ = [
    "InvalidSignature",
    "WebhookSecretError",
    "WebhookSettings",
    "WebhooksConfig",
    "secret_problems",
    "verify",
]
