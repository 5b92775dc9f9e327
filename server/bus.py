"""The event bus seam: pub/sub fan-out to sockets, and streams for work that must not be lost.

Backends are chosen by URL: ``memory://`` (one process, the embedded default) or
``redis://host:port/db`` (see server/redis_bus.py). Each process keeps one backend
subscription per channel and fans out locally to the connections' outboxes (Hub).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.outbox import BusMessage, Outbox


class BusUnavailable(ConnectionError):
    """The bus backend is unreachable; callers fail fast and retry later (nothing is lost
    that they keep, e.g. the store's outbox of call.ended)."""


@dataclass(frozen=True, slots=True)
class StreamEntry:
    id: str
    fields: dict[str, Any]
    deliveries: int = 1


class Hub:
    """Local fan-out: channel -> outboxes of this process's sockets."""

    def __init__(self, counters: Counter[str]) -> None:
        self._subscribers: dict[str, set[Outbox]] = {}
        self._counters = counters

    def add(self, channel: str, outbox: Outbox) -> bool:
        """Returns True when this is the channel's first local subscriber."""
        subscribers = self._subscribers.setdefault(channel, set())
        subscribers.add(outbox)
        return len(subscribers) == 1

    def remove(self, channel: str, outbox: Outbox) -> bool:
        """Returns True when the channel has no local subscriber left."""
        subscribers = self._subscribers.get(channel)
        if subscribers is None:
            return False
        subscribers.discard(outbox)
        if not subscribers:
            del self._subscribers[channel]
            return True
        return False

    def channels(self) -> list[str]:
        return list(self._subscribers)

    def deliver(self, channel: str, message: BusMessage) -> None:
        for outbox in self._subscribers.get(channel, ()):
            outbox.put(message)
            self._counters["delivered"] += 1


def encode(payload: dict[str, Any], droppable: bool) -> BusMessage:
    return BusMessage(json.dumps(payload, separators=(",", ":"), ensure_ascii=False), droppable)


class Bus(ABC):
    url: str

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.hub = Hub(self.counters)

    async def start(self) -> None:  # noqa: B027 - optional hook
        pass

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @property
    def connected(self) -> bool:
        return True

    # -- pub/sub (fire and forget; a lost message is counted, never raised to the caller)

    @abstractmethod
    async def publish(
        self, channels: Sequence[str], payload: dict[str, Any], *, droppable: bool = False
    ) -> None:
        """Serialise once, deliver to every channel."""

    async def subscribe(self, channel: str, outbox: Outbox) -> None:
        self.hub.add(channel, outbox)

    async def unsubscribe(self, channel: str, outbox: Outbox) -> None:
        self.hub.remove(channel, outbox)

    # -- streams with consumer groups (at-least-once work queues)

    @abstractmethod
    async def stream_add(self, stream: str, fields: dict[str, Any]) -> str: ...

    @abstractmethod
    async def ensure_group(self, stream: str, group: str) -> None: ...

    @abstractmethod
    async def stream_read(
        self, stream: str, group: str, consumer: str, *, count: int = 10, block_ms: int = 1000
    ) -> list[StreamEntry]: ...

    @abstractmethod
    async def stream_ack(self, stream: str, group: str, entry_ids: list[str]) -> None: ...

    @abstractmethod
    async def stream_claim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 10
    ) -> list[StreamEntry]:
        """Take over entries another consumer read but never acked (XAUTOCLAIM)."""

    @abstractmethod
    async def stream_info(self, stream: str, group: str) -> dict[str, int]:
        """length, pending and lag (entries not yet delivered to the group)."""

    def stream_gauges(self) -> dict[str, dict[str, Any]]:
        """For /metrics, without I/O: ``{stream: {"length": n, "groups": {group: {"pending", "lag"}}}}``
        (the Redis backend samples these every few seconds)."""
        return {}


@dataclass
class _Group:
    next_index: int = 0
    pending: dict[str, list[Any]] = field(default_factory=dict)  # id -> [consumer, delivered_at, count]


class _MemoryStream:
    """Entries addressed by absolute position; ``base`` is the position of entries[0]."""

    def __init__(self, maxlen: int) -> None:
        self.entries: deque[tuple[str, dict[str, Any]]] = deque()
        self.base = 0
        self.index: dict[str, int] = {}
        self.groups: dict[str, _Group] = {}
        self.changed = asyncio.Condition()
        self.maxlen = maxlen

    @property
    def end(self) -> int:
        return self.base + len(self.entries)

    def at(self, position: int) -> tuple[str, dict[str, Any]]:
        return self.entries[position - self.base]

    def trim(self) -> None:
        """Entries every group has read and acked go at once: nobody outside this process can
        read them, and each is a whole call record in RAM (GC-tracked: full collections would
        walk them). With no group yet, the last ``maxlen`` wait for the first one, like MAXLEN.
        Never drops an entry a group has not read or not acked."""
        delivered = min((g.next_index for g in self.groups.values()), default=self.end)
        keep = 0 if self.groups else self.maxlen
        while len(self.entries) > keep and self.base < delivered:
            entry_id = self.entries[0][0]
            if any(entry_id in g.pending for g in self.groups.values()):
                break
            self.entries.popleft()
            del self.index[entry_id]
            self.base += 1


# Entries are whole call records held in this process's RAM (~50-100 KB each as Python
# objects). This many wait for a group that does not exist yet; see _MemoryStream.trim.
MEMORY_STREAM_MAXLEN = 1_000


class MemoryBus(Bus):
    """One process: publish delivers straight to local outboxes; streams live in memory."""

    def __init__(self, url: str = "memory://", *, stream_maxlen: int = MEMORY_STREAM_MAXLEN) -> None:
        super().__init__()
        self.url = url
        self.stream_maxlen = stream_maxlen
        self._streams: dict[str, _MemoryStream] = {}
        self._ids = itertools.count(1)

    async def publish(
        self, channels: Sequence[str], payload: dict[str, Any], *, droppable: bool = False
    ) -> None:
        message = encode(payload, droppable)
        for channel in channels:
            self.counters["published"] += 1
            self.hub.deliver(channel, message)

    def _stream(self, name: str) -> _MemoryStream:
        if name not in self._streams:
            self._streams[name] = _MemoryStream(self.stream_maxlen)
        return self._streams[name]

    async def stream_add(self, stream: str, fields: dict[str, Any]) -> str:
        s = self._stream(stream)
        entry_id = f"{int(time.time() * 1000)}-{next(self._ids)}"
        s.index[entry_id] = s.end
        s.entries.append((entry_id, json.loads(json.dumps(fields))))  # same copy semantics as Redis
        s.trim()
        async with s.changed:
            s.changed.notify_all()
        self.counters["stream_added"] += 1
        return entry_id

    async def ensure_group(self, stream: str, group: str) -> None:
        self._stream(stream).groups.setdefault(group, _Group())

    async def stream_read(
        self, stream: str, group: str, consumer: str, *, count: int = 10, block_ms: int = 1000
    ) -> list[StreamEntry]:
        s = self._stream(stream)
        g = s.groups.setdefault(group, _Group())
        g.next_index = max(g.next_index, s.base)
        if g.next_index >= s.end and block_ms > 0:
            async with s.changed:
                try:
                    await asyncio.wait_for(s.changed.wait_for(lambda: g.next_index < s.end), block_ms / 1000)
                except TimeoutError:
                    return []
        out = []
        now = time.monotonic()
        while g.next_index < s.end and len(out) < count:
            entry_id, fields = s.at(g.next_index)
            g.next_index += 1
            g.pending[entry_id] = [consumer, now, 1]
            out.append(StreamEntry(entry_id, fields, 1))
        return out

    async def stream_ack(self, stream: str, group: str, entry_ids: list[str]) -> None:
        s = self._stream(stream)
        g = s.groups.setdefault(group, _Group())
        for entry_id in entry_ids:
            if g.pending.pop(entry_id, None) is not None:
                self.counters["stream_acked"] += 1
        s.trim()

    async def stream_claim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 10
    ) -> list[StreamEntry]:
        s = self._stream(stream)
        g = s.groups.setdefault(group, _Group())
        now = time.monotonic()
        out = []
        for entry_id, state in list(g.pending.items()):
            if len(out) >= count:
                break
            if (now - state[1]) * 1000 >= min_idle_ms:
                state[0], state[1], state[2] = consumer, now, state[2] + 1
                out.append(StreamEntry(entry_id, s.at(s.index[entry_id])[1], state[2]))
        self.counters["stream_claimed"] += len(out)
        return out

    async def stream_info(self, stream: str, group: str) -> dict[str, int]:
        s = self._stream(stream)
        g = s.groups.get(group, _Group(next_index=s.base))
        return {"length": len(s.entries), "pending": len(g.pending), "lag": s.end - max(g.next_index, s.base)}

    def stream_gauges(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "length": len(s.entries),
                "groups": {
                    group: {"pending": len(g.pending), "lag": s.end - max(g.next_index, s.base)}
                    for group, g in s.groups.items()
                },
            }
            for name, s in self._streams.items()
        }


def create_bus(url: str) -> Bus:
    if url.startswith("memory://"):
        # memory://?stream_maxlen=N: stream entries (call records) kept in RAM, like Redis MAXLEN.
        from urllib.parse import parse_qs, urlsplit

        maxlen = parse_qs(urlsplit(url).query).get("stream_maxlen")
        return MemoryBus(url, stream_maxlen=int(maxlen[0])) if maxlen else MemoryBus(url)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from server.redis_bus import RedisBus

        return RedisBus(url)
    raise ValueError(f"unsupported bus URL {url!r}: use memory:// or redis://host:port/db")
