"""The Redis bus against a real redis-server: fan-out between processes, streams, metrics."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server import keys, redis_bus
from server.bus import StreamEntry
from server.bus_metrics import bus_metrics
from server.outbox import Outbox
from server.redis_bus import RedisBus, split_bus_url
from server.worker import StreamWorker
from tests.cluster import wait_until
from tests.helpers import MS


async def drain(outbox: Outbox, count: int, timeout: float = 5000 * MS) -> list[dict]:
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            message = await outbox.get()
            assert message is not None
            out.append(json.loads(message.text))
    return out


@pytest.fixture
async def buses(redis_url: str) -> AsyncIterator[tuple[RedisBus, RedisBus]]:
    """Two buses as two server processes would have them, in a namespace of their own."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    a, b = RedisBus(redis_url, prefix=prefix), RedisBus(redis_url, prefix=prefix)
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def test_cross_process_delivery_in_order(buses: tuple[RedisBus, RedisBus]) -> None:
    """500 events published on one process reach a subscriber on another, all of them, in order."""
    a, b = buses
    outbox = Outbox(1000)
    await b.subscribe("agent:x", outbox)
    for i in range(500):
        await a.publish(["agent:x"], {"type": "n", "i": i})
    received = await drain(outbox, 500)
    assert [m["i"] for m in received] == list(range(500))
    assert b.counters["received"] == 500 and a.counters["sent"] == 500


async def test_order_holds_when_publishing_switches_between_direct_and_queued(
    buses: tuple[RedisBus, RedisBus], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish writes to Redis's socket at once, unless the socket's buffer is over its
    limit: then it queues for the publisher task. A limit of 0 forces the queue; flipping it
    every 50 events (sometimes letting the publisher task run, sometimes not) switches
    between the two paths 20 times. Every event arrives once, in order."""
    a, b = buses
    outbox = Outbox(2000)
    await b.subscribe("agent:y", outbox)
    paths = {"direct": 0, "queued": 0}
    writable = RedisBus._writable

    def counted(bus: RedisBus) -> bool:
        answer = writable(bus)
        paths["direct" if answer else "queued"] += 1
        return answer

    monkeypatch.setattr(RedisBus, "_writable", counted)
    for block in range(20):
        monkeypatch.setattr(redis_bus, "WRITE_BUFFER_HIGH", 0 if block % 2 else 1 << 20)
        for i in range(50):
            await a.publish(["agent:y"], {"type": "n", "i": block * 50 + i})
        if block % 3 == 0:
            await asyncio.sleep(0.01)  # the publisher task sends what is queued
    received = await drain(outbox, 1000)
    assert [m["i"] for m in received] == list(range(1000))
    await wait_until(lambda: a.counters["sent"] == 1000, 5)
    assert a.counters["dropped"] == 0
    assert paths["direct"] > 100 and paths["queued"] > 100, paths


async def test_local_subscriber_gets_each_event_once(buses: tuple[RedisBus, RedisBus]) -> None:
    """The publishing process delivers locally and skips Redis's echo: no event arrives twice."""
    a, b = buses
    local, remote = Outbox(100), Outbox(100)
    await a.subscribe("supervisor", local)
    await b.subscribe("supervisor", remote)
    for i in range(20):
        await a.publish(["supervisor", "call:c1"], {"type": "n", "i": i}, droppable=i % 2 == 0)
    assert [m["i"] for m in await drain(remote, 20)] == list(range(20))
    await asyncio.sleep(200 * MS)  # time for an echo to arrive, if it were not skipped
    assert len(local) == 20 and [json.loads((await local.get()).text)["i"] for _ in range(20)] == list(
        range(20)
    )
    assert a.counters["received"] == 0


async def test_droppable_flag_survives_the_trip(buses: tuple[RedisBus, RedisBus]) -> None:
    """A remote outbox applies the same overflow policy: droppable events are shed, alerts kept."""
    a, b = buses
    outbox = Outbox(2)
    await b.subscribe("agent:y", outbox)
    await a.publish(["agent:y"], {"type": "alert"})
    await a.publish(["agent:y"], {"type": "interim", "n": 1}, droppable=True)
    await a.publish(["agent:y"], {"type": "interim", "n": 2}, droppable=True)
    await a.publish(["agent:y"], {"type": "assist"})
    await asyncio.sleep(200 * MS)
    kept = [json.loads((await outbox.get()).text)["type"] for _ in range(2)]
    assert kept == ["alert", "assist"] and outbox.dropped == 2


async def test_one_redis_subscription_per_channel(redis_url: str, buses: tuple[RedisBus, RedisBus]) -> None:
    """Many local sockets on one channel share one Redis subscription; the last to leave ends it."""
    _, b = buses
    name = keys.redis_channel("agent:z", b.prefix)
    raw = Redis.from_url(redis_url, decode_responses=True)
    outboxes = [Outbox(10) for _ in range(5)]
    for outbox in outboxes:
        await b.subscribe("agent:z", outbox)
    assert dict(await raw.pubsub_numsub(name)) == {name: 1}
    for outbox in outboxes[:-1]:
        await b.unsubscribe("agent:z", outbox)
    assert dict(await raw.pubsub_numsub(name)) == {name: 1}
    await b.unsubscribe("agent:z", outboxes[-1])
    await asyncio.sleep(100 * MS)
    assert dict(await raw.pubsub_numsub(name)) == {name: 0}
    await raw.aclose()


async def test_undecodable_message_is_skipped(redis_url: str, buses: tuple[RedisBus, RedisBus]) -> None:
    """A foreign message on our channel is logged, counted and skipped; delivery carries on."""
    a, b = buses
    outbox = Outbox(10)
    await b.subscribe("agent:w", outbox)
    raw = Redis.from_url(redis_url, decode_responses=True)
    await raw.publish(keys.redis_channel("agent:w", b.prefix), "hello")
    await raw.aclose()
    await a.publish(["agent:w"], {"type": "ok"})
    assert await drain(outbox, 1) == [{"type": "ok"}]
    assert b.counters["undecodable"] == 1


def test_bus_options_ride_on_the_url() -> None:
    """prefix and stream_maxlen are ours; everything else in the URL goes to redis-py."""
    url, options = split_bus_url(
        "redis://:pw@host:6380/2?prefix=staging&stream_maxlen=500&health_check_interval=3"
    )
    assert url == "redis://:pw@host:6380/2?health_check_interval=3"
    assert options == {"prefix": "staging", "stream_maxlen": "500"}
    bus = RedisBus("redis://:secret@host:6380/2?prefix=staging")
    assert bus.prefix == "staging" and "secret" not in bus.url


# ---------------------------------------------------------------------- streams


async def test_worker_handles_every_entry_once(buses: tuple[RedisBus, RedisBus]) -> None:
    """Two workers in one group split 40 entries: each handled once, all acked, lag and pending 0."""
    a, b = buses
    for i in range(40):
        await a.stream_add("calls", {"event": "call.ended", "call_id": f"c{i}", "nested": {"n": i}})
    seen: list[tuple[str, str]] = []

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(entry: StreamEntry) -> None:
            assert entry.fields["nested"] == {"n": int(entry.fields["call_id"][1:])}
            seen.append((name, entry.fields["call_id"]))
            await asyncio.sleep(5 * MS)

        return handle

    workers = [
        StreamWorker(bus, "calls", "qa", f"w{i}", handler(f"w{i}"), read_block_ms=50)
        for i, bus in enumerate(buses)
    ]
    await asyncio.gather(*(w.run(burst=True) for w in workers))
    assert sorted(c for _, c in seen) == sorted(f"c{i}" for i in range(40))
    assert await a.stream_info("calls", "qa") == {"length": 40, "pending": 0, "lag": 0}


async def test_failed_entry_is_retried_then_dead_lettered(buses: tuple[RedisBus, RedisBus]) -> None:
    """Delivery counts come from XPENDING: after max_tries the entry goes to the dead-letter stream."""
    a, _ = buses
    await a.stream_add("calls", {"call_id": "bad"})
    tries: list[int] = []

    async def handle(entry: StreamEntry) -> None:
        tries.append(entry.deliveries)
        raise ValueError("boom")

    worker = StreamWorker(a, "calls", "qa", "w1", handle, max_tries=3, claim_idle_ms=50, read_block_ms=20)
    task = asyncio.create_task(worker.run())
    await wait_until(lambda: worker.stats.dead == 1, 10000 * MS, "the dead letter")
    await worker.stop()
    await task
    assert tries == [1, 2, 3] and worker.stats.dead == 1
    assert (await a.stream_info("calls", "qa"))["pending"] == 0
    await a.ensure_group("calls:dead", "inspect")
    (dead,) = await a.stream_read("calls:dead", "inspect", "me", block_ms=0)
    assert dead.fields["fields"] == {"call_id": "bad"} and dead.fields["group"] == "qa"


async def test_entry_of_a_dead_consumer_is_reclaimed(buses: tuple[RedisBus, RedisBus]) -> None:
    """An entry read by a consumer that never acked is claimed by another (XAUTOCLAIM), count 2."""
    a, b = buses
    await a.ensure_group("calls", "archive")
    await a.stream_add("calls", {"call_id": "c1"})
    (lost,) = await a.stream_read("calls", "archive", "crashed", block_ms=0)
    handled: list[tuple[str, int]] = []

    async def handle(entry: StreamEntry) -> None:
        handled.append((entry.fields["call_id"], entry.deliveries))

    await asyncio.sleep(60 * MS)
    worker = StreamWorker(b, "calls", "archive", "w2", handle, claim_idle_ms=50, read_block_ms=20)
    await worker.run(burst=True)
    assert handled == [("c1", 2)] and lost.deliveries == 1 and worker.stats.claimed == 1
    assert (await b.stream_info("calls", "archive"))["pending"] == 0


async def test_vanished_group_is_recreated(redis_url: str, buses: tuple[RedisBus, RedisBus]) -> None:
    """If Redis loses the group (restarted empty), the next read re-creates it instead of failing forever."""
    a, _ = buses
    await a.ensure_group("calls", "qa")
    raw = Redis.from_url(redis_url)
    await raw.delete(keys.redis_stream("calls", a.prefix))
    await raw.aclose()
    assert await a.stream_read("calls", "qa", "w", block_ms=0) == []
    await a.stream_add("calls", {"call_id": "after"})
    (entry,) = await a.stream_read("calls", "qa", "w", block_ms=0)
    assert entry.fields == {"call_id": "after"}


async def test_stream_info_and_metrics(buses: tuple[RedisBus, RedisBus]) -> None:
    """stream_info reports length, pending and lag; /metrics gets them from the periodic sample."""
    a, _ = buses
    a.stats_interval_s = 0.05
    await a.ensure_group("calls", "qa")
    for i in range(5):
        await a.stream_add("calls", {"i": i})
    await a.stream_read("calls", "qa", "w", count=2, block_ms=0)
    assert await a.stream_info("calls", "qa") == {"length": 5, "pending": 2, "lag": 3}
    assert await a.stream_info("calls", "nobody") == {"length": 5, "pending": 0, "lag": 5}
    assert await a.stream_info("nothing", "qa") == {"length": 0, "pending": 0, "lag": 0}
    a._stream_stats = await a._collect_stream_stats()
    families = {f.name: f for f in bus_metrics(a)}
    lag = {tuple(s.labels.values()): s.value for s in families["callassist_stream_lag"].samples}
    pending = {tuple(s.labels.values()): s.value for s in families["callassist_stream_pending"].samples}
    assert lag[("calls", "qa")] == 3 and pending[("calls", "qa")] == 2
    published = {s.labels["event"]: s.value for s in families["callassist_bus_messages"].samples}
    assert set(published) >= {"published", "delivered", "sent", "received", "dropped"}


async def test_stream_is_bounded_by_approximate_maxlen(redis_url: str) -> None:
    """XADD trims to about stream_maxlen entries (Redis trims whole nodes, so a little more)."""
    bus = RedisBus(f"{redis_url}?prefix=t-{uuid.uuid4().hex[:8]}&stream_maxlen=100")
    await bus.start()
    try:
        for i in range(1000):
            await bus.stream_add("calls", {"i": i})
        length = (await bus.stream_info("calls", "g"))["length"]
    finally:
        await bus.close()
    assert 100 <= length <= 300
