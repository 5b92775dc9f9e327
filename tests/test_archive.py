"""The archive consumer: call.ended records into one store, once per call id, whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server import keys
from server.archive import Archiver, run_archive
from server.redis_bus import RedisBus
from server.store import Database, SqliteCallStore


def record(call_id: str, agent_id: str = "a1", ended_at: float = 100.0) -> dict:
    return {
        "call_id": call_id,
        "agent_id": agent_id,
        "customer": {"id": "cust-1"},
        "started_at": ended_at - 60,
        "ended_at": ended_at,
        "duration": 60.0,
        "end_reason": "completed",
        "utterances": [{"index": 0, "speaker": "customer", "text": "hello"}],
        "supervisor_alerts": [],
    }


def ended(call_id: str) -> dict:
    return {"event": "call.ended", "call_id": call_id, "agent_id": "a1", "record": record(call_id)}


@pytest.fixture
async def bus(redis_url: str) -> AsyncIterator[RedisBus]:
    bus = RedisBus(redis_url, prefix=f"t-{uuid.uuid4().hex[:8]}")
    await bus.start()
    yield bus
    await bus.close()


def rows(path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT call_id, COUNT(*) FROM calls GROUP BY call_id").fetchall())


async def test_archive_stores_ended_calls_once(bus: RedisBus, tmp_path: Path) -> None:
    """call.ended entries are stored, other events skipped, a repeated announcement stored once,
    and a call.ended without a record is dead-lettered instead of blocking the group."""
    await bus.stream_add(keys.CALLS_STREAM, {"event": "call.started", "call_id": "c1", "agent_id": "a1"})
    for call_id in ("c1", "c2", "c1"):  # the outbox relay may announce a call twice
        await bus.stream_add(keys.CALLS_STREAM, ended(call_id))
    await bus.stream_add(keys.CALLS_STREAM, {"event": "call.ended", "call_id": "broken"})
    store = tmp_path / "archive.db"
    stop = asyncio.Event()
    running = asyncio.create_task(
        run_archive(bus, store, consumer="w1", stop=stop, max_tries=2, claim_idle_ms=50)
    )
    for _ in range(200):
        if (await bus.stream_info(keys.CALLS_STREAM + keys.DEAD_LETTER_SUFFIX, "x"))["length"] == 1:
            break
        await asyncio.sleep(0.05)
    stop.set()
    stats, worker = await running
    assert rows(store) == {"c1": 1, "c2": 1}
    assert (stats.stored, stats.duplicates, stats.skipped) == (2, 1, 1)
    assert worker.dead == 1 and worker.failed == 2
    assert await bus.stream_info(keys.CALLS_STREAM, keys.ARCHIVE_GROUP) == {
        "length": 5,
        "pending": 0,
        "lag": 0,
    }
    with contextlib.closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT COUNT(*) FROM calls WHERE published = 0").fetchone()[0] == 0


async def test_consumer_that_stored_but_never_acked(bus: RedisBus, tmp_path: Path) -> None:
    """A consumer dies after writing the record but before XACK: the entry is claimed again and
    the record is not stored a second time."""
    store = tmp_path / "archive.db"
    await bus.ensure_group(keys.CALLS_STREAM, keys.ARCHIVE_GROUP)
    await bus.stream_add(keys.CALLS_STREAM, ended("c9"))
    (entry,) = await bus.stream_read(keys.CALLS_STREAM, keys.ARCHIVE_GROUP, "doomed", block_ms=0)
    db = Database(store)
    crashed = Archiver(SqliteCallStore(db))
    await crashed.store.open()
    await crashed(entry)  # stored ... and then the process died: no ack
    await db.close()
    await asyncio.sleep(0.1)
    stats, worker = await run_archive(bus, store, consumer="survivor", burst=True, claim_idle_ms=50)
    assert rows(store) == {"c9": 1}
    assert worker.claimed == 1 and stats.duplicates == 1 and stats.stored == 0
    assert (await bus.stream_info(keys.CALLS_STREAM, keys.ARCHIVE_GROUP))["pending"] == 0


async def test_archive_stops_cleanly(bus: RedisBus, tmp_path: Path) -> None:
    """SIGTERM path: the consumer stops claiming, finishes what it holds, and returns."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_archive(bus, tmp_path / "a.db", consumer="w", stop=stop))
    await bus.stream_add(keys.CALLS_STREAM, ended("c1"))
    for _ in range(100):
        if await bus.stream_info(keys.CALLS_STREAM, keys.ARCHIVE_GROUP) == {
            "length": 1,
            "pending": 0,
            "lag": 0,
        }:
            break
        await asyncio.sleep(0.05)
    stop.set()
    stats, _ = await asyncio.wait_for(task, 5)
    assert stats.stored == 1
