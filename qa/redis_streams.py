"""Stop-gap Redis backend for the QA worker until ``server/redis_bus.py`` lands.

Only what a stream consumer needs: XADD / XREADGROUP / XACK / XAUTOCLAIM / XPENDING over
the key names of ``server.keys`` (so it reads the same streams the full Redis bus will
write), and PUBLISH for the supervisor summary. ``open_bus`` prefers the server's own
backend whenever it exists.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from server import keys
from server.bus import Bus, StreamEntry, create_bus

STREAM_MAXLEN = 100_000


def open_bus(url: str) -> Bus:
    try:
        return create_bus(url)
    except ModuleNotFoundError as exc:
        if exc.name != "server.redis_bus":
            raise
        return RedisStreamBus(url)


class RedisStreamBus(Bus):
    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self.url = url
        self._redis = redis.Redis.from_url(url, decode_responses=True)

    async def close(self) -> None:
        await self._redis.aclose()

    async def publish(
        self, channels: Sequence[str], payload: dict[str, Any], *, droppable: bool = False
    ) -> None:
        message = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        for channel in channels:
            try:
                await self._redis.publish(keys.redis_channel(channel), message)
                self.counters["published"] += 1
            except Exception:
                self.counters["publish_failed"] += 1

    async def stream_add(self, stream: str, fields: dict[str, Any]) -> str:
        entry_id: str = await self._redis.xadd(
            keys.redis_stream(stream),
            {"json": json.dumps(fields, ensure_ascii=False)},
            maxlen=STREAM_MAXLEN,
            approximate=True,
        )
        return entry_id

    async def ensure_group(self, stream: str, group: str) -> None:
        from redis.exceptions import ResponseError

        try:
            await self._redis.xgroup_create(keys.redis_stream(stream), group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def stream_read(
        self, stream: str, group: str, consumer: str, *, count: int = 10, block_ms: int = 1000
    ) -> list[StreamEntry]:
        reply = await self._redis.xreadgroup(
            group, consumer, {keys.redis_stream(stream): ">"}, count=count, block=block_ms or None
        )
        return [
            StreamEntry(entry_id, _fields(raw), 1) for _, entries in reply or [] for entry_id, raw in entries
        ]

    async def stream_ack(self, stream: str, group: str, entry_ids: list[str]) -> None:
        if entry_ids:
            await self._redis.xack(keys.redis_stream(stream), group, *entry_ids)

    async def stream_claim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 10
    ) -> list[StreamEntry]:
        name = keys.redis_stream(stream)
        _, claimed, *_ = await self._redis.xautoclaim(name, group, consumer, min_idle_ms, "0-0", count=count)
        entries = [(entry_id, raw) for entry_id, raw in claimed if raw is not None]
        if not entries:
            return []
        deliveries = {}
        for entry_id, _ in entries:  # XAUTOCLAIM does not say how often an entry was delivered
            pending = await self._redis.xpending_range(name, group, min=entry_id, max=entry_id, count=1)
            deliveries[entry_id] = int(pending[0]["times_delivered"]) if pending else 1
        return [StreamEntry(entry_id, _fields(raw), deliveries[entry_id]) for entry_id, raw in entries]

    async def stream_info(self, stream: str, group: str) -> dict[str, int]:
        from redis.exceptions import ResponseError

        name = keys.redis_stream(stream)
        length = int(await self._redis.xlen(name))
        try:
            groups = await self._redis.xinfo_groups(name)
        except ResponseError:  # no such stream yet
            groups = []
        for info in groups:
            if info["name"] == group:
                return {"length": length, "pending": int(info["pending"]), "lag": int(info.get("lag") or 0)}
        return {"length": length, "pending": 0, "lag": length}


def _fields(raw: dict[str, str]) -> dict[str, Any]:
    if "json" in raw:
        return json.loads(raw["json"])  # type: ignore[no-any-return]
    return dict(raw)
