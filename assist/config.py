"""Assist configuration: intents, knowledge base, compliance rules, playbooks, alert thresholds.

One YAML file (``callassist serve --config PATH``); any section may instead name another
YAML file relative to it. Validation errors name the file and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Severity = Literal["low", "medium", "high"]
PiiKind = Literal["card_number", "bank_account", "routing_number", "ssn", "email", "phone"]
DEMO_CONFIG = Path(__file__).resolve().parent.parent / "server" / "demo" / "config.yaml"


class ConfigError(ValueError):
    pass


M = TypeVar("M", bound=BaseModel)


def load_section(model: type[M], path: Path | str, section: str, error: type[Exception] = ConfigError) -> M:
    """``model`` from a YAML file that is either the section itself or has it under ``section:``;
    errors name the file and the first invalid field."""
    path = Path(path)
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{path}: {exc}") from None
    data = data.get(section, data) if isinstance(data, dict) else data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise error(f"{path}: {where}: {first['msg']}") from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntentSpec(_Model):
    label: str = Field(min_length=1, pattern=r"^[a-z0-9_]+$")
    description: str = ""
    examples: list[str] = Field(min_length=1)


class IntentSettings(_Model):
    threshold: float = Field(
        default=0.40, ge=0, le=1, description="Below this confidence the intent is 'unknown'."
    )
    min_similarity: float = Field(
        default=0.25,
        ge=-1,
        le=1,
        description="Context whose best example similarity is below this is 'unknown'.",
    )
    context_utterances: int = Field(default=8, ge=1, le=50)
    context_decay: float = Field(default=0.85, gt=0, le=1)
    regularization: float = Field(
        default=10.0, gt=0, description="Inverse L2 strength of the logistic regression."
    )


class KnowledgeBaseSettings(_Model):
    path: Path | None = Field(default=None, description="Folder or file of articles synced at start.")
    top_k: int = Field(default=3, ge=1, le=20)
    min_score: float = Field(default=0.35, ge=-1, le=1, description="Cosine floor of a suggestion.")
    index_dir: Path | None = Field(
        default=None, description="Where the index lives; default: a folder under the server's kb_dir."
    )
    search: Literal["hybrid", "dense", "lexical"] = "hybrid"
    min_lexical_score: float = Field(
        default=6.0, ge=0, description="BM25 score that shows a hit even below min_score."
    )
    question_margin: float = Field(
        default=0.15, ge=0, le=1, description="Extra cosine needed when only a customer phrasing matched."
    )
    rrf_k: int = Field(default=60, ge=1)
    index: Literal["auto", "flat", "ivf"] = "auto"
    ann_threshold: int = Field(default=50_000, ge=1, description="'auto': IVF from this many chunks.")
    nlist: int | None = Field(default=None, ge=1)
    nprobe: int | None = Field(default=None, ge=1)


class Matcher(_Model):
    """Matches an utterance by meaning (exemplars, cosine >= threshold) or by regular expression."""

    exemplars: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    threshold: float | None = Field(default=None, ge=0, le=1)

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
    def _not_empty(self) -> Matcher:
        if not self.exemplars and not self.patterns:
            raise ValueError("a matcher needs exemplars or patterns")
        return self


class Window(_Model):
    within_seconds: float | None = Field(default=None, gt=0)
    before: str | None = None
    at_end: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Window:
        kinds = [self.within_seconds is not None, self.before is not None, self.at_end]
        if sum(kinds) != 1:
            raise ValueError("a window is exactly one of within_seconds, before, at_end")
        return self


class DisclosureRule(Matcher):
    id: str
    description: str = ""
    severity: Severity = "medium"
    window: Window
    message: str
    remedy: str = ""


class ForbiddenRule(Matcher):
    id: str
    severity: Severity = "high"
    message: str
    remedy: str = ""


class HoldRule(_Model):
    id: str = "hold_without_permission"
    severity: Severity = "medium"
    message: str = "Customer placed on hold without asking permission"
    remedy: str = "Ask before placing a customer on hold and say how long it will take."
    hold: Matcher
    permission: Matcher
    permission_window_seconds: float = Field(default=90, gt=0)


class PiiRule(_Model):
    id: str = "pii_spoken"
    severity: Severity = "high"
    kinds: list[str] = Field(default_factory=lambda: ["card_number", "ssn", "bank_account", "routing_number"])
    message: str = "Sensitive data read aloud by the agent"
    remedy: str = "Do not read card or account numbers aloud; confirm only the last four digits."


class ComplianceConfig(_Model):
    semantic_threshold: float = Field(default=0.6, ge=0, le=1)
    required_disclosures: list[DisclosureRule] = Field(default_factory=list)
    triggers: dict[str, Matcher] = Field(default_factory=dict)
    forbidden_phrases: list[ForbiddenRule] = Field(default_factory=list)
    hold: HoldRule | None = None
    pii: PiiRule | None = None

    @model_validator(mode="after")
    def _references(self) -> ComplianceConfig:
        ids = [r.id for r in self.required_disclosures] + [r.id for r in self.forbidden_phrases]
        ids += [r.id for r in (self.hold, self.pii) if r is not None]
        duplicates = {i for i in ids if ids.count(i) > 1}
        if duplicates:
            raise ValueError(f"duplicate rule ids: {sorted(duplicates)}")
        for rule in self.required_disclosures:
            if rule.window.before and rule.window.before not in self.triggers:
                raise ValueError(
                    f"rule {rule.id!r}: window.before names unknown trigger {rule.window.before!r}"
                )
        return self


class Playbook(_Model):
    action: str
    with_article: str = "See “{title}”."
    deescalate: str | None = None
    requires_verification: bool = False


class PlaybookConfig(_Model):
    deescalate: str = (
        "Acknowledge how the customer feels, apologise for the trouble, and say what you will do next."
    )
    verify_first: str = "Verify the customer's identity before discussing the account."
    unknown: str = "Ask an open question to understand what the customer needs."
    intents: dict[str, Playbook] = Field(default_factory=dict)


class AlertSettings(_Model):
    declining_seconds: float = Field(default=60, gt=0)
    declining_max_mean: float = Field(
        default=0.05, ge=-1, le=1, description="Declining only counts while the recent mean is below this."
    )
    negative_threshold: float = Field(default=-0.5, ge=-1, le=0)
    negative_reset: float = Field(
        default=-0.2, ge=-1, le=1, description="Hysteresis: episode ends above this."
    )


class SentimentSettings(_Model):
    tuned: bool = True
    head: bool = Field(default=True, description="Stack the embedding sentiment head on VADER.")
    training_data: Path | None = Field(
        default=None, description="CSV text,label for the head; default bundled."
    )
    lexicon: dict[str, float] = Field(default_factory=dict)
    phrases: dict[str, float] = Field(default_factory=dict)


class PiiSettings(_Model):
    """Redaction of live text: applied once as an utterance arrives, before anything is
    analysed, published, stored or logged."""

    kinds: list[PiiKind] = Field(
        default_factory=lambda: ["card_number", "bank_account", "routing_number", "ssn", "email", "phone"],
        description="Kinds replaced by [KIND] (cards keep their last four digits); [] turns redaction off.",
    )
    agent_live_text: bool = Field(
        default=False,
        description="The agent's own channel carries the raw live transcript (never stored; crosses the bus).",
    )
    interim_min_digits: int = Field(
        default=6,
        ge=0,
        description="Interim text: mask any run of this many digits (a card half-spoken); 0 = off.",
    )


class AssistConfig(_Model):
    company: str = "callassist"
    intents: list[IntentSpec] = Field(min_length=2)
    intent: IntentSettings = Field(default_factory=IntentSettings)
    knowledge_base: KnowledgeBaseSettings
    compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)
    playbooks: PlaybookConfig = Field(default_factory=PlaybookConfig)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    sentiment: SentimentSettings = Field(default_factory=SentimentSettings)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    source: Path | None = None

    @field_validator("intents")
    @classmethod
    def _unique_labels(cls, intents: list[IntentSpec]) -> list[IntentSpec]:
        labels = [i.label for i in intents]
        if len(set(labels)) != len(labels):
            raise ValueError("intent labels must be unique")
        if "unknown" in labels:
            raise ValueError("'unknown' is reserved for low-confidence predictions")
        return intents

    @classmethod
    def load(cls, path: Path | str | None = None) -> AssistConfig:
        path = Path(path) if path else DEMO_CONFIG
        raw = _read_yaml(path)
        base = path.parent
        for key in ("intents", "compliance", "playbooks"):
            if isinstance(raw.get(key), str):
                included = _read_yaml(base / raw[key])
                raw[key] = included.get(key, included) if isinstance(included, dict) else included
        kb = raw.get("knowledge_base")
        if isinstance(kb, dict):
            for key in ("path", "index_dir"):
                if kb.get(key):
                    kb[key] = (base / kb[key]).resolve()
        raw["source"] = path.resolve()
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"{path}: invalid configuration:\n{exc}") from None


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
