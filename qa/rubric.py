"""The QA rubric: categories, weights, criteria and how each criterion is checked.

Loaded from YAML (``qa/rubric.yaml`` ships as the default) and validated here, so a QA
manager edits weights, criteria and exemplars without code. Errors name the file and field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_RUBRIC = Path(__file__).resolve().parent / "rubric.yaml"

Check = Literal[
    "utterance",
    "absence",
    "empathy_after_negative",
    "customer_name",
    "sentiment_outcome",
    "alerts",
    "holds",
]
SEMANTIC_CHECKS = {"utterance", "absence", "empathy_after_negative"}


class RubricError(ValueError):
    pass


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Model):
    """Where in the call a criterion looks. Turns count agent turns; from/to are fractions of
    the call's utterances (0 = first, 1 = last)."""

    first_turns: int | None = Field(default=None, ge=1)
    last_turns: int | None = Field(default=None, ge=1)
    start: float = Field(default=0.0, ge=0, le=1, alias="from")
    end: float = Field(default=1.0, ge=0, le=1, alias="to")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start >= self.end:
            raise ValueError("window 'from' must be before 'to'")
        return self


class Criterion(_Model):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str
    check: Check
    weight: float = Field(default=1.0, gt=0)
    speaker: Literal["agent", "customer"] = "agent"
    window: Window = Field(default_factory=Window)
    exemplars: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    threshold: float | None = Field(default=None, ge=0, le=1)
    margin: float | None = Field(default=None, ge=0, le=1)
    count: int = Field(default=1, ge=1, description="Distinct matching utterances needed for full credit.")
    reply_turns: int = Field(default=2, ge=1)
    last_turns: int = Field(default=2, ge=1)
    low: float = Field(default=-0.4, ge=-1, le=1)
    high: float = Field(default=0.3, ge=-1, le=1)
    kinds: list[str] = Field(default_factory=list)
    rule_ids: list[str] = Field(default_factory=list)
    coaching: str = ""
    praise: str = ""

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return patterns

    @model_validator(mode="after")
    def _complete(self) -> Criterion:
        if self.check in SEMANTIC_CHECKS and not (self.exemplars or self.patterns):
            raise ValueError(f"criterion {self.id!r}: check {self.check!r} needs exemplars or patterns")
        if self.check == "alerts" and not (self.kinds or self.rule_ids):
            raise ValueError(f"criterion {self.id!r}: check 'alerts' needs kinds or rule_ids")
        if self.check == "sentiment_outcome" and self.low >= self.high:
            raise ValueError(f"criterion {self.id!r}: 'low' must be below 'high'")
        return self


class Category(_Model):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    weight: float = Field(gt=0)
    criteria: list[Criterion] = Field(min_length=1)


class Rubric(_Model):
    version: int | str = 1
    name: str = "rubric"
    semantic_threshold: float = Field(default=0.55, ge=0, le=1)
    semantic_margin: float = Field(default=0.15, ge=0, le=1)
    pass_mark: float = Field(default=0.5, gt=0, le=1)
    category_pass_mark: float = Field(default=70, ge=0, le=100)
    negative_sentiment: float = Field(default=-0.3, ge=-1, le=1)
    bands: list[float] = Field(
        default_factory=lambda: [60.0, 75.0, 90.0],
        description="Cut points of the ordinal score bands compared by weighted kappa in calibration.",
    )
    categories: list[Category] = Field(min_length=1)
    source: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        ids = [c.id for c in self.categories]
        if len(set(ids)) != len(ids):
            raise ValueError("category ids must be unique")
        criteria = [c.id for cat in self.categories for c in cat.criteria]
        duplicates = sorted({c for c in criteria if criteria.count(c) > 1})
        if duplicates:
            raise ValueError(f"criterion ids must be unique across the rubric: {duplicates}")
        overlap = set(ids) & set(criteria)
        if overlap:
            raise ValueError(f"a category and a criterion share an id: {sorted(overlap)}")
        total = sum(c.weight for c in self.categories)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"category weights must add up to 1.0 (they add up to {total:.4f})")
        return self

    @property
    def weights(self) -> dict[str, float]:
        return {c.id: c.weight for c in self.categories}

    def criteria(self) -> list[tuple[Category, Criterion]]:
        return [(cat, crit) for cat in self.categories for crit in cat.criteria]

    def criterion_ids(self) -> list[str]:
        return [crit.id for _, crit in self.criteria()]

    def threshold(self, criterion: Criterion) -> float:
        return criterion.threshold if criterion.threshold is not None else self.semantic_threshold

    def margin(self, criterion: Criterion) -> float:
        return criterion.margin if criterion.margin is not None else self.semantic_margin

    @classmethod
    def load(cls, path: Path | str | None = None) -> Rubric:
        path = Path(path) if path else DEFAULT_RUBRIC
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise RubricError(f"rubric file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise RubricError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise RubricError(f"{path}: a rubric is a YAML mapping")
        raw["source"] = str(path.resolve())
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise RubricError(f"{path}: invalid rubric:\n{exc}") from None
