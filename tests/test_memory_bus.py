"""The in-process bus keeps a bounded stream: whole call records live in RAM (bench/soak.py)."""

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
