"""Optional LLM judge: an OpenAI-compatible chat endpoint judges the rubric's soft criteria.

Off unless configured (``CALLASSIST_QA_LLM_URL``). Only the criteria that need reading
comprehension (utterance, absence, empathy checks) go to the model; facts (compliance
alerts, holds, closing sentiment, the customer's name) are taken from the record as the
evidence scorer does. The answer must be JSON matching ``JudgeAnswer`` and cite utterance
indices that exist; a timeout, an HTTP error, malformed JSON or a schema violation is
retried a bounded number of times, then the call is scored by the evidence scorer instead
(``fallback_reason`` says why). Stored transcripts are already PII-redacted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from assist.pii import redact
from qa.evidence import AsyncEvidenceScorer, CallJudgement
from qa.rubric import SEMANTIC_CHECKS, Rubric
from qa.scorecard import CriterionResult, Scorecard, assemble, evidence_of

log = logging.getLogger(__name__)
MAX_TRANSCRIPT_CHARS = 60_000


class Judge(Protocol):
    """Anything that turns a stored call record into a scorecard."""

    async def score(self, record: dict[str, Any]) -> Scorecard: ...


class LLMSettings(BaseModel):
    base_url: str = Field(description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1")
    model: str = "qa-judge"
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.5, ge=0)
    temperature: float = Field(default=0.0, ge=0, le=2)
    json_mode: bool = Field(default=True, description="Send response_format: json_object.")


class JudgedCriterion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    score: float = Field(ge=0, le=1)
    evidence: list[int] = Field(
        default_factory=list, description="Indices of the utterances that decided it."
    )
    rationale: str = Field(default="", max_length=2000)


class JudgeAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    criteria: list[JudgedCriterion]


class JudgeError(Exception):
    """One failed attempt (the reason is recorded as the fallback reason)."""


SYSTEM_PROMPT = (
    "You are a contact-center quality reviewer. Judge the agent in the transcript against each "
    "criterion. Score each from 0 (not done) to 1 (fully done), cite the indices of the utterances "
    "that decided it, and give a one-sentence rationale. Answer with JSON only, exactly of the form "
    '{"criteria": [{"id": "...", "score": 0.0, "evidence": [0], "rationale": "..."}]} '
    "with one entry per criterion id given."
)


class LLMJudge:
    def __init__(
        self,
        settings: LLMSettings,
        rubric: Rubric,
        fallback: AsyncEvidenceScorer,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.rubric = rubric
        self.fallback = fallback
        headers = (
            {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
        )
        self._client = client or httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"), headers=headers, timeout=settings.timeout_s
        )
        self._owns_client = client is None
        self.soft = [(cat, crit) for cat, crit in rubric.criteria() if crit.check in SEMANTIC_CHECKS]

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def score(self, record: dict[str, Any]) -> Scorecard:
        reason = "no attempt"
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                await asyncio.sleep(self.settings.backoff_s * 2 ** (attempt - 1))
            try:
                answer = await self._ask(record)
                return self._scorecard(record, answer)
            except JudgeError as exc:
                reason = str(exc)
                log.warning("QA LLM judge, call %s, try %d: %s", record.get("call_id"), attempt + 1, reason)
        card = await self.fallback.score(record)
        return card.model_copy(update={"fallback_reason": f"llm judge failed: {reason}"})

    # ------------------------------------------------------------------ internals

    def messages(self, record: dict[str, Any]) -> list[dict[str, str]]:
        criteria = [
            {
                "id": crit.id,
                "category": cat.name,
                "criterion": crit.description,
                "examples": crit.exemplars[:3],
            }
            for cat, crit in self.soft
        ]
        lines = [
            # Stored transcripts are redacted already; records imported from elsewhere may not be.
            f"[{u['index']}] {u['speaker'].upper()}: {redact(u['text'])}"
            for u in record.get("utterances") or []
        ]
        transcript = "\n".join(lines)[:MAX_TRANSCRIPT_CHARS]
        user = f"Criteria:\n{json.dumps(criteria, ensure_ascii=False)}\n\nTranscript:\n{transcript}"
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]

    async def _ask(self, record: dict[str, Any]) -> JudgeAnswer:
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": self.messages(record),
            "temperature": self.settings.temperature,
        }
        if self.settings.json_mode:
            body["response_format"] = {"type": "json_object"}
        try:
            response = await self._client.post("/chat/completions", json=body)
        except httpx.TimeoutException:
            raise JudgeError(f"timeout after {self.settings.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise JudgeError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise JudgeError(f"HTTP {response.status_code}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
            answer = JudgeAnswer.model_validate(json.loads(_strip_fences(content)))
        except (ValueError, KeyError, IndexError, TypeError, ValidationError) as exc:
            raise JudgeError(f"invalid answer: {type(exc).__name__}: {str(exc)[:200]}") from None
        wanted = {crit.id for _, crit in self.soft}
        got = {c.id for c in answer.criteria}
        if wanted - got:
            raise JudgeError(f"invalid answer: missing criteria {sorted(wanted - got)}")
        count = len(record.get("utterances") or [])
        for judged in answer.criteria:
            bad = [i for i in judged.evidence if not 0 <= i < count]
            if bad:
                raise JudgeError(f"invalid answer: {judged.id} cites utterances {bad} that do not exist")
        return answer

    def _scorecard(self, record: dict[str, Any], answer: JudgeAnswer) -> Scorecard:
        judged = {c.id: c for c in answer.criteria}
        utterances = record.get("utterances") or []
        facts = CallJudgement(record, {}, self.fallback.scorer)
        results: list[CriterionResult] = []
        for category, criterion in self.rubric.criteria():
            if criterion.check not in SEMANTIC_CHECKS:
                results.append(facts.judge(category.id, criterion))
                continue
            verdict = judged[criterion.id]
            results.append(
                CriterionResult(
                    id=criterion.id,
                    category=category.id,
                    description=criterion.description,
                    score=round(verdict.score, 4),
                    passed=verdict.score >= self.rubric.pass_mark,
                    detail=verdict.rationale,
                    evidence=[
                        evidence_of(utterances[i], note="cited by the LLM judge") for i in verdict.evidence
                    ],
                )
            )
        return assemble(record, self.rubric, results, scorer="llm")


def _strip_fences(content: str) -> str:
    """Models often wrap JSON in a Markdown code fence despite being told not to."""
    match = re.fullmatch(r"\s*```(?:json)?\s*(.*?)\s*```\s*", content, re.DOTALL)
    return match.group(1) if match else content
