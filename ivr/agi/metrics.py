"""Prometheus metrics of the FastAGI server (process-wide, in the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = [
    "COMMANDS",
    "COMMAND_TIMEOUTS",
    "FLOW_ERRORS",
    "PROTOCOL_ERRORS",
    "PROTOCOL_ERROR_REASONS",
    "SESSIONS",
    "SESSIONS_ACTIVE",
    "UNKNOWN_SCRIPTS",
]

SESSIONS_ACTIVE = Gauge("hotline_agi_sessions_active", "FastAGI connections currently open")
SESSIONS = Counter("hotline_agi_sessions", "FastAGI sessions whose header was read (one per call)")
COMMANDS = Counter("hotline_agi_commands", "AGI commands sent to Asterisk")
COMMAND_TIMEOUTS = Counter(
    "hotline_agi_command_timeouts", "AGI commands that got no reply in time (session dropped)"
)
FLOW_ERRORS = Counter(
    "hotline_agi_flow_errors", "Call flows that ended with an error other than a hangup"
)
UNKNOWN_SCRIPTS = Counter(
    "hotline_agi_unknown_scripts", "FastAGI sessions for a script name with no call flow"
)
PROTOCOL_ERRORS = Counter(
    "hotline_agi_protocol_errors",
    "FastAGI connections dropped because the peer broke the protocol",
    ["reason"],
)

# Every reason the protocol reports, created up front so a scrape shows zeros and the hot path
# does no label lookup.
PROTOCOL_ERROR_REASONS = {
    reason: PROTOCOL_ERRORS.labels(reason)
    for reason in (
        "line_too_long",
        "header_too_large",
        "header_timeout",
        "bad_header",
        "unexpected_line",
        "bad_reply",
    )
}
