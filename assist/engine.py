"""The assist engine: loaded models and rules, the per-utterance fan-out, session factory.

Still no sockets: the server feeds utterances in and delivers the events that come out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assist.analysis import Finding, SemanticResult, run_isolated
from assist.batching import MicroBatcher
from assist.compliance import CompliancePolicy
from assist.config import AssistConfig
from assist.embedding import Embedder
from assist.intent import IntentModel
from assist.protocol import StartFrame, UtteranceFrame
from assist.semantic import ExemplarBank, SemanticAnalyzer, SemanticRequest
from assist.sentiment import TRAINING_DATA, SentimentAnalyzer, SentimentHead, SentimentScore, read_labelled
from assist.session import CallSession
from assist.thread_priority import ThreadPriority
from kb_index.index import KnowledgeIndex, RetrievalSettings, default_directory, source_key
from kb_index.ingest import load_source
from kb_index.vectors import IndexSpec

log = logging.getLogger(__name__)


def fit_intents(config: AssistConfig, embedder: Embedder) -> IntentModel:
    texts = [example for spec in config.intents for example in spec.examples]
    labels = [spec.label for spec in config.intents for _ in spec.examples]
    return IntentModel.fit(embedder.encode(texts), labels, regularization=config.intent.regularization)


def build_knowledge(
    config: AssistConfig, embedder: Embedder, knowledge_dir: Path | None = None
) -> KnowledgeIndex:
    """Open the persistent knowledge base (in memory without a directory) and sync the
    configured source into it; only chunks missing from the embedding cache are embedded."""
    kb = config.knowledge_base
    directory = kb.index_dir or (default_directory(knowledge_dir, kb.path) if knowledge_dir else None)
    index = KnowledgeIndex.open(
        directory,
        embedder.encode,
        model_name=embedder.name,
        spec=IndexSpec(kind=kb.index, ann_threshold=kb.ann_threshold, nlist=kb.nlist, nprobe=kb.nprobe),
        retrieval=RetrievalSettings(
            mode=kb.search,
            rrf_k=kb.rrf_k,
            min_lexical_score=kb.min_lexical_score,
            question_margin=kb.question_margin,
        ),
    )
    if kb.path is not None:
        report = index.sync_source(load_source(kb.path), source_key(kb.path))
        log.info("knowledge base %s synced from %s: %s", directory or "(memory)", kb.path, report.to_dict())
    if index.dirty:
        index.save_snapshot()
    return index


def fit_sentiment_head(
    config: AssistConfig, embedder: Embedder, analyzer: SentimentAnalyzer, cache_dir: Path | None = None
) -> SentimentHead | None:
    """Fit (or load the cached fit of) the embedding sentiment head for this model and data."""
    settings = config.sentiment
    if not settings.head:
        return None
    data = settings.training_data or TRAINING_DATA
    key = hashlib.sha256(
        b"\0".join([embedder.name.encode(), data.read_bytes(), settings.model_dump_json().encode()])
    ).hexdigest()[:16]
    cached = cache_dir / f"sentiment-head-{key}.npz" if cache_dir else None
    if cached is not None and cached.exists():
        arrays = np.load(cached)
        return SentimentHead(arrays["weights"], arrays["bias"])
    texts, labels = read_labelled(data)
    head = SentimentHead.fit(embedder.encode(texts), [analyzer.score(t).compound for t in texts], labels)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, **head.to_arrays())
    return head


@dataclass
class EngineStats:
    """Observer hook: the server wires these callbacks to Prometheus metrics."""

    on_batch: Callable[[int, float], None] | None = None
    on_finding: Callable[[Finding[object]], None] | None = None


class AssistEngine:
    def __init__(
        self,
        config: AssistConfig,
        embedder: Embedder,
        intents: IntentModel,
        knowledge: KnowledgeIndex,
        *,
        analysis_budget_s: float = 1.5,
        max_batch: int = 32,
        stats: EngineStats | None = None,
        sentiment_head: SentimentHead | None = None,
        exemplar_embedder: Embedder | None = None,
        model_thread_priority: ThreadPriority = "normal",
    ) -> None:
        self.config = config
        self.embedder = embedder
        self.intents = intents
        # Updated in place by KB edits (thread-safe, see kb_index.index); the worker reads it once per batch.
        self.knowledge = knowledge
        self.policy = CompliancePolicy(config.compliance)
        self.sentiment = SentimentAnalyzer(
            config.sentiment.lexicon, config.sentiment.phrases, tuned=config.sentiment.tuned
        )
        self.analysis_budget_s = analysis_budget_s
        self.stats = stats or EngineStats()
        self.semantic = SemanticAnalyzer(
            embedder,
            intents,
            lambda: self.knowledge,
            ExemplarBank(self.policy.exemplar_groups(), exemplar_embedder or embedder),
            top_k=config.knowledge_base.top_k,
            min_score=config.knowledge_base.min_score,
            sentiment=self.sentiment,
            sentiment_head=sentiment_head,
        )
        self._batcher: MicroBatcher[SemanticRequest, SemanticResult] = MicroBatcher(
            self.semantic.analyze_batch,
            max_batch=max_batch,
            name="embed",
            on_batch=self.stats.on_batch,
            thread_priority=model_thread_priority,
        )
        self._sentiment_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="callassist-sentiment")

    @classmethod
    def build(
        cls,
        config: AssistConfig,
        embedder: Embedder,
        *,
        knowledge_dir: Path | None = None,
        cache_dir: Path | None = None,
        **kwargs: object,
    ) -> AssistEngine:
        """Blocking (fits intents and the sentiment head, loads the knowledge base): run it
        in a thread at start-up. Restarts reuse cached embeddings and fits."""
        started = time.perf_counter()
        knowledge = build_knowledge(config, embedder, knowledge_dir)
        cached = knowledge.cached_embedder(embedder.name)
        intents = fit_intents(config, cached)
        analyzer = SentimentAnalyzer(
            config.sentiment.lexicon, config.sentiment.phrases, tuned=config.sentiment.tuned
        )
        head = fit_sentiment_head(config, cached, analyzer, cache_dir)
        engine = cls(
            config, embedder, intents, knowledge, sentiment_head=head, exemplar_embedder=cached, **kwargs
        )  # type: ignore[arg-type]
        log.info(
            "assist engine ready: %d intents, %d KB chunks, %d compliance matchers in %.1f s",
            len(intents.labels),
            len(knowledge),
            len(engine.semantic.exemplars.keys),
            time.perf_counter() - started,
        )
        return engine

    def start(self) -> None:
        self._batcher.start()

    async def close(self) -> None:
        await self._batcher.close()
        self._sentiment_pool.shutdown(wait=True, cancel_futures=True)
        self.knowledge.close()

    @property
    def pending(self) -> int:
        return self._batcher.pending

    @property
    def model_thread_priority(self) -> ThreadPriority | None:
        return self._batcher.thread_priority

    def new_session(
        self, call_id: str, start: StartFrame, *, started_at: float, process: str | None = None
    ) -> CallSession:
        return CallSession(
            call_id=call_id,
            start=start,
            config=self.config,
            monitor=self.policy.monitor(),
            intent_labels=self.intents.labels,
            started_at=started_at,
            process=process,
        )

    async def analyze(
        self, utterance: UtteranceFrame
    ) -> tuple[Finding[SemanticResult], Finding[SentimentScore]]:
        """Run the analyses of one final utterance concurrently, each isolated and budgeted."""
        loop = asyncio.get_running_loop()
        budget = self.analysis_budget_s
        async with asyncio.TaskGroup() as group:
            semantic_task = group.create_task(
                run_isolated(
                    "semantic",
                    self._batcher.submit(SemanticRequest(utterance.text, utterance.speaker)),
                    budget,
                )
            )
            sentiment_task = group.create_task(
                run_isolated(
                    "sentiment",
                    loop.run_in_executor(self._sentiment_pool, self.sentiment.score, utterance.text),
                    budget,
                )
            )
        semantic, sentiment = semantic_task.result(), sentiment_task.result()
        if self.stats.on_finding:
            self.stats.on_finding(semantic)  # type: ignore[arg-type]
            self.stats.on_finding(sentiment)  # type: ignore[arg-type]
        return semantic, sentiment
