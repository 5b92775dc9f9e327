"""The QA worker: idempotent by call id on the memory bus, and crash-safe across processes on
Redis (a worker killed with SIGKILL mid-job leaves the call to be scored once by another)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assist.engine import AssistEngine
from qa.evidence import AsyncEvidenceScorer, EvidenceScorer
from qa.rubric import Rubric
from qa.store import QAStore
from qa.worker import QAWorker
from server import keys
from server.bus import MemoryBus, create_bus
from server.outbox import Outbox
from server.store import Database, SqliteCallStore
from tests.fake_llm import FakeLLM
from tests.helpers import MS
from tests.qa_calls import EXEMPLARY, EXEMPLARY_CUSTOMER
from tests.qa_helpers import build_record


@pytest.fixture(scope="module")
async def record(embedder: Any, demo_config: Any, engine_parts: Any) -> AsyncIterator[dict[str, Any]]:
    engine = AssistEngine(demo_config, embedder, *engine_parts)
    engine.start()
    yield await build_record(engine, "worker-1", EXEMPLARY, customer=EXEMPLARY_CUSTOMER)
    await engine.close()


@pytest.fixture(scope="module")
async def scorer(embedder: Any) -> AsyncIterator[AsyncEvidenceScorer]:
    scoring = AsyncEvidenceScorer(EvidenceScorer(Rubric.load(), embedder))
    scoring.start()
    yield scoring
    await scoring.close()


async def open_stores(path: Path) -> tuple[Database, SqliteCallStore, QAStore]:
    db = Database(path)
    calls, qa = SqliteCallStore(db), QAStore(db)
    await calls.open()
    await qa.open()
    return db, calls, qa


async def test_redelivery_never_creates_a_second_scorecard(tmp_path: Path, record: Any, scorer: Any) -> None:
    """The same call.ended delivered three times (and a call.started) yields one scorecard and
    one supervisor summary; every entry is acked."""
    db, calls, qa = await open_stores(tmp_path / "w.db")
    await calls.save_call(record)
    bus = MemoryBus()
    outbox = Outbox(64)
    await bus.subscribe(keys.SUPERVISOR_CHANNEL, outbox)
    await bus.stream_add(keys.CALLS_STREAM, {"event": "call.started", "call_id": record["call_id"]})
    for _ in range(2):
        await bus.stream_add(
            keys.CALLS_STREAM, {"event": "call.ended", "call_id": record["call_id"], "record": record}
        )
    # The third delivery carries only the id: the worker reads the record from the call store.
    await bus.stream_add(keys.CALLS_STREAM, {"event": "call.ended", "call_id": record["call_id"]})
    worker = QAWorker(bus, qa, calls, scorer, consumer="w1", read_block_ms=10)
    await worker.run(burst=True)
    assert await qa.count() == 1
    assert worker.stats.scored == 1 and worker.stats.duplicates == 2
    # every entry acked, so the in-memory stream let go of them
    assert await bus.stream_info(keys.CALLS_STREAM, keys.QA_GROUP) == {"length": 0, "pending": 0, "lag": 0}
    messages = [outbox._items.popleft() for _ in range(len(outbox))]  # noqa: SLF001 - test inspection
    summaries = [m for m in messages if '"qa_scorecard"' in m.text]
    assert len(summaries) == 1 and record["call_id"] in summaries[0].text
    card = await qa.get(record["call_id"])
    assert card is not None and card.overall_score >= 85
    await db.close()


async def test_unknown_call_is_dead_lettered(tmp_path: Path, scorer: Any) -> None:
    """A call.ended whose record is nowhere is retried, then dead-lettered, never looping."""
    db, calls, qa = await open_stores(tmp_path / "w.db")
    bus = MemoryBus()
    await bus.stream_add(keys.CALLS_STREAM, {"event": "call.ended", "call_id": "ghost"})
    worker = QAWorker(bus, qa, calls, scorer, consumer="w1", claim_idle_ms=20, max_tries=2, read_block_ms=10)
    task = asyncio.create_task(worker.run())
    for _ in range(300):
        if worker.stream.stats.dead:
            break
        await asyncio.sleep(10 * MS)
    await worker.stop()
    await task
    assert worker.stream.stats.dead == 1 and await qa.count() == 0
    await db.close()


def _worker_process(
    redis_url: str, store: Path, consumer: str, llm_url: str, timeout_s: float, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CALLASSIST_QA_LLM_URL": llm_url,
        "CALLASSIST_QA_LLM_TIMEOUT_S": str(timeout_s),
        "CALLASSIST_QA_LLM_MAX_RETRIES": "0",
    }
    command = [sys.executable, "-m", "server.cli", "qa", "worker", "--bus", redis_url, "--store", str(store)]
    command += ["--consumer", consumer, "--claim-idle-ms", "500", "--log-level", "info"]
    with log.open("wb") as sink:  # a file, not a pipe nobody drains
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)


async def _until(predicate: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(50 * MS)


async def test_worker_killed_mid_job_is_scored_once_by_another(
    redis_url: str, tmp_path: Path, record: Any
) -> None:
    """Worker 1 (a real process) takes the call and is SIGKILLed while its LLM request hangs;
    worker 2 claims the pending entry and scores it; exactly one scorecard exists and nothing
    stays pending. Runs on the Redis bus (the server's, or QA's stop-gap stream backend)."""
    store = tmp_path / "shared.db"
    db, calls, qa = await open_stores(store)
    call = {**record, "call_id": f"kill-{os.getpid()}"}
    await calls.save_call(call)
    fake = FakeLLM()
    fake.script.append("hang")  # the first request never returns: worker 1 is stuck mid-job
    fake.start()
    bus = create_bus(redis_url)
    await bus.start()
    redis = bus.redis  # type: ignore[attr-defined]  # the RedisBus client, for clean-up
    workers: list[subprocess.Popen[bytes]] = []
    try:
        first = _worker_process(redis_url, store, "w1", fake.url, 600, tmp_path / "w1.log")
        workers.append(first)

        async def w1_ready() -> bool:
            log = (tmp_path / "w1.log").read_text(errors="replace")
            assert first.poll() is None, log
            return "QA worker w1 ready" in log

        await _until(w1_ready, 240_000 * MS, "worker 1 to join the group")
        await bus.stream_add(
            keys.CALLS_STREAM, {"event": "call.ended", "call_id": call["call_id"], "record": call}
        )

        async def w1_mid_job() -> bool:
            return len(fake.requests) == 1

        await _until(w1_mid_job, 60_000 * MS, "worker 1 to start scoring")
        assert (await bus.stream_info(keys.CALLS_STREAM, keys.QA_GROUP))["pending"] == 1
        first.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(first.wait, 30) == -signal.SIGKILL
        assert await qa.count() == 0

        second = _worker_process(redis_url, store, "w2", fake.url, 30, tmp_path / "w2.log")
        workers.append(second)

        async def scored() -> bool:
            assert second.poll() is None, (tmp_path / "w2.log").read_text()
            return await qa.count() == 1

        await _until(scored, 240_000 * MS, "worker 2 to score the call")
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 60) == 0
        card = await qa.get(call["call_id"])
        assert card is not None and card.scorer == "llm"  # worker 2's own LLM request succeeded
        assert len(fake.requests) == 2
        info = await bus.stream_info(keys.CALLS_STREAM, keys.QA_GROUP)
        assert info["pending"] == 0 and info["lag"] == 0
        with sqlite3.connect(store) as conn:
            assert conn.execute("SELECT COUNT(*) FROM qa_scorecards").fetchone()[0] == 1
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        if redis is not None:
            await redis.delete(keys.redis_stream(keys.CALLS_STREAM))
        await bus.close()
        fake.stop()
        await db.close()


async def test_redis_stream_backend_semantics(redis_url: str) -> None:
    """The Redis backend the QA worker uses: group read, re-claim with a delivery count, ack,
    and length/pending/lag bookkeeping."""
    bus = create_bus(redis_url)
    await bus.start()
    stream = f"qa-semantics-{os.getpid()}"
    try:
        await bus.ensure_group(stream, "g")
        await bus.ensure_group(stream, "g")  # idempotent
        assert await bus.stream_info(stream, "g") == {"length": 0, "pending": 0, "lag": 0}
        await bus.stream_add(stream, {"event": "call.ended", "call_id": "c1", "nested": {"a": [1, 2]}})
        assert await bus.stream_info(stream, "g") == {"length": 1, "pending": 0, "lag": 1}
        (entry,) = await bus.stream_read(stream, "g", "crashed", block_ms=100)
        assert entry.fields == {"event": "call.ended", "call_id": "c1", "nested": {"a": [1, 2]}}
        assert await bus.stream_claim(stream, "g", "other", min_idle_ms=60_000) == []
        await asyncio.sleep(50 * MS)
        (claimed,) = await bus.stream_claim(stream, "g", "other", min_idle_ms=10)
        assert claimed.id == entry.id and claimed.deliveries == 2
        assert await bus.stream_info(stream, "g") == {"length": 1, "pending": 1, "lag": 0}
        await bus.stream_ack(stream, "g", [claimed.id])
        assert await bus.stream_info(stream, "g") == {"length": 1, "pending": 0, "lag": 0}
    finally:
        redis = bus.redis  # type: ignore[attr-defined]
        if redis is not None:
            await redis.delete(keys.redis_stream(stream))
        await bus.close()
