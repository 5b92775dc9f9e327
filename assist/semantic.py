"""Worker-thread side of the pipeline: embed each utterance once, then derive intent
probabilities, knowledge-base hits and compliance exemplar similarities from that vector."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from assist.analysis import SemanticResult
from assist.embedding import Embedder
from assist.intent import IntentModel
from assist.sentiment import HeadScore, SentimentAnalyzer, SentimentHead
from kb_index.index import KnowledgeIndex


@dataclass(frozen=True, slots=True)
class SemanticRequest:
    text: str
    speaker: str


class ExemplarBank:
    """All compliance exemplars in one matrix; scores are the max cosine per matcher key."""

    def __init__(self, groups: dict[str, list[str]], embedder: Embedder) -> None:
        self.keys = sorted(groups)
        texts = [text for key in self.keys for text in groups[key]]
        self._starts = (
            np.cumsum([0] + [len(groups[key]) for key in self.keys[:-1]]) if self.keys else np.zeros(0, int)
        )
        self._matrix = embedder.encode(texts) if texts else np.zeros((0, embedder.dim), np.float32)

    def scores(self, vectors: np.ndarray) -> list[dict[str, float]]:
        if not self.keys:
            return [{} for _ in range(len(vectors))]
        sims = vectors @ self._matrix.T
        best = np.maximum.reduceat(sims, self._starts, axis=1)
        return [dict(zip(self.keys, map(float, row), strict=True)) for row in best]


class SemanticAnalyzer:
    def __init__(
        self,
        embedder: Embedder,
        intents: IntentModel,
        knowledge: Callable[[], KnowledgeIndex],
        exemplars: ExemplarBank,
        *,
        top_k: int,
        min_score: float,
        sentiment: SentimentAnalyzer | None = None,
        sentiment_head: SentimentHead | None = None,
    ) -> None:
        self.embedder = embedder
        self.sentiment = sentiment
        self.sentiment_head = sentiment_head
        self.intents = intents
        self._knowledge = knowledge
        self.exemplars = exemplars
        self.top_k = top_k
        self.min_score = min_score

    def analyze_batch(self, requests: Sequence[SemanticRequest]) -> list[SemanticResult]:
        vectors = self.embedder.encode([r.text for r in requests])
        customer = [i for i, r in enumerate(requests) if r.speaker == "customer"]
        agent = [i for i, r in enumerate(requests) if r.speaker != "customer"]
        results: list[SemanticResult] = [SemanticResult(vector=v) for v in vectors]
        if customer:
            cv = vectors[customer]
            probs = self.intents.probabilities(cv)
            similarity = self.intents.example_similarity(cv)
            texts = [requests[i].text for i in customer]
            hits = self._knowledge().search(cv, texts, k=self.top_k, min_score=self.min_score)
            moods: list[HeadScore | None] = [None] * len(customer)
            if self.sentiment_head is not None and self.sentiment is not None:
                moods = list(self.sentiment_head.score(cv, [self.sentiment.score(t).compound for t in texts]))
            for row, index in enumerate(customer):
                results[index] = SemanticResult(
                    vector=vectors[index],
                    intent_probs=probs[row],
                    intent_similarity=float(similarity[row]),
                    articles=hits[row],
                    sentiment=moods[row],
                )
        if agent:
            for index, scores in zip(agent, self.exemplars.scores(vectors[agent]), strict=True):
                results[index] = SemanticResult(vector=vectors[index], matcher_scores=scores)
        return results
