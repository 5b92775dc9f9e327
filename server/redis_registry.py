"""Cluster-wide live-call registry in Redis: every process sees every live call.

Each live call is one key (``live:call:{id}``: owning process, last update, summary)
with a TTL that its process refreshes every ``ttl/3`` seconds; a sorted set indexes the
calls by start time and a set per agent indexes an agent's calls. When a process dies its
keys expire within ``ttl`` seconds (15 by default) and readers prune the index entries.

A new call id is claimed with ``SET NX`` before its session starts, so two processes
never run the same call (a softphone that reconnects to the wrong process is told to try
again); an ended call leaves a marker for a day so the id cannot be reused.

This process's own calls are also kept in memory, the source of truth for them: Redis
writes are best effort with a short timeout, a Redis outage never blocks or fails a call,
and the heartbeat writes everything back once Redis returns (it may have restarted
empty). While Redis is down, snapshots hold this process's calls only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from assist.protocol import CLOSE_TRY_AGAIN_LATER, ProtocolError
from server import keys
from server.redis_bus import CONNECT_TIMEOUT_S, redacted, split_bus_url
from server.registry import LiveRegistry

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 15.0
OP_TIMEOUT_S = 1.0  # a registry write never holds up a call longer than this
ENDED_MARKER_TTL_S = 24 * 3600


class RedisRegistry(LiveRegistry):
    def __init__(
        self,
        url: str,
        *,
        process: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        op_timeout_s: float = OP_TIMEOUT_S,
    ) -> None:
        redis_url, options = split_bus_url(url)
        self.url = redacted(url)
        self.prefix = options.get("prefix") or keys.PREFIX
        self.process = process or f"{socket.gethostname()}:{os.getpid()}"
        self.instance = f"{self.process}/{uuid.uuid4().hex[:8]}"  # unique even if names collide
        self.ttl_s = ttl_s
        self.heartbeat_s = ttl_s / 3
        self.op_timeout_s = op_timeout_s
        self.redis = Redis.from_url(
            redis_url,
            decode_responses=True,
            protocol=2,
            socket_timeout=op_timeout_s * 2,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 1),
        )
        self.connected = False
        self._local: dict[str, dict[str, Any]] = {}  # call id -> stored value, this process's calls
        self._states: dict[str, str] = {}  # call id -> resume state (JSON) of this process's calls
        self._removed: set[str] = set()  # removals Redis has not seen yet
        self._write_lock = asyncio.Lock()  # heartbeat and upserts never interleave stale values
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._beat()
        self._heartbeat = asyncio.create_task(self._beat_forever(), name="redis-registry-heartbeat")

    async def close(self) -> None:
        """Calls still registered here (the call manager ends them first) lapse with their TTL."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self.connected and self._removed:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(self.op_timeout_s):
                    await self._write([], sorted(self._removed), with_state=False)
        await self.redis.aclose()

    # ------------------------------------------------------------------ writes

    async def claim(self, call_id: str) -> None:
        if not self.connected:
            log.warning("registry: Redis unavailable; starting call %s without a cluster-wide claim", call_id)
            return
        key = keys.live_call_key(call_id, self.prefix)
        placeholder = self._value(call_id, None)
        try:
            async with asyncio.timeout(self.op_timeout_s):
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.exists(keys.ended_call_key(call_id, self.prefix))
                    pipe.set(key, json.dumps(placeholder), nx=True, ex=int(self.ttl_s))
                    pipe.get(key)
                    ended, claimed, current = await pipe.execute()
        except (RedisError, OSError, TimeoutError):
            self._lost("claim")
            return
        holder = json.loads(current) if current else None
        if ended and (claimed or (holder and holder["instance"] == self.instance)):
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(self.op_timeout_s):
                    await self.redis.delete(key)
        if ended:
            raise ProtocolError("call_already_ended", f"call {call_id} has already ended and was stored")
        if not claimed and holder and holder["instance"] != self.instance:
            raise ProtocolError(
                "call_live_elsewhere",
                f"call {call_id} is live on {holder['process']}; reconnect to that server",
                close_code=CLOSE_TRY_AGAIN_LATER,
            )

    async def upsert(self, summary: dict[str, Any], *, state: dict[str, Any] | None = None) -> None:
        call_id = summary["call_id"]
        self._local[call_id] = self._value(call_id, summary)
        if state is not None:
            self._states[call_id] = json.dumps(state, separators=(",", ":"), ensure_ascii=False)
        self._removed.discard(call_id)
        await self._try_write([call_id], [], with_state=state is not None)

    async def remove(self, call_id: str) -> None:
        self._states.pop(call_id, None)
        if self._local.pop(call_id, None) is None:
            return
        self._removed.add(call_id)
        await self._try_write([], [call_id])

    def _value(self, call_id: str, summary: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "call_id": call_id,
            "instance": self.instance,
            "process": self.process,
            "updated_at": round(time.time(), 3),
            "call": summary,
        }

    async def _try_write(self, upserts: list[str], removals: list[str], *, with_state: bool = False) -> None:
        if not self.connected:
            return  # the heartbeat writes it back once Redis returns
        try:
            async with asyncio.timeout(self.op_timeout_s):
                await self._write(upserts, removals, with_state=with_state)
        except (RedisError, OSError, TimeoutError):
            self._lost("write")

    async def _write(self, upserts: list[str], removals: list[str], *, with_state: bool) -> None:
        """Summaries are small and written in full; states are written when they change, and
        otherwise only have their TTL refreshed (rewritten if Redis lost them)."""
        ttl = int(self.ttl_s)
        index = keys.live_index_key(self.prefix)
        async with self._write_lock:
            async with self.redis.pipeline(transaction=False) as pipe:
                refreshed: dict[int, str] = {}  # position of an EXPIRE of a state key -> call id
                for call_id in upserts:
                    value = self._local.get(call_id)
                    if value is None:
                        continue
                    summary = value["call"]
                    agent_key = keys.live_agent_key(summary["agent_id"], self.prefix)
                    pipe.set(keys.live_call_key(call_id, self.prefix), json.dumps(value), ex=ttl)
                    pipe.zadd(index, {call_id: summary["started_at"]})
                    pipe.sadd(agent_key, call_id)
                    pipe.expire(agent_key, ttl)
                    if call_id in self._states:
                        state_key = keys.live_state_key(call_id, self.prefix)
                        if with_state:
                            pipe.set(state_key, self._states[call_id], ex=ttl)
                        else:
                            refreshed[len(pipe)] = call_id
                            pipe.expire(state_key, ttl)
                for call_id in removals:
                    pipe.delete(
                        keys.live_call_key(call_id, self.prefix), keys.live_state_key(call_id, self.prefix)
                    )
                    pipe.zrem(index, call_id)
                    pipe.set(keys.ended_call_key(call_id, self.prefix), "1", ex=ENDED_MARKER_TTL_S)
                results = await pipe.execute()
            lost = [c for i, c in refreshed.items() if not results[i] and c in self._states]
            if lost:  # Redis restarted empty: write the states back
                async with self.redis.pipeline(transaction=False) as pipe:
                    for call_id in lost:
                        pipe.set(keys.live_state_key(call_id, self.prefix), self._states[call_id], ex=ttl)
                    await pipe.execute()
        self._removed.difference_update(removals)

    def _lost(self, what: str) -> None:
        if self.connected:
            log.warning("registry: Redis at %s unavailable (%s); keeping live calls locally", self.url, what)
        self.connected = False

    async def _beat(self) -> None:
        """Refresh every local call's TTL by writing it again (this also restores a Redis
        that restarted empty) and apply removals Redis missed."""
        try:
            async with asyncio.timeout(max(self.op_timeout_s, self.heartbeat_s)):
                await self.redis.ping()
                await self._write(list(self._local), sorted(self._removed), with_state=False)
        except (RedisError, OSError, TimeoutError):
            self._lost("heartbeat")
            return
        if not self.connected:
            log.info(
                "registry: Redis at %s available; %d live call(s) registered", self.url, len(self._local)
            )
        self.connected = True

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self._beat()

    # ------------------------------------------------------------------ reads

    async def call_state(self, call_id: str) -> dict[str, Any] | None:
        if not self.connected:
            return None
        try:
            async with asyncio.timeout(self.op_timeout_s):
                raw = await self.redis.get(keys.live_state_key(call_id, self.prefix))
        except (RedisError, OSError, TimeoutError):
            self._lost("state")
            return None
        return json.loads(raw) if raw else None

    async def snapshot(self, *, agent_id: str | None = None) -> list[dict[str, Any]]:
        calls: dict[str, dict[str, Any]] = {}
        if self.connected:
            try:
                async with asyncio.timeout(self.op_timeout_s):
                    calls = await self._read_cluster(agent_id)
            except (RedisError, OSError, TimeoutError):
                self._lost("snapshot")
        for call_id, value in self._local.items():  # ours are always current, even when Redis is not
            if agent_id is None or value["call"]["agent_id"] == agent_id:
                calls[call_id] = {**value["call"], "updated_at": value["updated_at"]}
        return sorted(calls.values(), key=lambda c: (c["started_at"], c["call_id"]))

    async def _read_cluster(self, agent_id: str | None) -> dict[str, dict[str, Any]]:
        index = (
            keys.live_index_key(self.prefix)
            if agent_id is None
            else keys.live_agent_key(agent_id, self.prefix)
        )
        if agent_id is None:
            ids = await self.redis.zrange(index, 0, -1)
        else:
            ids = sorted(await self.redis.smembers(index))
        if not ids:
            return {}
        values = await self.redis.mget([keys.live_call_key(i, self.prefix) for i in ids])
        gone = [i for i, value in zip(ids, values, strict=True) if value is None]
        if gone:  # the process that owned them died or they ended: prune the index
            await (self.redis.zrem(index, *gone) if agent_id is None else self.redis.srem(index, *gone))
        calls = {}
        for value in values:
            if value is None:
                continue
            entry = json.loads(value)
            if entry.get("call") is None:
                continue  # claimed, session not started yet
            calls[entry["call_id"]] = {**entry["call"], "updated_at": entry["updated_at"]}
        return calls
