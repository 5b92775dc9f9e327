"""QA settings, read once from the environment (prefix CALLASSIST_QA_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from qa.llm import LLMSettings


class QASettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLASSIST_QA_", env_file=".env", extra="ignore")

    rubric: Path | None = Field(default=None, description="Rubric YAML; the bundled default when unset.")
    worker: bool = Field(default=True, description="Score ended calls inside `callassist serve`.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Calls scored at once per process.")
    claim_idle_ms: int = Field(default=60_000, ge=10, description="Re-claim entries a dead worker left.")
    max_tries: int = Field(default=5, ge=1, description="Deliveries before an entry goes to dead letters.")
    min_agent_samples: int = Field(
        default=3, ge=1, description="Calibrated calls before an agent's own offset."
    )
    llm_url: str | None = Field(default=None, description="OpenAI-compatible base URL; unset: no LLM judge.")
    llm_model: str = Field(default="qa-judge", description="Model name sent to the LLM endpoint.")
    llm_api_key: SecretStr | None = Field(default=None, description="Bearer key for the LLM endpoint.")
    llm_timeout_s: float = Field(default=30.0, gt=0, description="Per request; then the evidence scorer.")
    llm_max_retries: int = Field(default=2, ge=0, le=10, description="Retries of a failed LLM request.")

    def llm(self) -> LLMSettings | None:
        if not self.llm_url:
            return None
        return LLMSettings(
            base_url=self.llm_url,
            model=self.llm_model,
            api_key=self.llm_api_key,
            timeout_s=self.llm_timeout_s,
            max_retries=self.llm_max_retries,
        )
