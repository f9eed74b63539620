"""The stack's side of each call: what the hotline decided and who the caller reached.

Read after a step from what the service leaves anyway: the ``hotline:events`` stream
(``WOCREATE``, ``CONNECT``, ``ABANDON``, ``CALLBACKREQUEST``), the work orders through the
HTTP API (the caller's name is the fleet's tag: that is how a Redis call id is matched to a
SIP caller), the operator's softphone log (callers who never got a work order) and the
service's log (the instant each speech decision was made). The matching itself is pure
(:func:`apply_evidence`) and unit tested.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from benchmarks.load.fleet import CallOutcome

DECISION_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?call (\S+): speech attempt \d+: (\w+) "
)
TAG = re.compile(r"load-[\w.]+-\d+")


@dataclass
class Evidence:
    """What the stack recorded, keyed for matching."""

    tag_of_call: dict[str, str] = field(default_factory=dict)  # Redis call id -> tag
    category: dict[str, str] = field(default_factory=dict)  # call id -> work order category
    connected: dict[str, tuple[str, float, float]] = field(
        default_factory=dict)  # call id -> (agent, hold s, when)
    abandoned_wait: dict[str, float] = field(default_factory=dict)  # call id -> wait in queue
    callbacks: set[str] = field(default_factory=set)  # call ids that left a number
    decisions: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # (at, outcome)
    operator_tags: set[str] = field(default_factory=set)  # tags the operator answered
    operator_answered: dict[str, float] = field(default_factory=dict)  # tag -> wall clock


def decisions_from_log(text: str) -> dict[str, list[tuple[float, str]]]:
    """Per call id, the (time, outcome) of each speech attempt in ``ivr serve``'s log
    (logging's asctime: local time, milliseconds)."""
    found: dict[str, list[tuple[float, str]]] = {}
    for line in text.splitlines():
        match = DECISION_LINE.match(line)
        if match:
            at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            found.setdefault(match.group(2), []).append((at, match.group(3)))
    return found


def event_time(text: str) -> float:
    """An event's ``time`` (ISO-8601 UTC, ``Z``) as seconds since the epoch; 0 if absent."""
    if not text:
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def from_events(events: Iterable[Mapping[str, str]], evidence: Evidence) -> None:
    for event in events:
        kind, call_id = event.get("kind", ""), event.get("call_id", "")
        if kind == "CONNECT" and event.get("callback") != "1":
            evidence.connected[call_id] = (event.get("agent", ""),
                                           float(event.get("holdtime") or 0),
                                           event_time(event.get("time", "")))
        elif kind == "ABANDON" and event.get("waittime"):
            evidence.abandoned_wait[call_id] = float(event["waittime"])
        elif kind == "CALLBACKREQUEST":
            evidence.callbacks.add(call_id)


def answers_by_tag(phone_events: Iterable[tuple[str, str, str]]) -> dict[str, float]:
    """When an answering phone picked up each fleet caller: its log's (kind, call id, detail)
    lines joined by SIP call id, INVITE's From header naming the caller's tag and
    ANSWERED_AT's detail the wall clock (``<s>|<us>``, SIPp's doubles)."""
    tag_of: dict[str, str] = {}
    answered: dict[str, float] = {}
    for kind, call_id, detail in phone_events:
        if kind == "INVITE":
            match = TAG.search(detail)
            if match:
                tag_of[call_id] = match.group(0)
        elif kind == "ANSWERED_AT" and call_id in tag_of:
            seconds, _, micros = detail.partition("|")
            try:
                answered[tag_of[call_id]] = float(seconds) + float(micros or 0) / 1e6
            except ValueError:
                continue
    return answered


def gather(
    events: Sequence[Mapping[str, str]], workorder: Callable[[str], Mapping[str, Any] | None],
    service_log: str, operator_log: Sequence[tuple[str, str, str]],
) -> Evidence:
    """Everything :func:`apply_evidence` needs. ``workorder(call_id)`` fetches one order;
    ``operator_log`` is the operator phone's log as (kind, SIP call id, detail): its INVITEs'
    From headers name the callers it rang, its ANSWERED_AT lines when it answered each
    (:func:`answers_by_tag`)."""
    evidence = Evidence()
    from_events(events, evidence)
    for event in events:
        if event.get("kind") != "WOCREATE":
            continue
        call_id = event.get("call_id", "")
        order = workorder(call_id)
        if not order:
            continue
        name = str((order.get("caller") or {}).get("name") or "")
        if TAG.fullmatch(name):
            evidence.tag_of_call[call_id] = name
            if order.get("category"):
                evidence.category[call_id] = str(order["category"])
    evidence.decisions = decisions_from_log(service_log)
    for kind, _call, detail in operator_log:
        match = TAG.search(detail) if kind == "INVITE" else None
        if match:
            evidence.operator_tags.add(match.group(0))
    evidence.operator_answered = answers_by_tag(operator_log)
    return evidence


def apply_evidence(outcomes: Iterable[CallOutcome], evidence: Evidence) -> None:
    """Fill ``reached``, ``agent``, ``category``, ``decided_at``, ``queue_wait_s`` and
    ``connected_at`` (the agent's or the operator's answer: owed dead air ends there)."""
    call_of_tag = {tag: call_id for call_id, tag in evidence.tag_of_call.items()}
    for out in outcomes:
        call_id = call_of_tag.get(out.tag)
        if call_id is not None:
            out.category = evidence.category.get(call_id)
            if call_id in evidence.connected:
                out.agent, out.queue_wait_s, connected_at = evidence.connected[call_id]
                out.connected_at = connected_at or None
                out.dead_air = out.owed_dead_air()  # the conversation is not owed prompts
            elif call_id in evidence.abandoned_wait:
                out.queue_wait_s = evidence.abandoned_wait[call_id]
            if out.speech_end_at is not None:
                spoken = [at for at, outcome in evidence.decisions.get(call_id, [])
                          if outcome == "speech" and at >= out.speech_end_at]
                out.decided_at = min(spoken) if spoken else None
        if out.set_up_failed:
            out.reached = "failed"
        elif out.agent:
            out.reached = "agent"
        elif call_id is not None and call_id in evidence.callbacks:
            out.reached = "callback"
        elif out.tag in evidence.operator_tags:
            out.reached = "operator"
            if out.tag in evidence.operator_answered:
                # the conversation with the operator is not owed prompts either
                out.connected_at = evidence.operator_answered[out.tag]
                out.dead_air = out.owed_dead_air()
        elif out.hung_up_by == "local":
            out.reached = "hung-up"
        else:
            out.reached = "dropped"  # the hotline hung up on a caller who reached nobody
