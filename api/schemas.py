"""What the API accepts and answers, as pydantic models: validated on the way in, documented
in the OpenAPI document on the way out.

Ids in paths match :data:`ID_PATTERN`: letters, digits and ``. _ : @ + -``, starting with a
letter or digit, no ``..``. That is every agent id of agents.yaml, every Asterisk call id and
every work-order id, and refuses traversal (``../``), slashes, spaces, control characters
(CR/LF) and anything else a log line or a header could be made to carry.

The answers are built by the services as plain dicts (their shape is the API's contract, kept
byte for byte); the response models below describe them for the document, and the tests hold
the real answers to them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, StringConstraints

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$"


def _no_dot_dot(text: str) -> str:
    if ".." in text:
        raise ValueError("an id has no '..'")
    return text


Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN), AfterValidator(_no_dot_dot)]
ReasonCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{0,64}$")]
AgentAction = Literal["login", "logout", "pause", "resume"]
AGENT_ACTIONS: tuple[str, ...] = ("login", "logout", "pause", "resume")


class _Strict(BaseModel):
    """Unknown fields are refused, types are not coerced (``"1"`` is no int)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- requests -------------------------------------------------------------------------------


class NoParameters(_Strict):
    """A route without path or query parameters: any query parameter is refused."""


class AgentPath(_Strict):
    agent_id: Identifier


class AgentActionPath(_Strict):
    agent_id: Identifier
    action: AgentAction


class AgentActionQuery(_Strict):
    reason: ReasonCode = Field(
        "", description="pause reason code of routing.yaml (pause only), e.g. break, lunch"
    )


class AgentActionBody(_Strict):
    """The same reason as a JSON body, for clients that prefer one to the query string."""

    reason: ReasonCode | None = None


class CallPath(_Strict):
    call_id: Identifier


class WorkOrderPath(_Strict):
    order_id: Identifier


StatedReason = Annotated[str, StringConstraints(
    pattern=r"^[^\x00-\x1f\x7f]*$", min_length=3, max_length=300, strip_whitespace=True)]


class RecordingPath(_Strict):
    recording_id: Identifier


class RecordingReasonQuery(_Strict):
    reason: StatedReason = Field(description="why (required; written to the audit log)")


class RecordingsQuery(_Strict):
    reason: StatedReason = Field(description="why (required; written to the audit log)")
    agent: Identifier | None = None
    call_id: Identifier | None = None
    work_order_id: Identifier | None = Field(
        None, description="a work order's recordings: its call's and its callbacks'")
    limit: Annotated[int, Field(ge=1, le=500, strict=False)] = 50


_FilterText = Annotated[str, StringConstraints(max_length=200)]


class WorkOrderListQuery(_Strict):
    """The filters of ``workorders.query`` (lists comma-separated), a page size and the
    cursor of the previous page; checked again, value by value, by ``parse_filter``."""

    status: _FilterText = Field("", description="pending, assigned, in_progress, on_hold, "
                                "resolved, closed; comma-separated for several")
    category: _FilterText = Field("", description="categories of the config, comma-separated")
    urgency: _FilterText = Field("", description="urgent, important, normal; comma-separated")
    agent: _FilterText = Field("", description="agent ids, comma-separated")
    caller: _FilterText = Field("", description="caller number, any spelling of its digits")
    created_from: _FilterText = Field("", description="2026-11-28 or an ISO time, inclusive")
    created_to: _FilterText = Field("", description="2026-11-28 (that whole day) or an ISO "
                                    "time, exclusive")
    overdue: Literal["", "true", "false"] = Field(
        "", description="true: a deadline passed while the order is still open"
    )
    limit: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,4}$")] = Field(
        "", description="orders per page (default 50, at most 1000)"
    )
    cursor: _FilterText = Field("", description="next_cursor of the previous page")


class AssignBody(_Strict):
    agent: Identifier
    queue: Annotated[str, StringConstraints(max_length=64)] | None = None


StatusEvent = Literal["start", "resolve", "close", "reopen", "resume"]
STATUS_EVENTS: tuple[str, ...] = ("start", "resolve", "close", "reopen", "resume")
_Words = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class StatusBody(_Strict):
    """A lifecycle transition; ``outcome`` for resolve and close, ``reason`` for reopen and
    resume."""

    event: StatusEvent
    outcome: Annotated[str, StringConstraints(max_length=64)] | None = None
    reason: _Words | None = None


class HoldBody(_Strict):
    waiting_on: Literal["customer", "third_party"]
    reason: _Words


class NoteBody(_Strict):
    text: Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class MergeBody(_Strict):
    merged: Identifier = Field(description="the order folded into the one in the path")


class LegalHoldBody(_Strict):
    held: bool = Field(description="true: set the hold (never purged); false: release it")
    reason: _Words


# --- answers --------------------------------------------------------------------------------


class ErrorAnswer(BaseModel):
    error: str = Field(description="what went wrong, for people")
    id: str = Field(description="stable error id, for programs (e.g. workorder-not-found)")


class Health(BaseModel):
    redis: bool
    ari: str = Field(description="ARI connection state, or 'off'")
    calls: int = Field(description="calls in progress in this instance")
    speech_streams: int | None = Field(description="AudioSocket streams in use; null: no speech")


class ServiceLevelTarget(BaseModel):
    percent: float
    within_s: float


class QueueFigures(BaseModel):
    waiting: int
    longest_wait_s: float
    agents: dict[str, int] = Field(description="agents whose skills fit the queue, by state")
    service_level_today: float | None
    answered: int
    abandoned: int
    target: ServiceLevelTarget


class Queues(RootModel[dict[str, QueueFigures]]):
    """Figures by queue name."""


class AgentLive(BaseModel):
    """An agent's live hash (status, pause_reason, call_id, ...) plus ``schedule``."""

    model_config = ConfigDict(extra="allow")
    status: str | None = None
    schedule: Literal["on", "off"]


class Agents(RootModel[dict[str, AgentLive]]):
    """Live state by agent id."""


class AgentActionResult(BaseModel):
    agent: str
    status: str


class Decision(BaseModel):
    """One offer the router made, with the explanation of the routing core."""

    model_config = ConfigDict(extra="allow")
    call_id: str
    agent: str
    instance: str
    reason: str


class Decisions(RootModel[list[Decision]]):
    """The last offers, oldest first."""


class Caller(BaseModel):
    number: str
    name: str


class Deadlines(BaseModel):
    assign_by: str
    respond_by: str


class HistoryEntry(BaseModel):
    time: str
    event: str
    actor: str
    details: dict[str, Any]


class WorkOrderFields(BaseModel):
    """The fields an order has in every answer, whole or as a list's row."""

    id: str
    call_id: str
    caller: Caller
    category: str
    urgency: str
    queue: str | None
    agent: str | None
    status: str
    outcome: str | None
    created_at: str
    updated_at: str
    deadlines: Deadlines
    merged_into: str | None = Field(None, description="the surviving order, once merged")


class WorkOrderAnswer(WorkOrderFields):
    """docs/contracts.md, "Work order"."""

    menu_path: list[str]
    retain_until: str
    transcript: str | None
    confidence: float | None
    engine: str | None
    language: str | None
    history: list[HistoryEntry]
    csat: int | None
    nps: int | None


class PausedIntervalAnswer(BaseModel):
    start: str
    end: str
    reason: str


class RecordingCallPath(_Strict):
    call_id: Identifier


class RecordingPauseAnswer(BaseModel):
    """A running recording after a pause or resume through the API."""

    call_id: str
    recording_id: str
    paused: bool
    reason: str | None = Field(description="why it is muted now: agent, supervisor, "
                                           "sensitive-step; null when recording")


class RecordingAnswer(BaseModel):
    """docs/contracts.md, "Recordings" (never the wrapped key)."""

    id: str
    call_id: str
    work_order_id: str | None
    queue: str
    category: str
    agent: str
    started_at: str
    ended_at: str
    talk_seconds: float
    duration_seconds: float
    format: str
    media_type: str
    size: int
    sha256: str
    stored_at: str
    paused: list[PausedIntervalAnswer]
    legal_hold: bool
    hold_reason: str
    leg: Literal["call", "callback"] = Field(
        "call", description="the caller's call, or a callback to the caller (same call_id and "
                            "work_order_id: one recording per call leg)")


class RecordingList(RootModel[list[RecordingAnswer]]):
    """The newest recordings first."""


class WorkOrderRow(WorkOrderFields):
    """One order of a list: without history, transcript and survey, plus the deadlines it
    has missed."""

    overdue: list[str] = Field(description="deadlines missed while open: assign_by, respond_by")


class WorkOrderPage(BaseModel):
    orders: list[WorkOrderRow]
    next_cursor: str | None = Field(description="null: the last page")


class WorkOrderExport(BaseModel):
    orders: list[WorkOrderAnswer]
    next_cursor: str | None = Field(description="null: the last page")


class MergeAnswer(BaseModel):
    survivor: WorkOrderAnswer
    merged: WorkOrderAnswer


class OpenAPIDocument(RootModel[dict[str, Any]]):
    """An OpenAPI 3.1 document."""
