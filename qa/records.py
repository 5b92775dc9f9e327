"""Build stored call records from scripted transcripts, through the real assist session.

Used to score transcripts that never went through a live server (``callassist qa score``,
benchmarks, labelled sets). With an ``AssistEngine`` every utterance gets the full live
analysis (embedding, intents, semantic compliance); without one, compliance falls back to
its regular expressions and sentiment to VADER, exactly as the live pipeline does when the
embedder is unavailable.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from assist.analysis import Finding, SemanticResult
from assist.compliance import CompliancePolicy
from assist.config import AssistConfig
from assist.protocol import StartFrame, UtteranceFrame
from assist.sentiment import SentimentAnalyzer, SentimentScore
from assist.session import CallSession

if TYPE_CHECKING:
    from assist.engine import AssistEngine


def _frames(utterances: Iterable[Mapping[str, Any]]) -> list[UtteranceFrame]:
    frames = []
    for i, u in enumerate(utterances):
        frames.append(
            UtteranceFrame(
                speaker=u["speaker"],
                text=u["text"],
                timestamp=float(u.get("at", u.get("timestamp", i * 4.0))),
                utterance_id=u.get("utterance_id") or f"u-{i}",
            )
        )
    return frames


def _start(
    agent_id: str, customer: Mapping[str, Any] | None, team: str | None, started_at: float
) -> StartFrame:
    return StartFrame(agent_id=agent_id, customer=dict(customer or {}), team=team, started_at=started_at)


async def record_with_engine(
    engine: AssistEngine,
    call_id: str,
    agent_id: str,
    utterances: Iterable[Mapping[str, Any]],
    *,
    customer: Mapping[str, Any] | None = None,
    team: str | None = None,
    started_at: float | None = None,
) -> dict[str, Any]:
    """The record a live call with these utterances would have stored (full analysis)."""
    started_at = started_at if started_at is not None else time.time()
    session = engine.new_session(call_id, _start(agent_id, customer, team, started_at), started_at=started_at)
    for frame in _frames(utterances):
        semantic, sentiment = await engine.analyze(frame)
        session.final(frame, semantic, sentiment)
    _, record = session.finish("completed")
    return record


class OfflineRecorder:
    """Records without the embedding model: regex compliance, VADER sentiment. Cheap enough
    to build thousands of records for a benchmark."""

    def __init__(self, config: AssistConfig) -> None:
        self.config = config
        self.policy = CompliancePolicy(config.compliance)
        self.sentiment = SentimentAnalyzer(
            config.sentiment.lexicon, config.sentiment.phrases, tuned=config.sentiment.tuned
        )

    def record(
        self,
        call_id: str,
        agent_id: str,
        utterances: Iterable[Mapping[str, Any]],
        *,
        customer: Mapping[str, Any] | None = None,
        team: str | None = None,
        started_at: float | None = None,
        primary_intent: str | None = None,
    ) -> dict[str, Any]:
        started_at = started_at if started_at is not None else time.time()
        session = CallSession(
            call_id=call_id,
            start=_start(agent_id, customer, team, started_at),
            config=self.config,
            monitor=self.policy.monitor(),
            intent_labels=[i.label for i in self.config.intents],
            started_at=started_at,
        )
        no_model: Finding[SemanticResult] = Finding("semantic", False, error="offline")
        for frame in _frames(utterances):
            score: SentimentScore = self.sentiment.score(frame.text)
            session.final(frame, no_model, Finding("sentiment", True, score))
        _, record = session.finish("completed")
        if primary_intent:
            record["primary_intent"] = primary_intent
        return record
