"""Caller and agent profiles (the seed's fields), agent states, and the records the state
backends keep. Pydantic checks types and ranges; checks that need the configuration or the
current agents (language, tier, previous agent) live in ``routing.validation``."""

from __future__ import annotations

import enum
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class AgentStatus(enum.StrEnum):
    AVAILABLE = "available"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"  # timed: the agent is available again at ``wrap_until``
    OFFLINE = "offline"


class CallState(enum.StrEnum):
    QUEUED = "queued"
    ASSIGNED = "assigned"
    ABANDONED = "abandoned"


def _code(value: str) -> str:
    return value.strip().lower()


def _language(value: str) -> str:
    """'en', 'EN', 'en-US' and 'en_GB' all name English: routing matches the primary subtag."""
    return _code(value).replace("_", "-").split("-", 1)[0]


class _Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CallerProfile(_Profile):
    """Who is calling and why (from the IVR / CRM lookup)."""

    call_id: str = Field(default_factory=lambda: f"c-{uuid.uuid4().hex[:12]}", min_length=1, max_length=128)
    customer_id: str | None = Field(default=None, max_length=128)
    language: str = Field(min_length=2, max_length=35)
    product: str | None = Field(default=None, max_length=64)
    issue_category: str | None = Field(default=None, max_length=64)
    tier: str = Field(default="standard", max_length=32)
    clv: float = Field(default=0.0, ge=0, description="Customer lifetime value (currency units).")
    ivr_sentiment: float = Field(default=0.0, ge=-1, le=1)
    wait_start: float | None = Field(default=None, description="Unix time the caller started waiting.")
    repeat_caller: bool = False
    previous_agent_id: str | None = Field(default=None, max_length=128)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return _language(value)

    @field_validator("product", "issue_category", "tier")
    @classmethod
    def _codes(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else _code(value)


class AgentProfile(_Profile):
    """What an agent can do; status is kept separately (it changes all day, the profile doesn't)."""

    agent_id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=128)
    languages: list[str] = Field(min_length=1, max_length=32)
    products: list[str] = Field(default_factory=list, max_length=256)
    specializations: list[str] = Field(default_factory=list, max_length=256)
    skill_level: int = Field(default=3, ge=1, le=5)
    avg_handle_time: float = Field(default=360.0, gt=0, le=86_400, description="Seconds.")
    csat: float = Field(default=4.0, ge=1, le=5)

    @field_validator("languages")
    @classmethod
    def _languages(cls, values: list[str]) -> list[str]:
        return sorted({_language(v) for v in values})

    @field_validator("products", "specializations")
    @classmethod
    def _codes(cls, values: list[str]) -> list[str]:
        return sorted({_code(v) for v in values if v.strip()})


class AgentRecord(BaseModel):
    """An agent as the state backend keeps it: profile + status, versioned per change."""

    model_config = ConfigDict(frozen=True)

    profile: AgentProfile
    status: AgentStatus = AgentStatus.OFFLINE
    call_id: str | None = None
    status_since: float = 0.0
    idle_since: float = 0.0  # when the agent last became free (longest-idle tie-break)
    wrap_until: float = 0.0
    version: int = 0

    @property
    def agent_id(self) -> str:
        return self.profile.agent_id

    def free_at(self, now: float) -> bool:
        """Available, or in a wrap-up that has run out."""
        if self.status is AgentStatus.AVAILABLE:
            return True
        return self.status is AgentStatus.WRAP_UP and self.wrap_until <= now

    def idle_from(self) -> float:
        return self.wrap_until if self.status is AgentStatus.WRAP_UP else self.idle_since

    def public(self, now: float) -> dict[str, Any]:
        effective = AgentStatus.AVAILABLE if self.free_at(now) else self.status
        return {
            **self.profile.model_dump(),
            "status": effective.value,
            "call_id": self.call_id,
            "status_since": self.status_since,
            "idle_s": round(now - self.idle_from(), 3) if effective is AgentStatus.AVAILABLE else None,
            "wrap_until": self.wrap_until if self.status is AgentStatus.WRAP_UP else None,
            "version": self.version,
        }


class CallRecord(BaseModel):
    """A call as the state backend keeps it."""

    model_config = ConfigDict(frozen=True)

    profile: CallerProfile
    state: CallState = CallState.QUEUED
    enqueued_at: float = 0.0
    wait_start: float = 0.0
    seq: int = 0  # arrival order, the last tie-break
    agent_id: str | None = None
    assigned_at: float | None = None
    ended_at: float | None = None
    callback_offered: bool = False
    callback: bool = False  # the caller accepted a callback and hung up; their place is kept
    callback_number: str | None = None
    decision: dict[str, Any] | None = None
    version: int = 0

    @property
    def call_id(self) -> str:
        return self.profile.call_id

    def public(self, now: float) -> dict[str, Any]:
        end = self.assigned_at or self.ended_at or now
        return {
            "call_id": self.call_id,
            "state": self.state.value,
            "caller": self.profile.model_dump(),
            "waited_s": round(max(0.0, end - self.wait_start), 3),
            "agent_id": self.agent_id,
            "callback_offered": self.callback_offered,
            "callback": self.callback,
            "decision": self.decision,
            "version": self.version,
        }
