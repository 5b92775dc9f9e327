"""The QA worker: consumes ``call.ended`` from the calls stream (consumer group ``qa``),
scores the call, stores the scorecard once and tells the supervisors.

At-least-once (``server.worker.StreamWorker``): an entry is acked only after the scorecard
is stored, so a worker killed mid-job leaves the entry pending for another worker to claim.
Idempotent by call id: a re-delivered call finds its scorecard and is acked without a second
one (the table's primary key holds even if two workers race).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from qa.llm import Judge
from qa.scorecard import with_offset
from qa.store import QAStore
from server import keys
from server.bus import Bus, StreamEntry
from server.store import CallStore
from server.worker import StreamWorker

log = logging.getLogger(__name__)


@dataclass
class QAStats:
    scored: int = 0
    duplicates: int = 0
    skipped: int = 0
    fallbacks: int = 0


class QAWorker:
    def __init__(
        self,
        bus: Bus,
        store: QAStore,
        calls: CallStore,
        judge: Judge,
        *,
        consumer: str,
        concurrency: int = 4,
        claim_idle_ms: int = 60_000,
        max_tries: int = 5,
        read_block_ms: int = 1000,
    ) -> None:
        self.bus = bus
        self.store = store
        self.calls = calls
        self.judge = judge
        self.stats = QAStats()
        self.stream = StreamWorker(
            bus,
            keys.CALLS_STREAM,
            keys.QA_GROUP,
            consumer,
            self.handle,
            max_tries=max_tries,
            claim_idle_ms=claim_idle_ms,
            concurrency=concurrency,
            read_block_ms=read_block_ms,
        )

    async def run(self, *, burst: bool = False) -> None:
        await self.stream.run(burst=burst)

    async def stop(self, grace_s: float = 10.0) -> None:
        await self.stream.stop(grace_s)

    async def backfill(self, *, since: float | None = None, limit: int = 10_000) -> int:
        """Score stored calls that have no scorecard (e.g. ended while no worker ran, or lost
        with an in-memory stream at a restart). Safe beside live workers: saves are idempotent."""
        done = 0
        while done < limit:
            call_ids = await self.store.unscored(since=since, limit=min(100, limit - done))
            if not call_ids:
                break
            for call_id in call_ids:
                record = await self.calls.get_call(call_id)
                if record is not None:
                    await self._score(record)
                done += 1
        return done

    async def handle(self, entry: StreamEntry) -> None:
        fields = entry.fields
        if fields.get("event") != "call.ended":
            return  # call.started and other lifecycle events are not ours
        call_id = fields.get("call_id")
        if not call_id:
            log.warning("calls stream entry %s has no call_id; skipped", entry.id)
            self.stats.skipped += 1
            return
        if await self.store.has(call_id):
            self.stats.duplicates += 1
            return
        record: dict[str, Any] | None = fields.get("record") or await self.calls.get_call(call_id)
        if record is None:
            # call.ended follows the durable store write; a missing record means this worker
            # reads another store. Fail: retried, then dead-lettered where an operator sees it.
            raise LookupError(f"call {call_id} announced as ended but not in the call store")
        await self._score(record)

    async def _score(self, record: dict[str, Any]) -> None:
        card = await self.judge.score(record)
        card = with_offset(card, await self.store.offset_for(card.agent_id))
        if card.fallback_reason:
            self.stats.fallbacks += 1
        if not await self.store.save(card):
            self.stats.duplicates += 1  # another worker stored it while we were scoring
            return
        self.stats.scored += 1
        await self.bus.publish([keys.SUPERVISOR_CHANNEL], {"type": "qa_scorecard", **card.summary()})
