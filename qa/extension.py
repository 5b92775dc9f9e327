"""QA as a server extension: its tables, its REST API and (by default) the in-process worker.

``callassist serve`` runs the worker inside the server; set CALLASSIST_QA_WORKER=false and
run ``callassist qa worker`` processes instead to scale scoring out (Redis bus).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client.core import Metric
from starlette.routing import BaseRoute

from assist.thread_priority import ThreadPriority
from qa.evidence import AsyncEvidenceScorer, EvidenceScorer
from qa.llm import Judge, LLMJudge
from qa.rubric import Rubric
from qa.settings import QASettings
from qa.store import QAStore
from qa.worker import QAWorker
from server.metrics import counter_family

if TYPE_CHECKING:
    from assist.embedding import Embedder
    from server.services import Services

log = logging.getLogger(__name__)
BACKFILL_DAYS = 7


class Scoring:
    """The scorers of one process: evidence (always) and the LLM judge (when configured)."""

    def __init__(
        self, rubric: Rubric, evidence: AsyncEvidenceScorer, judge: Judge, llm: LLMJudge | None
    ) -> None:
        self.rubric = rubric
        self.evidence = evidence
        self.judge = judge
        self.llm = llm

    @classmethod
    async def build(
        cls,
        rubric: Rubric,
        embedder: Embedder,
        settings: QASettings,
        *,
        max_batch: int = 16,
        thread_priority: ThreadPriority = "normal",
    ) -> Scoring:
        scorer = await asyncio.to_thread(EvidenceScorer, rubric, embedder)  # embeds the exemplars
        evidence = AsyncEvidenceScorer(scorer, max_batch=max_batch, thread_priority=thread_priority)
        evidence.start()
        llm_settings = settings.llm()
        llm = LLMJudge(llm_settings, rubric, evidence) if llm_settings else None
        return cls(rubric, evidence, llm or evidence, llm)

    async def close(self) -> None:
        if self.llm is not None:
            await self.llm.close()
        await self.evidence.close()


class QAExtension:
    name = "qa"

    def __init__(self, settings: QASettings | None = None, *, rubric: Rubric | None = None) -> None:
        self.settings = settings or QASettings()
        self.rubric = rubric or Rubric.load(self.settings.rubric)  # a bad rubric fails at start-up
        self.services: Services | None = None
        self.store: QAStore | None = None
        self.scoring: Scoring | None = None
        self.worker: QAWorker | None = None
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._worker_task: asyncio.Task[None] | None = None

    def routes(self) -> list[BaseRoute]:
        from qa.api import routes

        return routes()

    async def start(self, services: Services) -> None:
        self.services = services
        self.store = QAStore(services.db)
        await self.store.open()
        services.metrics.add_collector(self._metrics)
        self._task = asyncio.create_task(self._start_scoring(services), name="qa-start")

    async def _start_scoring(self, services: Services) -> None:
        await services.ready.wait()  # the embedder loads in the background
        assert services.embedder is not None and self.store is not None and services.calls is not None
        try:
            # Small batches: in process, scoring shares the CPU and the model with live assist.
            self.scoring = await Scoring.build(
                self.rubric,
                services.embedder,
                self.settings,
                max_batch=4,
                thread_priority=services.settings.model_priority(),
            )
        except Exception:
            log.exception("QA scoring could not start")
            return
        self.ready.set()
        if not self.settings.worker:
            return
        self.worker = QAWorker(
            services.bus,
            self.store,
            services.store,
            self.scoring.judge,
            consumer=f"qa-{services.settings.process_name}",
            concurrency=self.settings.concurrency,
            claim_idle_ms=self.settings.claim_idle_ms,
            max_tries=self.settings.max_tries,
        )
        log.info("QA worker consuming %s (rubric %s)", "calls", self.rubric.name)
        self._worker_task = asyncio.create_task(self._run_worker(self.worker), name="qa-worker")
        self._worker_task.add_done_callback(_log_failure)

    async def _run_worker(self, worker: QAWorker) -> None:
        # Calls stored in the last BACKFILL_DAYS without a scorecard (a restart loses an
        # in-memory stream) are scored first, then the stream is consumed.
        since = time.time() - BACKFILL_DAYS * 86_400
        try:
            backfilled = await worker.backfill(since=since)
        except Exception:
            log.exception("QA backfill failed; continuing with the stream")
        else:
            if backfilled:
                log.info("QA backfill: scored %d stored calls that had no scorecard", backfilled)
        await worker.run()

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
        for task in (self._worker_task, self._task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.scoring is not None:
            await self.scoring.close()

    def _metrics(self) -> Iterable[Metric]:
        if self.worker is None:
            return []
        stats, stream = self.worker.stats, self.worker.stream.stats
        values: dict[str, Any] = {
            "scored": stats.scored,
            "duplicate": stats.duplicates,
            "skipped": stats.skipped,
            "llm_fallback": stats.fallbacks,
            "failed": stream.failed,
            "dead_lettered": stream.dead,
            "reclaimed": stream.claimed,
        }
        return [counter_family("callassist_qa_calls", "QA worker outcomes per call", values, "outcome")]


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("QA worker stopped", exc_info=task.exception())
