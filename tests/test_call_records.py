"""Durable call records: stored before 'end' is acknowledged, served over REST, announced on the
calls stream even when the bus was down at the time (outbox relay)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from server import keys
from tests.cluster import RedisServer
from tests.helpers import MS, RunningServer, Softphone, start_server


async def one_call(server: RunningServer, call_id: str, agent_id: str, **start: Any) -> dict[str, Any]:
    async with Softphone(server.ws, call_id) as phone:
        await phone.start(agent_id, **start)
        await phone.say("customer", "my card 4111 1111 1111 1111 was charged twice", 3.0, "u-1")
        return await phone.end()


@dataclass
class RecordsServer:
    server: RunningServer
    redis: RedisServer


@pytest.fixture(scope="module")
def records(
    embedder: Any, demo_config: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RecordsServer]:
    """One server on a Redis of its own (so a test may stop and restart it)."""
    from server.app import create_app
    from server.settings import Settings

    directory = tmp_path_factory.mktemp("records")
    redis = RedisServer(directory / "redis").start()
    settings = Settings(store_path=directory / "calls.db", bus_url=redis.url, process_name="records")
    server = start_server(create_app(settings, embedder=embedder, config=demo_config))
    yield RecordsServer(server, redis)
    server.stop()
    redis.stop()


async def test_record_is_durable_when_end_is_acked(records: RecordsServer) -> None:
    """When the softphone gets 'ended', the record is already on disk (another connection reads it)
    with the transcript redacted, the assists and the sentiment series."""
    server = records.server
    ack = await one_call(server, "dur-1", "agent-d", customer={"id": "cust-7"})
    assert ack == {"type": "ended", "call_id": "dur-1", "stored": True, "utterances": 1}
    with contextlib.closing(sqlite3.connect(server.services.settings.store_path)) as db:
        (raw,) = db.execute("SELECT record FROM calls WHERE call_id = 'dur-1'").fetchone()
    record = json.loads(raw)
    assert "4111" not in record["utterances"][0]["text"]
    assert [a["utterance_id"] for a in record["assists"]] == ["u-1"]
    assert len(record["sentiment_series"]) == 1 and record["customer"]["id"] == "cust-7"


async def test_calls_api(records: RecordsServer) -> None:
    """GET /v1/calls/{id}: 200 stored, 409 while live, 404 unknown; GET /v1/calls filters by
    since/until (unix seconds or ISO 8601, naive = UTC), agent and customer, pages, and rejects bad
    queries with a JSON error."""
    server = records.server
    for i in range(5):
        await one_call(server, f"api-{i}", f"agent-{i % 2}", customer={"id": f"cust-{i % 3}"})
    async with httpx.AsyncClient(base_url=server.http) as client, Softphone(server.ws, "api-live") as live:
        await live.start("agent-live")

        async def ids(**params: Any) -> list[str]:  # this test's calls (the module's server has others)
            calls = (await client.get("/v1/calls", params=params)).json()["calls"]
            return [c["call_id"] for c in calls if c["call_id"].startswith("api-")]

        listing = [
            c for c in (await client.get("/v1/calls")).json()["calls"] if c["call_id"].startswith("api-")
        ]
        assert [c["call_id"] for c in listing] == [f"api-{i}" for i in (4, 3, 2, 1, 0)]  # newest first
        assert "record" not in listing[0] and listing[0]["agent_id"] == "agent-0"
        ended = sorted(c["ended_at"] for c in listing)
        assert await ids(since=ended[2]) == ["api-4", "api-3", "api-2"]
        assert len(await ids(since="1970-01-01T00:00:00")) == 5
        assert await ids(since="2999-01-01T00:00:00Z") == []
        assert await ids(until=ended[2]) == ["api-1", "api-0"]
        assert await ids(agent_id="agent-1") == ["api-3", "api-1"]
        assert await ids(customer_id="cust-0") == ["api-3", "api-0"]
        page = (await client.get("/v1/calls", params={"limit": 2, "offset": 2})).json()
        assert [c["call_id"] for c in page["calls"]] == ["api-2", "api-1"] and page["limit"] == 2
        for bad in ({"since": "yesterday"}, {"limit": 0}, {"limit": "many"}, {"offset": -1}):
            response = await client.get("/v1/calls", params=bad)
            assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_query"
        stored = await client.get("/v1/calls/api-3")
        assert stored.status_code == 200 and stored.json()["call_id"] == "api-3"
        live_call = await client.get("/v1/calls/api-live")
        assert live_call.status_code == 409 and live_call.json()["error"]["code"] == "call_live"
        missing = await client.get("/v1/calls/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_call"
        await live.end()


async def test_calls_ended_while_redis_is_down_are_relayed(records: RecordsServer) -> None:
    """150 calls end while Redis is down: every 'end' is acked as stored; once Redis is back the
    outbox relay puts each call.ended on the stream, and only once."""
    server, redis = records.server, records.redis
    try:
        await asyncio.to_thread(redis.stop)
        for _ in range(100):
            if not server.services.bus.connected:
                break
            await asyncio.sleep(20 * MS)

        async def quick(i: int) -> dict[str, Any]:
            async with Softphone(server.ws, f"relay-{i}") as phone:
                await phone.start(f"agent-{i % 10}")
                return await phone.end()

        acks = await asyncio.gather(*(quick(i) for i in range(150)))
        assert all(a["stored"] for a in acks)
        assert len(await server.services.store.unpublished(1000)) == 150
        await asyncio.to_thread(redis.start)
        raw = Redis.from_url(redis.url, decode_responses=True)
        stream = keys.redis_stream(keys.CALLS_STREAM)
        announced: list[str] = []
        for _ in range(600):  # the relay leaves records alone for 10 s, then runs every 5 s
            entries = [json.loads(f["data"]) for _, f in await raw.xrange(stream, "-", "+")]
            announced = [
                e["call_id"] for e in entries if e["event"] == "call.ended" and "relay-" in e["call_id"]
            ]
            if len(announced) >= 150:
                break
            await asyncio.sleep(50 * MS)
        await asyncio.sleep(300 * MS)
        entries = [json.loads(f["data"]) for _, f in await raw.xrange(stream, "-", "+")]
        announced = [e["call_id"] for e in entries if e["event"] == "call.ended" and "relay-" in e["call_id"]]
        await raw.aclose()
        assert sorted(announced) == sorted(f"relay-{i}" for i in range(150))
        assert await server.services.store.unpublished(1000) == []
        assert all(e["record"]["call_id"] == e["call_id"] for e in entries if e["event"] == "call.ended")
    finally:
        if redis.process is None:
            redis.start()


async def test_end_is_not_acked_when_the_store_fails(records: RecordsServer) -> None:
    """If the record cannot be written (the database stays locked past its busy timeout), 'end'
    is answered with store_unavailable, the call stays live, and a second 'end' stores it."""
    server = records.server
    blocker = sqlite3.connect(server.services.settings.store_path, isolation_level=None)
    try:
        async with Softphone(server.ws, "locked-1") as phone:
            await phone.start("agent-locked")
            await phone.say("customer", "I want to dispute a charge", 2.0, "u-1")
            await asyncio.sleep(500 * MS)  # the utterance is analysed before the lock is taken
            blocker.execute("BEGIN IMMEDIATE")
            await phone.send({"type": "end"})
            refused = await phone.recv(timeout=20000 * MS)  # after SQLite's 5 s busy timeout
            assert refused["type"] == "error" and refused["code"] == "store_unavailable"
            assert server.services.calls.local_session("locked-1") is not None
            blocker.execute("ROLLBACK")
            ack = await phone.end()
        assert ack == {"type": "ended", "call_id": "locked-1", "stored": True, "utterances": 1}
        stored = await server.services.store.get_call("locked-1")
        assert stored is not None and [a["utterance_id"] for a in stored["assists"]] == ["u-1"]
    finally:
        blocker.close()
