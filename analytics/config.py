"""Analytics configuration: every window, threshold and weight, with validation that names
the field. Loaded from YAML (``CALLASSIST_ANALYTICS_CONFIG=analytics.yaml``) or built in code.

Where the seed's own value could not be recovered (only the opening of the seed post is
available) the default is our choice and says so in docs/analytics.md.
"""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assist.config import load_section

DAY_S = 86_400.0


class AnalyticsConfigError(ValueError):
    pass


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepeatConfig(_Model):
    lookback_days: float = Field(default=14.0, gt=0, le=365, description="The seed's lookback.")
    threshold: int = Field(default=2, ge=2, le=100, description="Calls in the lookback that make a repeat.")
    same_issue: bool = Field(
        default=True,
        description="Group by issue (semantic cluster, else intent); false: by category label (the seed).",
    )


class EmbeddingClustering(_Model):
    linkage: Literal["average", "complete", "single"] = "average"
    distance_threshold: float = Field(
        default=0.45, gt=0, lt=2, description="Cosine distance at which clusters stop merging."
    )


class TfidfClustering(_Model):
    """The seed's method: TF-IDF (1-2 grams) + DBSCAN with cosine distance."""

    eps: float = Field(default=0.5, gt=0, lt=1)
    min_samples: int = Field(default=5, ge=1)
    max_features: int = Field(default=50_000, ge=100)


class ClusteringConfig(_Model):
    method: Literal["embedding", "tfidf"] = Field(
        default="embedding",
        description="embedding (default: better on BANKING77, see docs) or tfidf (the seed).",
    )
    embedding: EmbeddingClustering = EmbeddingClustering()
    tfidf: TfidfClustering = TfidfClustering()
    fit_sample: int = Field(
        default=5000, ge=50, le=20_000, description="Calls the clusters are fitted on (memory grows n^2)."
    )
    recent_share: float = Field(
        default=0.4, ge=0, le=1, description="Share of the fit sample drawn from the last day (new topics)."
    )
    min_cluster_size: int = Field(default=5, ge=2, description="Smaller groups in the sample are noise.")
    assign_min_similarity: float = Field(
        default=0.5, ge=-1, le=1, description="A call joins its nearest cluster only this close (cosine)."
    )
    match_similarity: float = Field(
        default=0.85,
        ge=0,
        le=1,
        description="A refitted cluster keeps an old id when its centroid is this close.",
    )
    refit_hours: float = Field(default=6.0, gt=0, description="Refit the clusters at most this often.")
    top_terms: int = Field(default=8, ge=1, le=50)
    samples: int = Field(default=3, ge=0, le=20, description="Sample summaries per cluster.")


class ChurnWeights(_Model):
    """The seed's five factors. Weights are our choice (the seed's could not be recovered)."""

    call_acceleration: float = Field(default=0.20, ge=0)
    negative_sentiment: float = Field(default=0.20, ge=0)
    unresolved_repeats: float = Field(default=0.25, ge=0)
    cancellation_intent: float = Field(default=0.25, ge=0)
    renewal_soon: float = Field(default=0.10, ge=0)


class ChurnConfig(_Model):
    weights: ChurnWeights = ChurnWeights()
    high: float = Field(default=0.7, gt=0, le=1, description="The seed's high-urgency threshold.")
    medium: float = Field(default=0.4, gt=0, le=1, description="The seed's medium-urgency threshold.")
    window_days: float = Field(
        default=30.0, gt=0, description="Sentiment, repeats and intent look back this far."
    )
    recent_days: float = Field(default=14.0, gt=0, description="Call rate now ...")
    baseline_days: float = Field(default=60.0, gt=0, description="... against the rate over the days before.")
    acceleration_full: float = Field(default=3.0, gt=1, description="Rate ratio that scores the factor 1.")
    min_recent_calls: int = Field(
        default=2, ge=1, description="Fewer recent calls never count as acceleration."
    )
    sentiment_full: float = Field(default=-0.5, lt=0, description="Mean sentiment that scores the factor 1.")
    repeats_full: int = Field(default=2, ge=1, description="Unresolved repeats that score the factor 1.")
    renewal_days: float = Field(default=30.0, gt=0, description="The seed's renewal window.")

    @model_validator(mode="after")
    def _ordered(self) -> ChurnConfig:
        if self.medium >= self.high:
            raise ValueError("medium must be below high")
        return self


class RetentionConfig(_Model):
    enabled: bool = True
    clv_floor: float = Field(default=1000.0, ge=0, description="Only customers worth at least this.")
    cooling_off_days: float = Field(
        default=30.0, gt=0, description="At most one case per customer per period."
    )
    specialization: str = Field(
        default="retention", min_length=1, description="Routing issue category/skill."
    )
    require_specialist: bool = Field(
        default=True,
        description="Hold a case until an agent with the specialization is free (routing alone would give "
        "a callback to any free agent); false: hand it to routing at once.",
    )
    default_language: str = "en"
    dispatch_interval_s: float = Field(default=2.0, gt=0, le=300)


class EmergingConfig(_Model):
    baseline_days: int = Field(
        default=7, ge=2, le=60, description="Trailing days the share is compared with."
    )
    min_calls: int = Field(default=20, ge=1, description="Calls in the cluster today before it can alert.")
    ratio: float = Field(default=2.0, gt=1, description="Today's share at least this times the baseline.")
    min_increase: float = Field(
        default=0.02, ge=0, le=1, description="... and at least this many points more."
    )
    z: float = Field(default=4.0, gt=0, description="... and this many binomial standard errors above it.")
    share_floor: float = Field(
        default=0.002, gt=0, lt=1, description="Baseline share never counted below this."
    )
    recent_hours: float = Field(
        default=3.0, ge=0, le=24, description="Also test the last hours alone (0: only the day so far)."
    )


class KpiConfig(_Model):
    period_days: float = Field(default=30.0, gt=0)
    fcr_days: float = Field(default=7.0, gt=0, description="No repeat about the same issue within this.")
    service_level_s: float = Field(default=20.0, gt=0, description="Answered within this many seconds.")
    top_clusters: int = Field(default=10, ge=1, le=100)


class AnalyticsConfig(_Model):
    repeats: RepeatConfig = RepeatConfig()
    clustering: ClusteringConfig = ClusteringConfig()
    churn: ChurnConfig = ChurnConfig()
    retention: RetentionConfig = RetentionConfig()
    emerging: EmergingConfig = EmergingConfig()
    kpis: KpiConfig = KpiConfig()
    window_days: float = Field(default=90.0, gt=0, le=730, description="History an analysis run reads.")
    timezone: str | None = Field(
        default=None, description="IANA zone whose midnight starts a day (default: the server's local time)."
    )
    cancellation_intents: tuple[str, ...] = ("cancellation",)
    cancellation_patterns: tuple[str, ...] = (
        r"\bcancel",
        r"\bclose (?:my|the) account",
        r"\bterminate",
        r"\bleav(?:e|ing) (?:you|northwind)",
        r"\bswitch(?:ing)? (?:to|provider)",
        r"\bport(?:ing)? (?:my number )?out",
    )

    @model_validator(mode="after")
    def _zone(self) -> AnalyticsConfig:
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown timezone {self.timezone!r} (use an IANA name such as Europe/London)"
                ) from None
        return self

    @property
    def tz(self) -> tzinfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None

    @classmethod
    def load(cls, path: Path | str | None) -> AnalyticsConfig:
        if path is None:
            return cls()
        return load_section(cls, path, "analytics", AnalyticsConfigError)


class AnalyticsSettings(BaseSettings):
    """Process settings (environment ``CALLASSIST_ANALYTICS_*``)."""

    model_config = SettingsConfigDict(env_prefix="CALLASSIST_ANALYTICS_", env_file=".env", extra="ignore")

    config: Path | None = Field(default=None, description="Analytics YAML; the defaults when unset.")
    interval_s: float = Field(
        default=3600.0, ge=0, description="Analysis runs this often (0: only on demand)."
    )
    sync_interval_s: float = Field(default=5.0, gt=0, description="New stored calls are ingested this often.")
    sync_batch: int = Field(default=256, ge=1, le=10_000, description="Stored calls ingested per step.")
