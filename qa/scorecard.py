"""The scorecard of one call and the arithmetic shared by every scorer.

Scorers (evidence, LLM) only judge criteria; weighting, the overall score, coaching
opportunities, positive behaviours, violations and the calibration offset are computed
here the same way for all of them.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from qa.rubric import Rubric


class Evidence(BaseModel):
    """One utterance that decided a criterion (index into the stored transcript)."""

    index: int
    speaker: str
    text: str
    timestamp: float | None = None
    similarity: float | None = None
    note: str | None = None


class CriterionResult(BaseModel):
    id: str
    category: str
    description: str
    applicable: bool = True
    score: float | None = Field(default=None, ge=0, le=1, description="0..1; None when not applicable.")
    passed: bool | None = None
    detail: str = ""
    evidence: list[Evidence] = Field(default_factory=list)


class CoachingItem(BaseModel):
    category: str
    criterion: str
    message: str
    tip: str = ""
    score: float | None = None
    points_lost: float = 0.0
    evidence: list[Evidence] = Field(default_factory=list)


class Violation(BaseModel):
    rule_id: str
    kind: str
    severity: str
    message: str
    timestamp: float
    resolved: bool = False
    utterance_id: str | None = None
    evidence: Evidence | None = None


class Scorecard(BaseModel):
    call_id: str
    agent_id: str
    team: str | None = None
    primary_intent: str | None = None
    ended_at: float | None = None
    scored_at: float = Field(default_factory=time.time)
    scorer: Literal["evidence", "llm"] = "evidence"
    fallback_reason: str | None = None
    rubric: str = ""
    overall_score: float = Field(ge=0, le=100, description="Calibrated: raw score + agent offset, clamped.")
    raw_overall_score: float = Field(ge=0, le=100)
    calibration_offset: float = 0.0
    category_scores: dict[str, float | None]
    criteria: list[CriterionResult]
    coaching_opportunities: list[CoachingItem] = Field(default_factory=list)
    compliance_violations: list[Violation] = Field(default_factory=list)
    positive_behaviors: list[CoachingItem] = Field(default_factory=list)
    hold_procedure_score: float | None = Field(
        default=None, description="Share of holds (0-100) that came after asking permission; None: no hold."
    )
    holds: int = 0
    turned_negative: Evidence | None = Field(
        default=None, description="The first customer utterance at or below the negative threshold."
    )

    def summary(self) -> dict[str, Any]:
        """What the supervisor channel and list endpoints carry."""
        return {
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "team": self.team,
            "primary_intent": self.primary_intent,
            "ended_at": self.ended_at,
            "scored_at": self.scored_at,
            "scorer": self.scorer,
            "overall_score": self.overall_score,
            "raw_overall_score": self.raw_overall_score,
            "category_scores": self.category_scores,
            "violations": len([v for v in self.compliance_violations if not v.resolved]),
            "coaching": [c.message for c in self.coaching_opportunities[:3]],
        }


def clamp_score(value: float) -> float:
    return max(0.0, min(100.0, value))


def assemble(
    record: dict[str, Any],
    rubric: Rubric,
    results: list[CriterionResult],
    *,
    offset: float = 0.0,
    scorer: Literal["evidence", "llm"] = "evidence",
    fallback_reason: str | None = None,
) -> Scorecard:
    """Weight criterion results into category and overall scores and build the scorecard."""
    by_id = {r.id: r for r in results}
    category_scores: dict[str, float | None] = {}
    coaching: list[CoachingItem] = []
    positive: list[CoachingItem] = []
    for category in rubric.categories:
        applicable = [
            (c, by_id[c.id]) for c in category.criteria if c.id in by_id and by_id[c.id].score is not None
        ]
        weight_sum = sum(c.weight for c, _ in applicable)
        if not applicable or weight_sum == 0:
            category_scores[category.id] = None
            continue
        score = sum(c.weight * (r.score or 0.0) for c, r in applicable) / weight_sum
        category_scores[category.id] = round(100 * score, 1)
        for criterion, result in applicable:
            share = category.weight * criterion.weight / weight_sum
            if result.passed:
                positive.append(
                    CoachingItem(
                        category=category.id,
                        criterion=criterion.id,
                        message=criterion.praise or criterion.description,
                        score=result.score,
                        evidence=result.evidence,
                    )
                )
            else:
                coaching.append(
                    CoachingItem(
                        category=category.id,
                        criterion=criterion.id,
                        message=f"{category.name}: {criterion.description.lower()} — not met"
                        + (f" ({result.detail})" if result.detail else ""),
                        tip=criterion.coaching,
                        score=result.score,
                        points_lost=round(100 * share * (1 - (result.score or 0.0)), 2),
                        evidence=result.evidence,
                    )
                )
    scored = {k: v for k, v in category_scores.items() if v is not None}
    weights = rubric.weights
    total_weight = sum(weights[k] for k in scored)
    raw = sum(weights[k] * v for k, v in scored.items()) / total_weight if total_weight else 0.0
    raw = round(clamp_score(raw), 1)
    holds = record.get("holds") or []
    hold_score = (
        round(100 * sum(1 for h in holds if h.get("permission_asked")) / len(holds), 1) if holds else None
    )
    coaching.sort(key=lambda item: -item.points_lost)
    return Scorecard(
        call_id=record["call_id"],
        agent_id=record["agent_id"],
        team=record.get("team"),
        primary_intent=record.get("primary_intent"),
        ended_at=record.get("ended_at"),
        scorer=scorer,
        fallback_reason=fallback_reason,
        rubric=f"{rubric.name} v{rubric.version}",
        overall_score=round(clamp_score(raw + offset), 1),
        raw_overall_score=raw,
        calibration_offset=round(offset, 2),
        category_scores=category_scores,
        criteria=results,
        coaching_opportunities=coaching,
        compliance_violations=violations(record),
        positive_behaviors=positive,
        hold_procedure_score=hold_score,
        holds=len(holds),
        turned_negative=first_negative(record, rubric.negative_sentiment),
    )


def with_offset(card: Scorecard, offset: float) -> Scorecard:
    """The same scorecard with a (new) calibration offset applied to the raw score."""
    return card.model_copy(
        update={
            "overall_score": round(clamp_score(card.raw_overall_score + offset), 1),
            "calibration_offset": round(offset, 2),
        }
    )


# ---------------------------------------------------------------- record helpers


def evidence_of(utterance: dict[str, Any], **extra: Any) -> Evidence:
    return Evidence(
        index=int(utterance["index"]),
        speaker=str(utterance["speaker"]),
        text=str(utterance["text"]),
        timestamp=utterance.get("timestamp"),
        **extra,
    )


def utterance_for(
    record: dict[str, Any], utterance_id: str | None, timestamp: float | None, speaker: str | None = "agent"
) -> dict[str, Any] | None:
    """The utterance an alert or hold refers to: by id, else the last one at or before its time."""
    utterances = record.get("utterances") or []
    if utterance_id:
        for u in utterances:
            if u.get("utterance_id") == utterance_id:
                return u
    if timestamp is None:
        return None
    best = None
    for u in utterances:
        if (speaker is None or u["speaker"] == speaker) and u.get("timestamp", 0.0) <= timestamp + 1e-6:
            best = u
    return best


def violations(record: dict[str, Any]) -> list[Violation]:
    out = []
    for alert in record.get("compliance_alerts") or []:
        utterance = utterance_for(record, alert.get("utterance_id"), alert.get("timestamp"))
        # A missing disclosure raised by the window passing points at no agent utterance of its own.
        cite = utterance if alert.get("kind") != "missing_disclosure" or alert.get("utterance_id") else None
        out.append(
            Violation(
                rule_id=alert["rule_id"],
                kind=alert["kind"],
                severity=alert.get("severity", "medium"),
                message=alert.get("message", ""),
                timestamp=float(alert.get("timestamp", 0.0)),
                resolved=bool(alert.get("resolved")),
                utterance_id=alert.get("utterance_id"),
                evidence=evidence_of(cite) if cite else None,
            )
        )
    return out


def first_negative(record: dict[str, Any], threshold: float) -> Evidence | None:
    for u in record.get("utterances") or []:
        if u["speaker"] == "customer" and u.get("sentiment") is not None and u["sentiment"] <= threshold:
            return evidence_of(u, note=f"customer sentiment {u['sentiment']:+.2f}")
    return None
