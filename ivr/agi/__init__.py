"""FastAGI: Asterisk hands each call to us over TCP, and a call flow drives it with commands.

Public surface:
  - L{FastAGIFactory}: the server; flows keyed by the script name of C{agi://host/<script>}.
  - L{AGISession}: what a flow gets; C{await session.get_data(...)} and friends.
  - L{AGIReply}, the errors, L{NO_TIMEOUT}, L{AGILimits}.
  - L{ivr.agi.escaping}: the one path from a Python string to an AGI command word.
  - L{ivr.agi.metrics}: Prometheus counters (C{hotline_agi_*}).
"""

from ivr.agi._errors import (
    AGICommandError,
    AGIConnectionLost,
    AGIError,
    AGIProtocolError,
    AGITimeout,
    ChannelHungUp,
)
from ivr.agi._protocol import NO_TIMEOUT, AGILimits, AGIReply, FastAGIProtocol, parse_reply
from ivr.agi._server import FastAGIFactory, Flow
from ivr.agi._session import AGISession

__all__ = [
    "NO_TIMEOUT",
    "AGICommandError",
    "AGIConnectionLost",
    "AGIError",
    "AGILimits",
    "AGIProtocolError",
    "AGIReply",
    "AGISession",
    "AGITimeout",
    "ChannelHungUp",
    "FastAGIFactory",
    "FastAGIProtocol",
    "Flow",
    "parse_reply",
]
