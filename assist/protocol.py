"""Protocol v1: the JSON text frames exchanged over the WebSocket endpoints.

Pure: bytes/str in, validated frames or ``ProtocolError`` out. No I/O here, so the
contract is tested synchronously and documented from the same models
(``callassist protocol schema`` writes the JSON Schemas in docs/protocol.md).
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROTOCOL_VERSION = 1
DEFAULT_MAX_FRAME_BYTES = 64 * 1024
MAX_TEXT_CHARS = 8_000
MAX_ID_CHARS = 128
MAX_PROFILE_DEPTH = 4  # nesting of the free-form caller profile fields
# Only frames holding one of these can carry a lone UTF-16 surrogate (not valid Unicode).
_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")

# WebSocket close codes used at the edge (RFC 6455 + registry).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013


class ProtocolError(Exception):
    """A frame the server cannot accept. ``code`` is machine-readable and stable.

    ``close_code`` is set only when the connection must close (e.g. 1009 for an
    oversized frame); otherwise the server answers with an error frame and keeps going.
    """

    def __init__(self, code: str, message: str, *, close_code: int | None = None, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code
        self.field = field

    def to_frame(self, utterance_id: str | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.field:
            frame["field"] = self.field
        if utterance_id:
            frame["utterance_id"] = utterance_id
        return frame


Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9._:@\-]+$")]


class _Frame(BaseModel):
    # Unknown fields are ignored so newer clients can add fields without breaking v1 servers.
    # NaN/Infinity are not JSON numbers: they would reach clients whose JSON.parse rejects them.
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)


# ---------------------------------------------------------------- client -> server


class CustomerProfile(BaseModel):
    """Caller profile the integration already knows (CRM/IVR). All optional."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    name: str | None = Field(default=None, max_length=200)
    tier: str | None = Field(default=None, max_length=40)
    clv: float | None = Field(default=None, ge=0)
    product: str | None = Field(default=None, max_length=80)
    language: str | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _plain_extras(self) -> CustomerProfile:
        """Extra fields travel to every board and into the store: plain, finite, shallow JSON."""
        for key, value in (self.model_extra or {}).items():
            problem = _json_problem(value, MAX_PROFILE_DEPTH)
            if problem:
                raise ValueError(f"customer field {key!r}: {problem}")
        return self


def _json_problem(value: Any, depth: int) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "numbers must be finite"
    if isinstance(value, list | dict):
        if depth <= 0:
            return f"nested deeper than {MAX_PROFILE_DEPTH} levels"
        items = value.values() if isinstance(value, dict) else value
        return next((p for item in items if (p := _json_problem(item, depth - 1))), None)
    return None


class StartFrame(_Frame):
    """First frame on ``/v1/calls/{call_id}``: who is on the call."""

    type: Literal["start"] = "start"
    agent_id: Identifier
    customer: CustomerProfile = Field(default_factory=CustomerProfile)
    language: str = Field(default="en", max_length=16)
    team: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    started_at: float | None = Field(
        default=None, description="Unix time the call started; defaults to the server clock (for replays)."
    )


class UtteranceFrame(_Frame):
    """One transcript chunk. Interim chunks (``is_final: false``) update the live text only."""

    type: Literal["utterance"] = "utterance"
    speaker: Literal["customer", "agent"]
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    timestamp: float = Field(ge=0, description="Seconds of call time since the start of the call.")
    is_final: bool = True
    utterance_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)

    @field_validator("timestamp")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("timestamp must be a finite number")
        return value


class EndFrame(_Frame):
    """The call is over; the server stores it and hands it to QA and analytics."""

    type: Literal["end"] = "end"
    reason: str | None = Field(default=None, max_length=200)


ClientFrame = StartFrame | UtteranceFrame | EndFrame
CLIENT_FRAME_TYPES: dict[str, type[_Frame]] = {
    "start": StartFrame,
    "utterance": UtteranceFrame,
    "end": EndFrame,
}


def parse_client_frame(data: str | bytes, *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> ClientFrame:
    """Validate one softphone frame. Raises ``ProtocolError`` with a stable ``code``."""
    if isinstance(data, bytes | bytearray):
        raise ProtocolError("binary_not_supported", "frames must be JSON text frames, not binary")
    if len(data) > max_bytes or (
        len(data) * 4 > max_bytes and len(data.encode("utf-8", "surrogatepass")) > max_bytes
    ):
        raise ProtocolError(
            "frame_too_large", f"frame exceeds {max_bytes} bytes", close_code=CLOSE_MESSAGE_TOO_BIG
        )
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("invalid_json", f"frame is not valid JSON: {exc}") from None
    if _SURROGATE_HINT.search(data) and not _valid_unicode(raw):
        raise ProtocolError("invalid_json", "frame holds a lone UTF-16 surrogate (not valid Unicode)")
    if not isinstance(raw, dict):
        raise ProtocolError("not_an_object", "frame must be a JSON object")
    frame_type = raw.get("type")
    if frame_type is None:
        raise ProtocolError("missing_field", "frame has no 'type'", field="type")
    model = CLIENT_FRAME_TYPES.get(frame_type) if isinstance(frame_type, str) else None
    if model is None:
        known = ", ".join(sorted(CLIENT_FRAME_TYPES))
        raise ProtocolError("unknown_type", f"unknown frame type {frame_type!r}; expected one of: {known}")
    try:
        return model.model_validate(raw)  # type: ignore[return-value]
    except ValidationError as exc:
        raise _validation_error(exc) from None


def _valid_unicode(raw: Any) -> bool:
    try:
        json.dumps(raw, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _validation_error(exc: ValidationError) -> ProtocolError:
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    if first["type"] == "missing":
        return ProtocolError("missing_field", f"missing required field '{field}'", field=field)
    return ProtocolError("invalid_field", f"invalid '{field}': {first['msg']}", field=field)


# ---------------------------------------------------------------- server -> clients
# Outbound frames are plain dicts built by assist.events; these models document them
# (JSON Schema in docs/protocol.md) and tests validate real traffic against them.


class KnowledgeArticle(BaseModel):
    id: str
    title: str
    snippet: str
    score: float
    url: str | None = None
    anchor: str | None = None


class ComplianceAlert(BaseModel):
    rule_id: str
    kind: Literal["missing_disclosure", "forbidden_phrase", "hold_without_permission", "pii_spoken"]
    severity: Literal["low", "medium", "high"]
    message: str
    timestamp: float
    utterance_id: str | None = None
    resolved: bool = False


class AssistEvent(BaseModel):
    """Sent to the agent for every final customer utterance of the agent's call."""

    type: Literal["assist"]
    call_id: str
    utterance_id: str | None
    timestamp: float
    text: str
    intent: str
    intent_confidence: float
    intent_scores: dict[str, float]
    sentiment: float = Field(
        ge=-1,
        le=1,
        description="Customer sentiment of this utterance: VADER stacked with the embedding head.",
    )
    sentiment_vader: float | None = Field(default=None, description="Plain VADER compound, for reference.")
    sentiment_label: Literal["positive", "neutral", "negative"]
    sentiment_trend: Literal["improving", "declining", "stable"]
    knowledge_articles: list[KnowledgeArticle]
    compliance_alerts: list[ComplianceAlert]
    suggested_action: str
    suggested_action_reason: str
    latency_ms: float
    degraded: list[str] = Field(default_factory=list, description="Analyses that failed or timed out.")


class ComplianceEvent(BaseModel):
    """Raised to the agent the moment one of their own utterances (or a passed window) breaks a rule."""

    type: Literal["compliance"]
    call_id: str
    alert: ComplianceAlert


class TranscriptEvent(BaseModel):
    type: Literal["transcript"]
    call_id: str
    speaker: Literal["customer", "agent"]
    text: str
    timestamp: float
    is_final: bool
    utterance_id: str | None = None


class CallSummary(BaseModel):
    call_id: str
    agent_id: str
    customer: dict[str, Any]
    team: str | None = None
    started_at: float
    last_activity: float
    call_time: float
    intent: str
    intent_confidence: float
    sentiment: float
    sentiment_trend: str
    alert_count: int
    process: str | None = None


class CallStartedEvent(BaseModel):
    type: Literal["call_started"]
    call: CallSummary


class CallUpdateEvent(BaseModel):
    type: Literal["call_update"]
    call: CallSummary


class CallEndedEvent(BaseModel):
    type: Literal["call_ended"]
    call_id: str
    agent_id: str
    reason: str
    duration: float


class AlertEvent(BaseModel):
    """Supervisor alert: once per condition episode, never dropped by backpressure.

    Call alerts carry the call, agent and call time; an ``emerging_issue`` (analytics) is
    about many calls: ``call_id``/``agent_id``/``timestamp`` are null and it carries
    ``detected_at`` and the issue's label, terms and samples."""

    model_config = ConfigDict(extra="allow")

    type: Literal["alert"]
    alert_id: str
    call_id: str | None
    agent_id: str | None
    kind: Literal["sentiment_declining", "negative_sentiment", "compliance_breach", "emerging_issue"]
    severity: Literal["low", "medium", "high"]
    message: str
    timestamp: float | None = Field(
        description="Call time of the condition; null for alerts not about one call."
    )
    rule_id: str | None = None


class SnapshotEvent(BaseModel):
    """First frame on a supervisor or agent socket: the live calls it may see."""

    type: Literal["snapshot"]
    calls: list[CallSummary]


class StartedAck(BaseModel):
    """Answer to ``start``; ``resumed`` is true when a reconnecting softphone picked up a live call."""

    type: Literal["started"]
    call_id: str
    resumed: bool


class CallStateEvent(BaseModel):
    """Sent to a (re)connecting agent widget or a watching supervisor: the call so far."""

    type: Literal["call_state"]
    call: CallSummary
    transcript: list[TranscriptEvent]
    last_assist: AssistEvent | None
    compliance_alerts: list[ComplianceAlert]


class EndedAck(BaseModel):
    """Answer to ``end``: sent only after the call record is durably stored."""

    type: Literal["ended"]
    call_id: str
    stored: bool
    utterances: int


class ErrorEvent(BaseModel):
    type: Literal["error"]
    code: str
    message: str
    field: str | None = None
    utterance_id: str | None = None


SERVER_EVENT_MODELS: dict[str, type[BaseModel]] = {
    "assist": AssistEvent,
    "compliance": ComplianceEvent,
    "transcript": TranscriptEvent,
    "call_started": CallStartedEvent,
    "call_update": CallUpdateEvent,
    "call_ended": CallEndedEvent,
    "alert": AlertEvent,
    "snapshot": SnapshotEvent,
    "call_state": CallStateEvent,
    "started": StartedAck,
    "ended": EndedAck,
    "error": ErrorEvent,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every message, client and server side, keyed by ``type``."""
    schemas: dict[str, dict[str, Any]] = {}
    for name, model in {**CLIENT_FRAME_TYPES, **SERVER_EVENT_MODELS}.items():
        schemas[name] = model.model_json_schema()
    return schemas
