"""Routing state in Redis, shared by every router process, with atomic claims.

Layout (names from ``server.keys.routing_key``): one hash per agent and per call, a set of
agent ids, a set of queued call ids, a sequence counter, and a change stream. Every change
runs in one Lua script that also appends the new record to the change stream, so routers
keep their local engine in step by reading the stream (and reload everything if they fell
so far behind that the stream was trimmed past them).

Claims are one script: it checks that the agent is free and the call still queued and
changes both, so two routers racing for the same agent or call get one winner. Agent
updates reuse the Python transition rules (``routing.state.agent_transition``) and commit
with a compare-and-set on the agent's version, retried on a lost race.

Time comes from the routers (``now`` arguments): run them with synchronised clocks (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from routing.errors import Conflict, NotFound, StateUnavailable
from routing.model import AgentProfile, AgentRecord, AgentStatus, CallerProfile, CallRecord, CallState
from routing.state import ClaimResult, RoutingState, agent_transition
from server import keys

log = logging.getLogger(__name__)

# Emits one change-stream entry with the record's hash (the decision is left out: it is big
# and only GET /calls/{id} needs it).
_EMIT = """
local function emit(stream, counter, maxlen, kind, id, key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do
    if flat[i] ~= 'decision' then t[flat[i]] = flat[i + 1] end
  end
  local n = redis.call('INCR', counter)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'n', n, 'kind', kind, 'id', id, 'data', cjson.encode(t))
  return flat
end
"""

# KEYS: agent, call, queue, changes, change counter. ARGV: agent_id, call_id, now, decision, maxlen, ttl
CLAIM = (
    _EMIT
    + """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 0 then
  return {0, 'missing', redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
end
local a = redis.call('HMGET', KEYS[1], 'status', 'wrap_until', 'version')
local c = redis.call('HMGET', KEYS[2], 'state', 'version')
if c[1] ~= 'queued' then
  return {0, 'call_taken', redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
end
local now = tonumber(ARGV[3])
if not (a[1] == 'available' or (a[1] == 'wrap_up' and tonumber(a[2]) <= now)) then
  return {0, 'agent_busy', redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
end
redis.call('HSET', KEYS[1], 'status', 'on_call', 'call_id', ARGV[2], 'status_since', ARGV[3],
           'wrap_until', '0', 'version', tonumber(a[3]) + 1)
redis.call('HSET', KEYS[2], 'state', 'assigned', 'agent_id', ARGV[1], 'assigned_at', ARGV[3],
           'decision', ARGV[4], 'version', tonumber(c[2]) + 1)
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[6])
local agent = emit(KEYS[4], KEYS[5], ARGV[5], 'agent', ARGV[1], KEYS[1])
local call = emit(KEYS[4], KEYS[5], ARGV[5], 'call', ARGV[2], KEYS[2])
return {1, 'ok', agent, call}
"""
)

# KEYS: call, queue, seq, changes, change counter. ARGV: call_id, profile, enqueued_at, wait_start, maxlen
ADD_CALL = (
    _EMIT
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'profile', ARGV[2], 'state', 'queued', 'enqueued_at', ARGV[3],
           'wait_start', ARGV[4], 'seq', seq, 'agent_id', '', 'assigned_at', '', 'ended_at', '',
           'callback_offered', '0', 'callback', '0', 'callback_number', '', 'version', 1)
redis.call('SADD', KEYS[2], ARGV[1])
return {1, emit(KEYS[4], KEYS[5], ARGV[5], 'call', ARGV[1], KEYS[1])}
"""
)

# KEYS: call, queue, changes, change counter. ARGV: call_id, now, maxlen, ttl
ABANDON = (
    _EMIT
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 'missing'} end
local c = redis.call('HMGET', KEYS[1], 'state', 'version')
if c[1] ~= 'queued' then return {0, c[1]} end
redis.call('HSET', KEYS[1], 'state', 'abandoned', 'ended_at', ARGV[2], 'version', tonumber(c[2]) + 1)
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {1, emit(KEYS[3], KEYS[4], ARGV[3], 'call', ARGV[1], KEYS[1])}
"""
)

# KEYS: call, changes, change counter. ARGV: call_id, accepted, number, maxlen
CALLBACK = (
    _EMIT
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 'missing'} end
local c = redis.call('HMGET', KEYS[1], 'state', 'version')
if c[1] ~= 'queued' then return {0, c[1]} end
redis.call('HSET', KEYS[1], 'callback_offered', '1', 'version', tonumber(c[2]) + 1)
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'callback', '1', 'callback_number', ARGV[3]) end
return {1, emit(KEYS[2], KEYS[3], ARGV[4], 'call', ARGV[1], KEYS[1])}
"""
)

# Compare-and-set of a whole agent record. KEYS: agent, agents, changes, change counter.
# ARGV: agent_id, expected version ('' = must not exist), maxlen, field, value, ...
PUT_AGENT = (
    _EMIT
    + """
local version = redis.call('HGET', KEYS[1], 'version')
if (ARGV[2] == '' and version) or (ARGV[2] ~= '' and version ~= ARGV[2]) then return {0} end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SADD', KEYS[2], ARGV[1])
return {1, emit(KEYS[3], KEYS[4], ARGV[3], 'agent', ARGV[1], KEYS[1])}
"""
)


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def agent_to_hash(record: AgentRecord) -> dict[str, str]:
    return {
        "profile": record.profile.model_dump_json(),
        "status": record.status.value,
        "call_id": record.call_id or "",
        "status_since": repr(record.status_since),
        "idle_since": repr(record.idle_since),
        "wrap_until": repr(record.wrap_until),
        "version": str(record.version),
    }


def agent_from_hash(data: dict[str, str]) -> AgentRecord:
    return AgentRecord(
        profile=AgentProfile.model_validate_json(data["profile"]),
        status=AgentStatus(data["status"]),
        call_id=data.get("call_id") or None,
        status_since=float(data.get("status_since") or 0),
        idle_since=float(data.get("idle_since") or 0),
        wrap_until=float(data.get("wrap_until") or 0),
        version=int(data.get("version") or 0),
    )


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def call_from_hash(data: dict[str, str]) -> CallRecord:
    decision = data.get("decision")
    return CallRecord(
        profile=CallerProfile.model_validate_json(data["profile"]),
        state=CallState(data["state"]),
        enqueued_at=float(data.get("enqueued_at") or 0),
        wait_start=float(data.get("wait_start") or 0),
        seq=int(data.get("seq") or 0),
        agent_id=data.get("agent_id") or None,
        assigned_at=_float(data.get("assigned_at")),
        ended_at=_float(data.get("ended_at")),
        callback_offered=data.get("callback_offered") == "1",
        callback=data.get("callback") == "1",
        callback_number=data.get("callback_number") or None,
        decision=json.loads(decision) if decision else None,
        version=int(data.get("version") or 0),
    )


class RedisState(RoutingState):
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "default",
        stream_maxlen: int = 10_000,
        finished_ttl_s: int = 3600,
        cas_retries: int = 20,
    ) -> None:
        from server.redis_bus import split_bus_url

        # The bus URL may carry our own options (?prefix=...): redis-py must not see them.
        url, options = split_bus_url(url)
        self.url = url
        # Two deployments sharing one Redis (different bus prefixes) keep their routing apart too.
        self.namespace = f"{options['prefix']}{namespace}" if options.get("prefix") else namespace
        self.stream_maxlen = stream_maxlen
        self.finished_ttl_s = finished_ttl_s
        self.cas_retries = cas_retries
        self.redis: aioredis.Redis = aioredis.from_url(url, decode_responses=True)
        self._last_id = "0-0"
        self._last_n = 0
        self._sync_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False
        self._claim = self.redis.register_script(CLAIM)
        self._add_call = self.redis.register_script(ADD_CALL)
        self._abandon = self.redis.register_script(ABANDON)
        self._callback = self.redis.register_script(CALLBACK)
        self._put_agent = self.redis.register_script(PUT_AGENT)

    def key(self, *parts: str) -> str:
        return keys.routing_key(self.namespace, *parts)

    @property
    def changes_key(self) -> str:
        return self.key("changes")

    @property
    def counter_key(self) -> str:
        """Numbers every change: a gap in the numbers read means the stream was trimmed past us."""
        return self.key("changes", "n")

    async def start(self) -> None:
        self._changed = asyncio.Event()
        latest = await self.redis.xrevrange(self.changes_key, count=1)
        self._watcher = asyncio.create_task(
            self._watch(latest[0][0] if latest else "0-0"), name="routing-redis-watch"
        )

    async def close(self) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        await self.redis.aclose()

    async def _watch(self, position: str) -> None:
        """One long blocking read on its own cursor: wakes the dispatcher when anyone changes
        anything (never cancelled mid-read except at close, so no connection churn)."""
        outage = False
        while True:
            try:
                read = await self.redis.xread({self.changes_key: position}, count=100, block=5000)
            except RedisError as exc:
                if self._closing:  # redis-py reports a cancelled read as a timeout
                    return
                if not outage:  # once per outage: a Redis restart is expected, not a stack trace
                    log.warning("routing: redis unavailable while watching for changes (%s); retrying", exc)
                outage = True
                await asyncio.sleep(1.0)
                continue
            if outage:
                log.info("routing: redis reachable again; watching for changes")
                outage = False
            if read and read[0][1]:
                position = read[0][1][-1][0]
                self._changed.set()

    # -- reading ------------------------------------------------------------------------------------

    async def load(self) -> tuple[list[AgentRecord], list[CallRecord]]:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:  # position and number agree
                pipe.xrevrange(self.changes_key, count=1)
                pipe.get(self.counter_key)
                latest, counter = await pipe.execute()
            # Changes after this point may be read again: harmless, records carry versions.
            self._last_id = latest[0][0] if latest else "0-0"
            self._last_n = int(counter or 0)
            agent_ids = sorted(await self.redis.smembers(self.key("agents")))
            call_ids = sorted(await self.redis.smembers(self.key("queue")))
            async with self.redis.pipeline(transaction=False) as pipe:
                for agent_id in agent_ids:
                    pipe.hgetall(self.key("agent", agent_id))
                for call_id in call_ids:
                    pipe.hgetall(self.key("call", call_id))
                rows = await pipe.execute()
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        agents = [agent_from_hash(r) for r in rows[: len(agent_ids)] if r]
        calls = [call_from_hash(r) for r in rows[len(agent_ids) :] if r]
        return agents, [c for c in calls if c.state is CallState.QUEUED]

    async def changes(self) -> list[AgentRecord | CallRecord]:
        async with self._sync_lock:  # one reader advances the stream position at a time
            return await self._read_changes()

    async def _read_changes(self) -> list[AgentRecord | CallRecord]:
        out: list[AgentRecord | CallRecord] = []
        try:
            while True:
                read = await self.redis.xread({self.changes_key: self._last_id}, count=1000)
                entries = read[0][1] if read else []
                for entry_id, fields in entries:
                    n = int(fields["n"])
                    if n > self._last_n + 1:
                        log.warning("routing change stream trimmed past this router: reloading")
                        agents, calls = await self.load()
                        return [*agents, *calls]
                    self._last_id, self._last_n = entry_id, max(n, self._last_n)
                    data = json.loads(fields["data"])
                    out.append(agent_from_hash(data) if fields["kind"] == "agent" else call_from_hash(data))
                if len(entries) < 1000:
                    return out
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc

    async def wait_for_changes(self, within_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), within_s)
        self._changed.clear()

    async def get_agent(self, agent_id: str) -> AgentRecord | None:
        try:
            data = await self.redis.hgetall(self.key("agent", agent_id))
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        return agent_from_hash(data) if data else None

    async def get_call(self, call_id: str) -> CallRecord | None:
        try:
            data = await self.redis.hgetall(self.key("call", call_id))
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        return call_from_hash(data) if data else None

    # -- changing -----------------------------------------------------------------------------------

    async def put_agent(
        self,
        agent_id: str,
        profile: AgentProfile | None,
        status: AgentStatus | None,
        call_id: str | None,
        now: float,
        wrap_up_s: float,
    ) -> AgentRecord:
        for _ in range(self.cas_retries):
            current = await self.get_agent(agent_id)
            record = agent_transition(current, agent_id, profile, status, call_id, now, wrap_up_s)
            fields = [x for kv in agent_to_hash(record).items() for x in kv]
            expected = "" if current is None else str(current.version)
            try:
                result = await self._put_agent(
                    keys=[
                        self.key("agent", agent_id),
                        self.key("agents"),
                        self.changes_key,
                        self.counter_key,
                    ],
                    args=[agent_id, expected, self.stream_maxlen, *fields],
                )
            except RedisError as exc:
                raise StateUnavailable(f"redis: {exc}") from exc
            if result[0] == 1:
                return agent_from_hash(_pairs(result[1]))
        raise Conflict(f"agent {agent_id} is changing too fast; retry", code="agent_contended")

    async def add_call(self, record: CallRecord) -> CallRecord:
        call_id = record.call_id
        try:
            result = await self._add_call(
                keys=[
                    self.key("call", call_id),
                    self.key("queue"),
                    self.key("seq"),
                    self.changes_key,
                    self.counter_key,
                ],
                args=[
                    call_id,
                    record.profile.model_dump_json(),
                    repr(record.enqueued_at),
                    repr(record.wait_start),
                    self.stream_maxlen,
                ],
            )
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        if result[0] != 1:
            raise Conflict(f"call {call_id} already exists", code="duplicate_call", field="call_id")
        return call_from_hash(_pairs(result[1]))

    def _refused(self, call_id: str, state: str) -> Exception:
        if state == "missing":
            return NotFound(f"unknown call {call_id}")
        return Conflict(f"call {call_id} is {state}", code=f"call_{state}")

    async def abandon(self, call_id: str, now: float) -> CallRecord:
        try:
            result = await self._abandon(
                keys=[self.key("call", call_id), self.key("queue"), self.changes_key, self.counter_key],
                args=[call_id, repr(now), self.stream_maxlen, self.finished_ttl_s],
            )
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        if result[0] != 1:
            raise self._refused(call_id, result[1])
        return call_from_hash(_pairs(result[1]))

    async def claim(self, call_id: str, agent_id: str, now: float, decision: dict[str, Any]) -> ClaimResult:
        try:
            ok, reason, agent, call = await self._claim(
                keys=[
                    self.key("agent", agent_id),
                    self.key("call", call_id),
                    self.key("queue"),
                    self.changes_key,
                    self.counter_key,
                ],
                args=[
                    agent_id,
                    call_id,
                    repr(now),
                    json.dumps(decision),
                    self.stream_maxlen,
                    self.finished_ttl_s,
                ],
            )
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        agent_record = agent_from_hash(_pairs(agent)) if agent else None
        call_record = call_from_hash(_pairs(call)) if call else None
        return ClaimResult(ok == 1, "" if ok == 1 else reason, agent_record, call_record)

    async def update_callback(
        self, call_id: str, *, offered: bool, accepted: bool, number: str | None
    ) -> CallRecord:
        try:
            result = await self._callback(
                keys=[self.key("call", call_id), self.changes_key, self.counter_key],
                args=[call_id, "1" if accepted else "0", number or "", self.stream_maxlen],
            )
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        if result[0] != 1:
            raise self._refused(call_id, result[1])
        return call_from_hash(_pairs(result[1]))

    async def delete_all(self) -> None:
        """Remove this namespace's keys (tests, decommissioning). Never touches other keys."""
        async for key in self.redis.scan_iter(match=self.key("*"), count=1000):
            await self.redis.delete(key)
