"""The in-process bus keeps its streams short: whole call records live in RAM, and every one
of their objects is walked by a full garbage collection (bench/soak.py)."""

from __future__ import annotations

from server.bus import MEMORY_STREAM_MAXLEN, MemoryBus, create_bus


def test_memory_url_sets_the_stream_length() -> None:
    bus = create_bus("memory://?stream_maxlen=5")
    assert isinstance(bus, MemoryBus) and bus.stream_maxlen == 5
    assert create_bus("memory://").stream_maxlen == MEMORY_STREAM_MAXLEN  # type: ignore[attr-defined]


async def test_trim_keeps_unread_and_unacked_entries() -> None:
    """Only entries every group has read and acked are trimmed past maxlen."""
    bus = MemoryBus(stream_maxlen=3)
    await bus.ensure_group("calls", "qa")
    for i in range(6):
        await bus.stream_add("calls", {"n": i})
    read = await bus.stream_read("calls", "qa", "c1", count=10, block_ms=0)
    assert [e.fields["n"] for e in read] == list(range(6))  # nothing unread was dropped
    await bus.stream_ack("calls", "qa", [e.id for e in read[:4]])
    await bus.stream_add("calls", {"n": 6})
    stream = bus._streams["calls"]
    assert [fields["n"] for _, fields in stream.entries] == [4, 5, 6]  # acked ones trimmed, pending kept


async def test_an_entry_goes_once_every_group_has_acked_it() -> None:
    bus = MemoryBus(stream_maxlen=100)
    for group in ("qa", "analytics"):
        await bus.ensure_group("calls", group)
    for i in range(3):
        await bus.stream_add("calls", {"n": i})
    qa = await bus.stream_read("calls", "qa", "c1", count=10, block_ms=0)
    await bus.stream_ack("calls", "qa", [e.id for e in qa])
    assert (await bus.stream_info("calls", "qa"))["length"] == 3  # analytics has not read them
    analytics = await bus.stream_read("calls", "analytics", "c1", count=10, block_ms=0)
    await bus.stream_ack("calls", "analytics", [analytics[0].id, analytics[2].id])
    stream = bus._streams["calls"]
    assert [fields["n"] for _, fields in stream.entries] == [1, 2]  # 1 is pending, so 2 waits behind it
    await bus.stream_ack("calls", "analytics", [analytics[1].id])
    assert not stream.entries and await bus.stream_info("calls", "qa") == {
        "length": 0,
        "pending": 0,
        "lag": 0,
    }


async def test_without_a_group_the_last_maxlen_entries_wait_for_the_first_one() -> None:
    bus = MemoryBus(stream_maxlen=3)
    for i in range(5):
        await bus.stream_add("calls", {"n": i})
    read = await bus.stream_read("calls", "late", "c1", count=10, block_ms=0)
    assert [e.fields["n"] for e in read] == [2, 3, 4]
