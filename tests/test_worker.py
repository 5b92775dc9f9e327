"""Stream workers on the in-memory bus: ack after success, retry, re-claim, dead letter."""

from __future__ import annotations

import asyncio

from server.bus import MemoryBus, StreamEntry
from server.worker import StreamWorker


async def test_each_entry_handled_and_acked() -> None:
    """Every entry is handled once and nothing stays pending."""
    bus = MemoryBus()
    for i in range(20):
        await bus.stream_add("calls", {"event": "call.ended", "call_id": f"c{i}"})
    seen: list[str] = []

    async def handle(entry: StreamEntry) -> None:
        seen.append(entry.fields["call_id"])

    worker = StreamWorker(bus, "calls", "qa", "w1", handle, read_block_ms=10)
    await worker.run(burst=True)
    assert sorted(seen) == sorted(f"c{i}" for i in range(20))
    assert await bus.stream_info("calls", "qa") == {"length": 0, "pending": 0, "lag": 0}  # all acked: trimmed


async def test_failed_entry_is_retried_then_dead_lettered() -> None:
    """A handler that always fails leaves the entry pending; after max_tries it is dead-lettered."""
    bus = MemoryBus()
    await bus.stream_add("calls", {"call_id": "bad"})
    tries = 0

    async def handle(entry: StreamEntry) -> None:
        nonlocal tries
        tries += 1
        raise ValueError("boom")

    worker = StreamWorker(bus, "calls", "qa", "w1", handle, max_tries=3, claim_idle_ms=30, read_block_ms=10)
    task = asyncio.create_task(worker.run())
    for _ in range(200):
        if worker.stats.dead:
            break
        await asyncio.sleep(0.01)
    await worker.stop()
    await task
    assert tries == 3 and worker.stats.dead == 1
    assert (await bus.stream_info("calls", "qa"))["pending"] == 0
    dead = await bus.stream_read("calls:dead", "inspect", "me", block_ms=0)
    assert dead[0].fields["fields"] == {"call_id": "bad"}


async def test_entry_of_a_dead_consumer_is_reclaimed() -> None:
    """An entry read by a consumer that never acked is claimed by another after the idle time."""
    bus = MemoryBus()
    await bus.ensure_group("calls", "qa")
    await bus.stream_add("calls", {"call_id": "c1"})
    (lost,) = await bus.stream_read("calls", "qa", "crashed", block_ms=0)
    handled: list[tuple[str, int]] = []

    async def handle(entry: StreamEntry) -> None:
        handled.append((entry.fields["call_id"], entry.deliveries))

    await asyncio.sleep(0.05)
    worker = StreamWorker(bus, "calls", "qa", "w2", handle, claim_idle_ms=30, read_block_ms=10)
    await worker.run(burst=True)
    assert handled == [("c1", 2)] and lost.deliveries == 1
    assert (await bus.stream_info("calls", "qa"))["pending"] == 0


async def test_memory_stream_trims_only_what_was_consumed() -> None:
    """The in-memory stream drops what every group has acked, never what a group has not."""
    bus = MemoryBus(stream_maxlen=5)
    await bus.ensure_group("s", "g")
    for i in range(10):
        await bus.stream_add("s", {"i": i})
    assert (await bus.stream_info("s", "g"))["length"] == 10  # nothing consumed yet: nothing trimmed
    entries = await bus.stream_read("s", "g", "c", count=10, block_ms=0)
    await bus.stream_ack("s", "g", [e.id for e in entries])
    await bus.stream_add("s", {"i": 10})
    assert (await bus.stream_info("s", "g")) == {"length": 1, "pending": 0, "lag": 1}
