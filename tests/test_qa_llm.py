"""The optional LLM judge against a local OpenAI-compatible server: schema-checked answers,
timeouts, bounded retries, and fallback to the evidence scorer."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from assist.engine import AssistEngine
from qa.evidence import AsyncEvidenceScorer, EvidenceScorer
from qa.llm import LLMJudge, LLMSettings
from qa.rubric import SEMANTIC_CHECKS, Rubric
from tests.fake_llm import FakeLLM
from tests.qa_calls import EXEMPLARY, EXEMPLARY_CUSTOMER
from tests.qa_helpers import build_record

RUBRIC = Rubric.load()
SOFT = {crit.id for _, crit in RUBRIC.criteria() if crit.check in SEMANTIC_CHECKS}


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
async def record(embedder: Any, demo_config: Any, engine_parts: Any) -> AsyncIterator[dict[str, Any]]:
    engine = AssistEngine(demo_config, embedder, *engine_parts)
    engine.start()
    yield await build_record(engine, "llm-1", EXEMPLARY, customer=EXEMPLARY_CUSTOMER)
    await engine.close()


@pytest.fixture(scope="module")
async def evidence(embedder: Any) -> AsyncIterator[AsyncEvidenceScorer]:
    scorer = AsyncEvidenceScorer(EvidenceScorer(RUBRIC, embedder))
    scorer.start()
    yield scorer
    await scorer.close()


def judge(fake: FakeLLM, evidence: AsyncEvidenceScorer, script: list[str], **settings: Any) -> LLMJudge:
    fake.script = deque(script)
    fake.requests.clear()
    options: dict[str, Any] = {"timeout_s": 2.0, "max_retries": 2, "backoff_s": 0.01, **settings}
    return LLMJudge(LLMSettings(base_url=fake.url, **options), RUBRIC, evidence)


async def test_valid_answer_becomes_an_llm_scorecard(fake_llm: FakeLLM, evidence: Any, record: Any) -> None:
    """A schema-valid answer scores the soft criteria with the model's citations; facts (alerts,
    holds, closing sentiment, the customer's name) still come from the record."""
    llm = judge(fake_llm, evidence, ["ok"], api_key="sk-test")
    card = await llm.score(record)
    await llm.close()
    assert card.scorer == "llm" and card.fallback_reason is None
    assert len(fake_llm.requests) == 1 and fake_llm.requests[0]["auth"] == "Bearer sk-test"
    body = fake_llm.requests[0]["body"]
    assert body["response_format"] == {"type": "json_object"} and body["temperature"] == 0.0
    assert "[0] AGENT: Good morning" in body["messages"][1]["content"]
    last = len(record["utterances"]) - 1
    for result in card.criteria:
        if result.id in SOFT:
            assert result.score == 0.8 and [e.index for e in result.evidence] == [0, last]
            assert result.detail == f"judged {result.id}"
        else:
            assert result.detail != f"judged {result.id}"
    hold = next(c for c in card.criteria if c.id == "hold_procedure")
    assert hold.score == 1.0 and card.hold_procedure_score == 100.0


async def test_fenced_json_is_accepted(fake_llm: FakeLLM, evidence: Any, record: Any) -> None:
    """JSON wrapped in a Markdown code fence is still read."""
    llm = judge(fake_llm, evidence, ["fenced"])
    card = await llm.score(record)
    await llm.close()
    assert card.scorer == "llm"


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (["malformed"] * 3, "invalid answer: JSONDecodeError"),
        (["schema"] * 3, "invalid answer: ValidationError"),
        (["missing"] * 3, "missing criteria"),
        (["bad_index"] * 3, "do not exist"),
        (["500"] * 3, "HTTP 500"),
        (["slow"] * 3, "timeout after 0.3 s"),
    ],
)
async def test_failures_fall_back_to_the_evidence_scorer(
    fake_llm: FakeLLM, evidence: AsyncEvidenceScorer, record: Any, script: list[str], reason: str
) -> None:
    """Each failure is retried max_retries times, then the call is scored by the evidence
    scorer, with the reason recorded."""
    llm = judge(fake_llm, evidence, script, timeout_s=0.3)
    card = await llm.score(record)
    await llm.close()
    assert len(fake_llm.requests) == 3
    assert card.scorer == "evidence" and reason in (card.fallback_reason or "")
    expected = await evidence.score(record)
    assert card.overall_score == expected.overall_score


async def test_a_retry_recovers(fake_llm: FakeLLM, evidence: Any, record: Any) -> None:
    """A 500 then a timeout then a valid answer: the third try wins, no fallback."""
    llm = judge(fake_llm, evidence, ["500", "slow", "ok"], timeout_s=0.3)
    card = await llm.score(record)
    await llm.close()
    assert card.scorer == "llm" and len(fake_llm.requests) == 3


async def test_unreachable_endpoint_falls_back(evidence: Any, record: Any) -> None:
    """Nothing listening at the URL: connection errors, retries, then the evidence scorer."""
    llm = LLMJudge(
        LLMSettings(base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_s=0.01), RUBRIC, evidence
    )
    card = await llm.score(record)
    await llm.close()
    assert card.scorer == "evidence" and "ConnectError" in (card.fallback_reason or "")
