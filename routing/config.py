"""Routing configuration: the seed's weights as defaults, every one of them configurable.

Loaded from YAML (``CALLASSIST_ROUTING_CONFIG=path.yaml``; see docs/routing.md) or built
in code. Validation errors name the field.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from assist.config import load_section
from routing.languages import ISO_639_1


class ConfigError(ValueError):
    pass


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorityWeights(_Model):
    """Queue priority (the seed's weights): how urgently a waiting call should be answered."""

    wait: float = Field(default=0.25, ge=0)
    clv: float = Field(default=0.20, ge=0)
    tier: float = Field(default=0.20, ge=0)
    severity: float = Field(default=0.15, ge=0)
    sentiment: float = Field(default=0.10, ge=0, description="Negative IVR sentiment.")
    repeat: float = Field(default=0.10, ge=0)


class MatchWeights(_Model):
    """Agent match (the seed's weights); language is a hard filter, not a weight."""

    product: float = Field(default=0.30, ge=0)
    specialization: float = Field(default=0.25, ge=0)
    skill: float = Field(default=0.15, ge=0)
    csat: float = Field(default=0.15, ge=0)
    continuity: float = Field(default=0.15, ge=0, description="The caller's previous agent.")


class Escalation(_Model):
    """Sentiment-aware escalation: very negative IVR sentiment goes to senior, high-CSAT agents."""

    sentiment_below: float = Field(default=-0.5, ge=-1, le=1)
    min_skill: int = Field(default=4, ge=1, le=5, description="Senior: skill level at least this.")
    min_csat: float = Field(default=4.5, ge=1, le=5, description="High CSAT: at least this (1-5).")
    handle_time_factor: float = Field(
        default=1.4, ge=1, description="Predicted handle time multiplier for escalated calls (for WFM)."
    )
    hold_s: float | None = Field(
        default=15.0,
        ge=0,
        description="After this wait an escalated call may take any agent (seniors still score higher); "
        "null keeps it with seniors however long it waits.",
    )


class Overflow(_Model):
    """After these waits a call's requirements widen: first product, then specialization; then
    the caller is offered a callback that keeps their place in the queue."""

    # Short by default: every requirement is dropped well before the 20 s service-level
    # threshold (the simulator shows what longer holds cost; docs/routing.md).
    product_hold_s: float = Field(default=5.0, ge=0)
    specialization_hold_s: float = Field(default=10.0, ge=0)
    callback_after_s: float | None = Field(default=120.0, gt=0, description="null: never offer.")
    hold_only_if_agent_due: bool = Field(
        default=True,
        description="Hold a call for its product/specialization only while an agent who has it is free "
        "or ends a timed wrap-up before the hold does (false: whenever such an agent is logged in).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Overflow:
        if self.specialization_hold_s < self.product_hold_s:
            raise ValueError("specialization_hold_s must be >= product_hold_s (product is dropped first)")
        return self


class RoutingConfig(_Model):
    priority: PriorityWeights = PriorityWeights()
    match: MatchWeights = MatchWeights()
    escalation: Escalation = Escalation()
    overflow: Overflow = Overflow()

    wait_cap_s: float = Field(default=600.0, gt=0, description="The seed's wait term saturates here.")
    clv_cap: float = Field(default=50_000.0, gt=0, description="The seed's CLV term saturates here.")
    tiers: dict[str, float] = Field(
        default_factory=lambda: {"standard": 0.25, "silver": 0.5, "gold": 0.75, "platinum": 1.0},
        description="Tier name -> score in [0, 1]; callers with another tier are rejected.",
    )
    severity: dict[str, float] = Field(
        default_factory=lambda: {
            "fraud": 1.0,
            "outage": 0.9,
            "complaint": 0.8,
            "cancellation": 0.8,
            "technical": 0.6,
            "billing": 0.5,
            "sales": 0.3,
            "general": 0.2,
        },
        description="Issue category -> severity in [0, 1].",
    )
    default_severity: float = Field(default=0.5, ge=0, le=1, description="For categories not listed.")
    match_weight: float = Field(
        default=1.0,
        ge=0,
        description="How much the agent match counts against queue priority when an agent picks a call.",
    )
    aging_bound_s: float | None = Field(
        default=240.0,
        gt=0,
        description=(
            "No call is ever passed over for a call that arrived more than this many seconds after it "
            "(null disables aging: low-priority callers can starve)."
        ),
    )
    wrap_up_s: float = Field(default=30.0, ge=0, description="Default timed wrap-up after a call.")
    languages: frozenset[str] = Field(
        default=ISO_639_1, description="Accepted language codes (ISO 639-1 by default)."
    )
    tick_s: float = Field(default=1.0, gt=0, le=60, description="Longest sleep of the live dispatcher.")
    max_queued: int = Field(default=50_000, ge=1, description="New calls beyond this are refused (503).")

    @model_validator(mode="after")
    def _scores_in_range(self) -> RoutingConfig:
        for name, table in (("tiers", self.tiers), ("severity", self.severity)):
            for key, value in table.items():
                if not 0 <= value <= 1:
                    raise ValueError(f"{name}.{key} must be within [0, 1], got {value}")
        if not self.tiers:
            raise ValueError("tiers must name at least one tier")
        return self

    @property
    def static_priority_max(self) -> float:
        """Largest priority a call can get from everything except its wait."""
        p = self.priority
        return p.clv + p.tier + p.severity + p.sentiment + p.repeat

    @property
    def match_max(self) -> float:
        m = self.match
        return m.product + m.specialization + m.skill + m.csat + m.continuity

    @property
    def aging_rate(self) -> float:
        """Score per second of waiting, chosen so that ``aging_bound_s`` is a proven bound:
        the rest of a score (static priority + weighted match) differs by at most
        ``static_priority_max + match_weight * match_max`` between two calls, and the seed's
        wait term only favours the older call, so after ``aging_bound_s`` of extra waiting the
        older call outranks the newer one for every agent."""
        if self.aging_bound_s is None:
            return 0.0
        spread = self.static_priority_max + self.match_weight * self.match_max
        return spread / self.aging_bound_s if spread > 0 else 0.0

    @property
    def overtaking_bound_s(self) -> float:
        return self.aging_bound_s if self.aging_bound_s is not None else math.inf

    @classmethod
    def load(cls, path: Path | str | None) -> RoutingConfig:
        if path is None:
            return cls()
        return load_section(cls, path, "routing", ConfigError)
