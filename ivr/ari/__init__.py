"""Asterisk REST Interface (ARI) client: treq for REST, autobahn's WebSocket for events.

What AGI cannot do goes through here: originating calls (test calls, callbacks), endpoint and
device state of the agents' softphones, Stasis events. Public surface:

- :class:`ARIClient`: REST methods (``originate``, ``get_channel``, ``hangup``,
  ``list_endpoints``, ``get_endpoint``, ``get_device_state``, ``asterisk_info``) plus the event
  connection (``start``, ``stop``, ``subscribe``, ``when_connected``, ``state``).
- :class:`ARIError` (Asterisk said no) and :class:`ARIUnavailable` (Asterisk is not there).
- :class:`ConnectionState`, :class:`Backoff`: the reconnect loop's states and delays.
- :func:`place_test_call`, :func:`caller_script`: simulated callers (``ivr call``, e2e tests).
"""

from ivr.ari._client import ARIClient
from ivr.ari._events import (
    ARIEventConnection,
    ARIEventProtocol,
    Backoff,
    ConnectionState,
    EventDispatcher,
    events_url,
)
from ivr.ari._rest import ARIError, ARIRest, ARIUnavailable
from ivr.ari._testcall import (
    caller_script,
    check_caller_script,
    place_test_call,
    simulated_caller_variables,
)

__all__ = [
    "ARIClient",
    "ARIError",
    "ARIEventConnection",
    "ARIEventProtocol",
    "ARIRest",
    "ARIUnavailable",
    "Backoff",
    "ConnectionState",
    "EventDispatcher",
    "caller_script",
    "check_caller_script",
    "events_url",
    "place_test_call",
    "simulated_caller_variables",
]
