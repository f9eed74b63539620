"""The audit entry and its hash chain, as pure functions over flat string maps.

An entry is the flat map of strings that XADD stores (``Fields``):

=========== ===========================================================================
id          the audit id: 32 hex digits, chosen when the access happens (``record``'s
            answer); stays the same through a spool and its replay
time        when the access happened, ISO-8601 UTC (``2026-11-28T09:00:00.000000Z``)
user        who (the identity's user name)
role        the role they acted in (``agent``, ``supervisor``, ``ops``, ``auditor``...)
action      ``<domain>.<verb>``, one of :class:`Action`
object      which object (``workorder:17``, ``agent:a1``, ``token:3f..``, ``config``)
address     from which address (the client's IP, ``local`` for the command line)
reason      the stated reason, empty when the operation asks none
details     JSON object of strings, keys sorted, ``{}`` when none
replayed    ``1`` on an entry written while Redis was away and chained later (absent else)
prev        the ``hash`` of the entry before it in the stream (:data:`GENESIS` for the first)
hash        SHA-256 of the canonical encoding of every other field, ``prev`` included
=========== ===========================================================================

Canonical encoding (what ``hash`` is computed over, so anyone can recompute it): every field
but ``hash`` as one JSON object, keys sorted, no whitespace (separators ``,`` and ``:``),
non-ASCII escaped (``\\uXXXX``), encoded as UTF-8; ``hash`` is its SHA-256 in lower-case hex.
All fields count, also ones this code does not know, so an added field is an edit too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from events import event_fields

Fields = dict[str, str]

GENESIS = "0" * 64
"""The ``prev`` of the first entry of a chain."""

CONTENT = ("id", "time", "user", "role", "action", "object", "address", "reason", "details")
"""The fields fixed when the access happens; ``replayed``, ``prev`` and ``hash`` are added
when the entry joins the chain."""

_AUDIT_ID = re.compile(r"^[0-9a-f]{32}$")


class Action(StrEnum):
    """What was done, ``<domain>.<verb>``; a new kind of access gets a name here first, so a
    typo cannot make entries that ``ivr audit list --action`` never finds."""

    WORKORDER_READ = "workorder.read"
    WORKORDER_CHANGE = "workorder.change"
    WORKORDER_EXPORT = "workorder.export"
    WORKORDER_LIST = "workorder.list"
    WORKORDER_MERGE = "workorder.merge"
    WORKORDER_LEGAL_HOLD = "workorder.legal_hold"
    WORKORDER_LEGAL_RELEASE = "workorder.legal_release"
    WORKORDER_PURGE = "workorder.purge"
    AGENT_STATE = "agent.state"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    CONFIG_RELOAD = "config.reload"
    AUDIT_READ = "audit.read"
    RECORDING_LIST = "recording.list"
    RECORDING_READ = "recording.read"  # its metadata
    RECORDING_PLAY = "recording.play"  # its decrypted audio
    RECORDING_HOLD = "recording.hold"
    RECORDING_RELEASE = "recording.release"
    RECORDING_PURGE = "recording.purge"
    RECORDING_PAUSE = "recording.pause"  # a running recording muted (api/services/recordings)
    RECORDING_RESUME = "recording.resume"


def iso_time(now: float) -> str:
    """``now`` (epoch seconds) as the entries' ``time``: the events stream's format."""
    return event_fields("AUDIT", now)["time"]


def parse_time(text: str) -> float:
    """An ISO-8601 date or date-time as epoch seconds (no zone: UTC); ``ValueError`` else."""
    at = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def new_entry(
    *,
    entry_id: str,
    user: str,
    role: str,
    action: str,
    obj: str,
    address: str,
    now: float,
    reason: str | None = None,
    details: Mapping[str, str] | None = None,
) -> Fields:
    """The content of one entry; ``ValueError`` for an unknown action or a missing who/what."""
    if not _AUDIT_ID.match(entry_id):
        raise ValueError(f"audit id {entry_id!r}: 32 lower-case hex digits expected")
    action = Action(action).value  # ValueError names an unknown action
    for name, value in (("user", user), ("role", role), ("object", obj)):
        if not value:
            raise ValueError(f"an audit entry needs a {name}")
    details = dict(details or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in details.items()):
        raise ValueError("audit details are strings by strings")
    return {  # str(): a StrEnum (access.Role) is stored as its plain value
        "id": entry_id,
        "time": iso_time(now),
        "user": str(user),
        "role": str(role),
        "action": action,
        "object": str(obj),
        "address": str(address),
        "reason": str(reason or ""),
        "details": json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    }


def content_of(fields: Mapping[str, str]) -> Fields:
    """The fields fixed at the access (:data:`CONTENT`), without the chain's."""
    return {name: fields[name] for name in CONTENT if name in fields}


def canonical(fields: Mapping[str, str]) -> bytes:
    """The bytes ``hash`` is computed over: every field but ``hash`` (module docstring)."""
    payload = {name: value for name, value in fields.items() if name != "hash"}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(fields: Mapping[str, str]) -> str:
    """SHA-256 (hex) of :func:`canonical`."""
    return hashlib.sha256(canonical(fields)).hexdigest()


def link(content: Mapping[str, str], prev: str, *, replayed: bool = False) -> Fields:
    """The entry as it joins the chain after the entry whose hash is ``prev``."""
    fields = content_of(content)
    if replayed:
        fields["replayed"] = "1"
    fields["prev"] = prev
    fields["hash"] = entry_hash(fields)
    return fields


@dataclass(frozen=True)
class Finding:
    """One thing wrong: ``where`` (a stream id, ``file:line``, a key) and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class ChainWalk:
    """Walks the stream in order (:meth:`feed` each entry, then :meth:`finish`) and finds
    every broken link, each once: after a break it goes on from what the entry says, so one
    edit is one finding and the walk still reaches the rest of the chain.

    It keeps each audit id's stream id and hash (``seen``) for the checks of the mirror files.
    """

    expected_prev: str = GENESIS
    last: str = ""  # stream id of the entry fed last
    count: int = 0
    findings: list[Finding] = field(default_factory=list)
    seen: dict[str, tuple[str, str]] = field(default_factory=dict)

    def feed(self, stream_id: str, fields: Mapping[str, str]) -> None:
        audit_id = fields.get("id", "")
        found_hash, found_prev = fields.get("hash"), fields.get("prev")
        name = f"entry {stream_id} (audit id {audit_id or '?'})"
        recomputed = entry_hash(fields)
        if found_hash != recomputed:
            self._add(
                stream_id,
                f"{name}: hash is {found_hash or 'missing'}, recomputed from its fields "
                f"{recomputed}: a field was edited, added or removed",
            )
        if found_prev != self.expected_prev:
            after = f"the entry before it, {self.last}" if self.last else "the chain's start"
            self._add(
                stream_id,
                f"{name}: prev is {found_prev or 'missing'}, expected {self.expected_prev} "
                f"(the hash of {after}): entries were deleted, inserted or reordered here",
            )
        if audit_id in self.seen:
            self._add(stream_id, f"{name}: the audit id is also entry {self.seen[audit_id][0]}")
        else:
            # What the fields hash to, not what the entry claims: a copy is checked against
            # the entry as it is.
            self.seen[audit_id] = (stream_id, recomputed)
        self.expected_prev = found_hash or recomputed
        self.last = stream_id
        self.count += 1

    def finish(self, head: str | None) -> list[Finding]:
        """Every finding, after checking ``<prefix>audit:head`` (``head``) against the last
        entry: the only way to see that the newest entries were deleted."""
        if self.count and head is None:
            self._add("audit:head", "missing, but the stream has entries")
        elif head is not None and head != self.expected_prev:
            last = f"entry {self.last}" if self.last else "an empty stream"
            self._add(
                "audit:head",
                f"is {head}, expected {self.expected_prev} (the hash of {last}): "
                "the newest entries were deleted",
            )
        return self.findings

    def _add(self, where: str, message: str) -> None:
        self.findings.append(Finding(where, message))


def compare_copy(
    where: str, copy: Mapping[str, str], stream: Mapping[str, str] | None, *, chained: bool
) -> Finding | None:
    """A mirror file's copy of an entry against the stream's (``None``: not in the stream).

    ``chained``: the copy was written after the entry joined the chain (with ``prev`` and
    ``hash``), so every field must match; otherwise it was spooled and only the content must.
    """
    audit_id = copy.get("id", "?")
    if stream is None:
        return Finding(where, f"entry {audit_id} is in the file but not in the stream")
    names = sorted(set(copy) | set(stream)) if chained else list(CONTENT)
    differ = [name for name in names if copy.get(name) != stream.get(name)]
    if differ:
        return Finding(
            where, f"entry {audit_id} differs from the stream in {', '.join(differ)}"
        )
    return None
