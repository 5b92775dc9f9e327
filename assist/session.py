"""One live call: pure state machine from utterances (plus their analyses) to events.

No sockets, no clock, no threads: the caller passes in analysis findings and gets back
the events to deliver and, at the end, the call record to store. Call time comes only
from utterance timestamps, so a replayed call behaves exactly like a live one.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assist.alerts import AlertTracker, SupervisorAlert
from assist.analysis import Finding, SemanticResult
from assist.compliance import ComplianceAlert, ComplianceMonitor
from assist.config import AssistConfig
from assist.intent import UNKNOWN, IntentPrediction, combine_context
from assist.nba import VERIFICATION_RULE, next_best_action
from assist.pii import mask_digit_runs, redact
from assist.protocol import StartFrame, UtteranceFrame
from assist.sentiment import SentimentScore, sentiment_trend
from kb_index.index import ArticleHit

AGENT, SUPERVISOR, CALL = "agent", "supervisor", "call"
RECENT_TRANSCRIPT = 30
ARTICLE_DECAY = 0.85


@dataclass(frozen=True, slots=True)
class Outbound:
    """An event and who gets it. Droppable events go stale and may be shed under backpressure."""

    targets: tuple[str, ...]
    payload: dict[str, Any]
    droppable: bool = False


@dataclass
class CallSession:
    call_id: str
    start: StartFrame
    config: AssistConfig
    monitor: ComplianceMonitor
    intent_labels: list[str]
    started_at: float
    process: str | None = None
    call_time: float = 0.0
    utterances: list[dict[str, Any]] = field(default_factory=list)
    assists: list[dict[str, Any]] = field(default_factory=list)
    customer_scores: list[float] = field(default_factory=list)
    sentiment_series: list[dict[str, float]] = field(default_factory=list)
    supervisor_alerts: list[dict[str, Any]] = field(default_factory=list)
    intent_history: deque[tuple[np.ndarray, float]] = field(default_factory=deque)
    intent: IntentPrediction = field(default_factory=lambda: IntentPrediction(UNKNOWN, 0.0, {}))
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_TRANSCRIPT))
    last_assist: dict[str, Any] | None = None
    article_memory: dict[str, tuple[dict[str, Any], float]] = field(default_factory=dict)
    breach_cursor: int = 0
    mood: str = "neutral"
    ended: bool = False

    def __post_init__(self) -> None:
        self.alerts = AlertTracker(self.config.alerts)
        self.intent_history = deque(maxlen=self.config.intent.context_utterances)

    @property
    def agent_id(self) -> str:
        return self.start.agent_id

    # ------------------------------------------------------------------ events in

    def begin(self) -> list[Outbound]:
        return [Outbound((AGENT, SUPERVISOR, CALL), {"type": "call_started", "call": self.summary()})]

    def interim(self, utterance: UtteranceFrame) -> list[Outbound]:
        return self.live_transcript(utterance)

    def redacted(self, utterance: UtteranceFrame) -> UtteranceFrame:
        """The utterance as everything downstream sees it: analyses, events, registry, store, logs."""
        pii = self.config.pii
        text = redact(utterance.text, pii.kinds) if pii.kinds else utterance.text
        if not utterance.is_final:
            text = mask_digit_runs(text, pii.interim_min_digits)
        return utterance if text == utterance.text else utterance.model_copy(update={"text": text})

    def live_transcript(self, utterance: UtteranceFrame) -> list[Outbound]:
        """Transcript event of an utterance; raw text only on the agent's own channel, if configured."""
        droppable = not utterance.is_final
        clean = self.redacted(utterance)
        if self.config.pii.agent_live_text and clean is not utterance:
            return [
                Outbound((AGENT,), self.transcript(utterance), droppable=droppable),
                Outbound((CALL,), self.transcript(clean), droppable=droppable),
            ]
        return [Outbound((AGENT, CALL), self.transcript(clean), droppable=droppable)]

    def final(
        self,
        utterance: UtteranceFrame,
        semantic: Finding[SemanticResult],
        sentiment: Finding[SentimentScore],
    ) -> list[Outbound]:
        self.call_time = max(self.call_time, utterance.timestamp)
        raw, utterance = utterance, self.redacted(utterance)
        out: list[Outbound] = []
        result = semantic.value if semantic.ok else None
        # The embedding head reads call-center speech better; VADER alone is the fallback.
        if result is not None and result.sentiment is not None:
            score: float | None = result.sentiment.valence
            mood = result.sentiment.label
        elif sentiment.ok and sentiment.value:
            score, mood = sentiment.value.compound, sentiment.value.label
        else:
            score, mood = None, "neutral"
        self.mood = mood
        record: dict[str, Any] = {
            "index": len(self.utterances),
            "speaker": utterance.speaker,
            "text": utterance.text,
            "timestamp": utterance.timestamp,
            "utterance_id": utterance.utterance_id,
            "sentiment": None if score is None else round(score, 4),
        }
        self.utterances.append(record)
        self.recent.append(self.transcript(utterance))

        # Raw text: the pii_spoken rule must see the digits (its alerts name kinds, never values).
        compliance = self.monitor.observe(
            raw.speaker,
            raw.text,
            utterance.timestamp,
            utterance.utterance_id,
            result.matcher_scores if result else None,
        )
        supervisor_alerts: list[SupervisorAlert] = []
        for alert in compliance:
            out.append(
                Outbound(
                    (AGENT, CALL), {"type": "compliance", "call_id": self.call_id, "alert": alert.to_dict()}
                )
            )
            supervisor_alerts += self.alerts.on_compliance(alert)

        if utterance.speaker == "customer":
            if score is not None:
                self.customer_scores.append(score)
                self.sentiment_series.append({"timestamp": utterance.timestamp, "compound": round(score, 4)})
            trend = sentiment_trend(self.customer_scores)
            if score is not None:
                supervisor_alerts += self.alerts.on_customer_sentiment(
                    score, trend, self._recent_mean(), self.call_time
                )
            if result is not None and result.intent_probs is not None:
                self.intent_history.append((result.intent_probs, result.intent_similarity))
                settings = self.config.intent
                self.intent = combine_context(
                    self.intent_history,
                    self.intent_labels,
                    decay=settings.context_decay,
                    threshold=settings.threshold,
                    min_similarity=settings.min_similarity,
                )
            record["intent"] = self.intent.label
            assist = self._assist(utterance, result, score, trend, semantic, sentiment)
            record["articles"] = [a["id"] for a in assist["knowledge_articles"]]
            out.append(Outbound((AGENT, CALL), assist, droppable=True))

        for alert in supervisor_alerts:
            payload = alert.to_payload(self.call_id, self.agent_id, len(self.supervisor_alerts) + 1)
            self.supervisor_alerts.append(payload)
            out.append(Outbound((SUPERVISOR, CALL), payload))
        out.append(Outbound((SUPERVISOR,), {"type": "call_update", "call": self.summary()}, droppable=True))
        return out

    def finish(self, reason: str) -> tuple[list[Outbound], dict[str, Any]]:
        self.ended = True
        out: list[Outbound] = []
        for alert in self.monitor.finish():
            out.append(
                Outbound(
                    (AGENT, CALL), {"type": "compliance", "call_id": self.call_id, "alert": alert.to_dict()}
                )
            )
            for supervisor_alert in self.alerts.on_compliance(alert):
                payload = supervisor_alert.to_payload(
                    self.call_id, self.agent_id, len(self.supervisor_alerts) + 1
                )
                self.supervisor_alerts.append(payload)
                out.append(Outbound((SUPERVISOR, CALL), payload))
        ended = {
            "type": "call_ended",
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "reason": reason,
            "duration": round(self.call_time, 3),
        }
        out.append(Outbound((AGENT, SUPERVISOR, CALL), ended))
        return out, self.record(reason)

    # ------------------------------------------------------------------ views

    def summary(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "customer": self.start.customer.model_dump(exclude_none=True),
            "team": self.start.team,
            "started_at": self.started_at,
            "last_activity": round(self.started_at + self.call_time, 3),
            "call_time": round(self.call_time, 3),
            "intent": self.intent.label,
            "intent_confidence": round(self.intent.confidence, 4),
            "sentiment": round(self.customer_scores[-1], 4) if self.customer_scores else 0.0,
            "sentiment_trend": sentiment_trend(self.customer_scores),
            "alert_count": len(self.supervisor_alerts),
            "process": self.process,
        }

    def resume_state(self) -> dict[str, Any]:
        """What a reconnecting agent widget needs to redraw the call."""
        return {
            "type": "call_state",
            "call": self.summary(),
            "transcript": list(self.recent),
            "last_assist": self.last_assist,
            "compliance_alerts": [a.to_dict() for a in self.monitor.outstanding()],
        }

    def record(self, reason: str) -> dict[str, Any]:
        """The durable call record (its transcript was redacted as each utterance arrived)."""
        intents = Counter(u["intent"] for u in self.utterances if u.get("intent") and u["intent"] != UNKNOWN)
        return {
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "team": self.start.team,
            "customer": self.start.customer.model_dump(exclude_none=True),
            "language": self.start.language,
            "started_at": self.started_at,
            "ended_at": round(self.started_at + self.call_time, 3),
            "duration": round(self.call_time, 3),
            "end_reason": reason,
            "primary_intent": intents.most_common(1)[0][0] if intents else self.intent.label,
            "intents": dict(intents),
            "final_sentiment": round(self.customer_scores[-1], 4) if self.customer_scores else None,
            "sentiment_trend": sentiment_trend(self.customer_scores),
            "sentiment_series": self.sentiment_series,
            "utterances": [dict(u) for u in self.utterances],
            "assists": self.assists,
            "compliance_alerts": [a.to_dict() for a in self.monitor.all_alerts()],
            "disclosures": dict(self.monitor.satisfied),
            "holds": [
                {
                    "timestamp": h.timestamp,
                    "permission_asked": h.permission_asked,
                    "utterance_id": h.utterance_id,
                }
                for h in self.monitor.holds
            ],
            "supervisor_alerts": self.supervisor_alerts,
        }

    # ------------------------------------------------------------------ internals

    def _recent_mean(self, n: int = 3) -> float:
        recent = self.customer_scores[-n:]
        return sum(recent) / len(recent) if recent else 0.0

    def _remember_articles(self, hits: list[ArticleHit]) -> list[dict[str, Any]]:
        """Articles relevant to the conversation so far, not only to the last sentence:
        earlier hits fade by ARTICLE_DECAY per customer utterance, fresh hits refresh them,
        so "yes, please" does not wipe the article the agent is reading."""
        kb = self.config.knowledge_base
        for article_id, (hit, score) in list(self.article_memory.items()):
            faded = score * ARTICLE_DECAY
            if faded < kb.min_score:
                del self.article_memory[article_id]
            else:
                self.article_memory[article_id] = (hit, faded)
        for hit in hits:
            previous = self.article_memory.get(hit.id)
            if previous is None or hit.score >= previous[1]:
                self.article_memory[hit.id] = (hit.to_dict(), hit.score)
        ranked = sorted(self.article_memory.values(), key=lambda item: -item[1])[: kb.top_k]
        return [{**hit, "score": round(score, 4)} for hit, score in ranked]

    def transcript(self, utterance: UtteranceFrame) -> dict[str, Any]:
        return {
            "type": "transcript",
            "call_id": self.call_id,
            "speaker": utterance.speaker,
            "text": utterance.text,
            "timestamp": utterance.timestamp,
            "is_final": utterance.is_final,
            "utterance_id": utterance.utterance_id,
        }

    def _assist(
        self,
        utterance: UtteranceFrame,
        result: SemanticResult | None,
        score: float | None,
        trend: str,
        semantic: Finding[SemanticResult],
        sentiment: Finding[SentimentScore],
    ) -> dict[str, Any]:
        articles = self._remember_articles(result.articles if result else [])
        outstanding: list[ComplianceAlert] = self.monitor.outstanding()
        fresh_breaches = self.monitor.breaches[self.breach_cursor :]
        self.breach_cursor = len(self.monitor.breaches)
        # A breach just made is the most urgent thing to repair; then what is still missing.
        actionable = fresh_breaches + [a for a in outstanding if a.kind == "missing_disclosure"]
        verification_pending = self.monitor.has_rule(VERIFICATION_RULE) and not self.monitor.is_satisfied(
            VERIFICATION_RULE
        )
        suggestion = next_best_action(
            self.config.playbooks,
            intent=self.intent.label,
            top_article_title=articles[0]["title"] if articles else None,
            actionable=sorted(actionable, key=lambda a: a.severity != "high"),
            verification_pending=verification_pending,
            sentiment=score if score is not None else 0.0,
            trend=trend,
            recent_mean=self._recent_mean(),
            negative_threshold=self.config.alerts.negative_threshold,
        )
        compound = score if score is not None else 0.0
        assist = {
            "type": "assist",
            "call_id": self.call_id,
            "utterance_id": utterance.utterance_id,
            "timestamp": utterance.timestamp,
            "text": utterance.text,
            "intent": self.intent.label,
            "intent_confidence": round(self.intent.confidence, 4),
            "intent_scores": self.intent.scores,
            "sentiment": round(compound, 4),
            "sentiment_vader": round(sentiment.value.compound, 4)
            if sentiment.ok and sentiment.value
            else None,
            "sentiment_label": self.mood,
            "sentiment_trend": trend,
            "knowledge_articles": articles,
            "compliance_alerts": [a.to_dict() for a in outstanding],
            "suggested_action": suggestion.action,
            "suggested_action_reason": suggestion.reason,
            "latency_ms": 0.0,  # stamped by the server when the event leaves
            "degraded": [f.name for f in (semantic, sentiment) if not f.ok],
        }
        self.last_assist = assist
        self.assists.append(
            {
                "utterance_id": utterance.utterance_id,
                "timestamp": utterance.timestamp,
                "intent": assist["intent"],
                "intent_confidence": assist["intent_confidence"],
                "sentiment": assist["sentiment"],
                "sentiment_trend": trend,
                "articles": [{"id": a["id"], "title": a["title"], "score": a["score"]} for a in articles],
                "suggested_action": suggestion.action,
                "suggested_action_reason": suggestion.reason,
            }
        )
        return assist
