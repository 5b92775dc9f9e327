"""The Redis bus and registry when Redis goes away and comes back (a private redis-server)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.bus import BusUnavailable
from server.outbox import Outbox
from server.redis_bus import RedisBus
from server.redis_registry import RedisRegistry
from tests.cluster import RedisServer, wait_until
from tests.helpers import MS


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


async def test_outage_drops_cross_process_only_then_recovers(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down: publish never raises, local subscribers still get everything, cross-process
    messages are counted and logged as dropped; after restart delivery resumes by itself."""
    a, b = RedisBus(redis_server.url), RedisBus(redis_server.url)
    await a.start()
    await b.start()
    local, remote = Outbox(1000), Outbox(1000)
    await a.subscribe("agent:1", local)
    await b.subscribe("agent:1", remote)
    try:
        await a.publish(["agent:1"], {"n": 0})
        await wait_until(lambda: len(remote) == 1, 10000 * MS)

        caplog.set_level(logging.WARNING, logger="server.redis_bus")
        await asyncio.to_thread(redis_server.stop)
        await wait_until(lambda: not a.connected and not b.connected, 10000 * MS)
        started = time.perf_counter()
        for n in range(1, 51):
            await a.publish(["agent:1"], {"n": n})
        assert time.perf_counter() - started < 0.05  # nothing waited for Redis
        assert [json.loads((await local.get()).text)["n"] for _ in range(51)] == list(range(51))
        assert a.counters["dropped"] == 50
        assert any("dropped" in r.message for r in caplog.records)
        with pytest.raises(BusUnavailable):
            await a.stream_add("calls", {"call_id": "x"})

        await asyncio.to_thread(redis_server.start)
        await wait_until(lambda: a.connected and b.connected, 10000 * MS)
        assert a.counters["reconnects"] == 1 and b.counters["reconnects"] == 1
        await a.publish(["agent:1"], {"n": 51})
        await wait_until(lambda: len(remote) == 2, 10000 * MS)
        assert [json.loads((await remote.get()).text)["n"] for _ in range(2)] == [0, 51]
        assert any("reconnected" in r.message for r in caplog.records)
    finally:
        await a.close()
        await b.close()


async def test_bus_starts_while_redis_is_down(tmp_path: Path) -> None:
    """A process may start before Redis: it serves locally and connects once Redis appears."""
    server = RedisServer(tmp_path / "redis")
    bus = RedisBus(server.url)
    await bus.start()
    try:
        assert not bus.connected
        outbox = Outbox(10)
        await bus.subscribe("supervisor", outbox)
        await bus.ensure_group("calls", "archive")  # remembered, created on connect
        await bus.publish(["supervisor"], {"n": 1})
        assert len(outbox) == 1
        await asyncio.to_thread(server.start)
        await wait_until(lambda: bus.connected, 10000 * MS)
        assert await bus.stream_info("calls", "archive") == {"length": 0, "pending": 0, "lag": 0}
        await bus.stream_add("calls", {"call_id": "c"})
        (entry,) = await bus.stream_read("calls", "archive", "w", block_ms=0)
        assert entry.fields == {"call_id": "c"}
    finally:
        await bus.close()
        server.stop()


def summary(call_id: str, agent_id: str = "a1", started_at: float = 1.0) -> dict:
    return {"call_id": call_id, "agent_id": agent_id, "started_at": started_at, "process": "p"}


async def test_registry_keeps_serving_through_an_outage(redis_server: RedisServer) -> None:
    """During an outage a process still lists its own calls; afterwards the heartbeat restores them
    in a Redis that came back empty, and other processes see them again."""
    a = RedisRegistry(redis_server.url, process="A", ttl_s=1.5)
    b = RedisRegistry(redis_server.url, process="B", ttl_s=1.5)
    await a.start()
    await b.start()
    try:
        await a.upsert(summary("c1"))
        assert [c["call_id"] for c in await b.snapshot()] == ["c1"]
        redis_server.appendonly = False  # come back empty
        await asyncio.to_thread(redis_server.stop)
        started = time.perf_counter()
        await a.upsert(summary("c2", started_at=2.0), state={"type": "call_state", "n": 2})
        await a.remove("c1")
        assert time.perf_counter() - started < 2 * a.op_timeout_s
        assert [c["call_id"] for c in await a.snapshot()] == ["c2"]
        await asyncio.to_thread(redis_server.start)
        await wait_until(lambda: a.connected and b.connected, 10000 * MS)
        await asyncio.sleep(a.heartbeat_s + 0.2)
        assert [c["call_id"] for c in await b.snapshot()] == ["c2"]
        assert await b.call_state("c2") == {"type": "call_state", "n": 2}
        await asyncio.sleep(a.heartbeat_s + 0.2)  # a heartbeat that only refreshes the state's TTL
        assert await b.call_state("c2") == {"type": "call_state", "n": 2}
    finally:
        await a.close()
        await b.close()
