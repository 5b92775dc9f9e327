"""Routing state in a real redis-server: the same rules as in memory, and two router
processes racing for the same agents and calls never assign either twice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from routing.errors import Conflict, NotFound
from routing.model import AgentProfile, AgentStatus, CallerProfile, CallRecord
from routing.redis_state import RedisState
from routing.router import Router
from routing.state import MemoryState, RoutingState

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_000_000.0


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[RoutingState]:
    """Each backend in turn (redis: a private namespace, deleted afterwards)."""
    if request.param == "memory":
        yield MemoryState()
        return
    s = RedisState(redis_url, namespace=f"t-{uuid.uuid4().hex[:8]}")
    yield s
    await s.delete_all()
    await s.close()


def profile(agent_id: str) -> AgentProfile:
    return AgentProfile(agent_id=agent_id, languages=["en"])


def queued(call_id: str) -> CallRecord:
    return CallRecord(profile=CallerProfile(call_id=call_id, language="en"), enqueued_at=T0, wait_start=T0)


async def test_a_claim_takes_a_free_agent_and_a_queued_call_once(state: RoutingState) -> None:
    """Second claims on the same call or the same agent fail; both records change together."""
    await state.put_agent("a", profile("a"), AgentStatus.AVAILABLE, None, T0, 30)
    await state.put_agent("b", profile("b"), AgentStatus.AVAILABLE, None, T0, 30)
    await state.add_call(queued("c1"))
    await state.add_call(queued("c2"))
    won = await state.claim("c1", "a", T0 + 1, {"why": "test"})
    assert won.ok and won.agent.status is AgentStatus.ON_CALL and won.agent.call_id == "c1"
    assert won.call.state.value == "assigned" and won.call.agent_id == "a"
    assert (await state.claim("c1", "b", T0 + 1, {})).reason == "call_taken"
    assert (await state.claim("c2", "a", T0 + 1, {})).reason == "agent_busy"
    assert (await state.get_call("c1")).decision == {"why": "test"}
    agents, calls = await state.load()
    assert {c.call_id for c in calls} == {"c2"} and len(agents) == 2


async def test_agent_rules_are_the_same_in_every_backend(state: RoutingState) -> None:
    """On-call agents must name the call to leave it; heartbeats keep idle-since; wrap-up is timed."""
    with pytest.raises(NotFound):
        await state.put_agent("ghost", None, AgentStatus.AVAILABLE, None, T0, 30)
    first = await state.put_agent("a", profile("a"), AgentStatus.AVAILABLE, None, T0, 30)
    again = await state.put_agent("a", None, AgentStatus.AVAILABLE, None, T0 + 50, 30)
    assert again.idle_since == first.idle_since == T0 and again.version == first.version + 1
    await state.add_call(queued("c1"))
    assert (await state.claim("c1", "a", T0 + 60, {})).ok
    with pytest.raises(Conflict):
        await state.put_agent("a", None, AgentStatus.AVAILABLE, None, T0 + 61, 30)
    wrap = await state.put_agent("a", None, AgentStatus.WRAP_UP, "c1", T0 + 70, 30)
    assert wrap.wrap_until == T0 + 100 and not wrap.free_at(T0 + 99) and wrap.free_at(T0 + 100)
    await state.add_call(queued("c2"))
    assert (await state.claim("c2", "a", T0 + 99, {})).reason == "agent_busy"
    assert (await state.claim("c2", "a", T0 + 100, {})).ok


async def test_call_rules_are_the_same_in_every_backend(state: RoutingState) -> None:
    """Duplicate ids conflict; only queued calls can be abandoned or take a callback."""
    await state.add_call(queued("c1"))
    with pytest.raises(Conflict):
        await state.add_call(queued("c1"))
    cb = await state.update_callback("c1", offered=True, accepted=True, number="+1 555 0100")
    assert cb.callback and cb.callback_offered and cb.callback_number == "+1 555 0100"
    gone = await state.abandon("c1", T0 + 5)
    assert gone.state.value == "abandoned" and gone.ended_at == T0 + 5
    with pytest.raises(Conflict):
        await state.abandon("c1", T0 + 6)
    with pytest.raises(NotFound):
        await state.abandon("nope", T0)


async def test_routers_sharing_redis_see_each_others_changes(redis_url: str) -> None:
    """An agent registered through one router takes a call routed through the other."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    clock = [T0]
    one = Router(RedisState(redis_url, namespace=namespace), clock=lambda: clock[0])
    two = Router(RedisState(redis_url, namespace=namespace), clock=lambda: clock[0])
    await one.start(background=False)
    await two.start(background=False)
    try:
        await one.put_agent("a", {"languages": ["en"], "status": "available"})
        assert (await two.route_call({"call_id": "c1", "language": "en"}))["agent_id"] == "a"
        assert (await two.route_call({"call_id": "c2", "language": "en"}))["status"] == "queued"
        assert (await one.get_agent("a"))["call_id"] == "c1"
        await one.put_agent("a", {"status": "wrap_up", "call_id": "c1", "wrap_up_s": 10})
        clock[0] += 10
        (made,) = await two.dispatch()
        assert (made.call_id, made.agent_id) == ("c2", "a")
        assert (await one.get_call("c2"))["agent_id"] == "a"
        third = Router(RedisState(redis_url, namespace=namespace), clock=lambda: clock[0])
        await third.start(background=False)  # a router starting late loads the same picture
        assert (await third.get_agent("a"))["call_id"] == "c2"
        await third.stop()
    finally:
        await one.state.delete_all()  # type: ignore[attr-defined]
        await one.stop()
        await two.stop()


async def test_two_router_processes_never_assign_an_agent_or_a_call_twice(redis_url: str) -> None:
    """Two processes, 12 agents, 300 calls, agents freed within ms: every call assigned exactly
    once, no agent ever on two calls (checked by an independent Redis tally), both routers won."""
    namespace = f"race-{uuid.uuid4().hex[:8]}"
    setup = Router(RedisState(redis_url, namespace=namespace))
    await setup.start(background=False)
    for i in range(12):
        await setup.put_agent(f"a{i}", {"languages": ["en"], "skill_level": 1 + i % 5, "status": "available"})
    await setup.stop()
    per_process, names = 150, ["left", "right"]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.routing_contender",
            "--redis",
            redis_url,
            "--namespace",
            namespace,
            "--name",
            name,
            "--calls",
            str(per_process),
            "--total",
            str(per_process * 2),
            "--seed",
            str(seed),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for seed, name in enumerate(names)
    ]
    outputs = [await asyncio.wait_for(p.communicate(), timeout=240) for p in procs]
    tally = aioredis.from_url(redis_url, decode_responses=True)
    try:
        for proc, (_, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err.decode()[-3000:]
        reports = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
        claims = [tuple(c) for r in reports for c in r["claims"]]
        assert [v for r in reports for v in r["violations"]] == []
        calls = Counter(call_id for call_id, _ in claims)
        assert len(calls) == per_process * 2 and max(calls.values()) == 1
        assert all(r["claims"] for r in reports), "both routers assigned calls"
        state = RedisState(redis_url, namespace=namespace)
        for call_id, agent_id in claims:
            record = await state.get_call(call_id)
            assert record.state.value == "assigned" and record.agent_id == agent_id
        agents, queued_calls = await state.load()
        assert queued_calls == [] and all(a.status is AgentStatus.AVAILABLE for a in agents)
        lost = sum(n for r in reports for n in r["lost_claims"].values())
        assert lost > 0, "the routers really raced (some claims lost to the other process)"
        await state.delete_all()
        await state.close()
    finally:
        async for key in tally.scan_iter(match=f"test:{namespace}:*"):
            await tally.delete(key)
        await tally.aclose()


async def test_a_router_that_fell_behind_a_trimmed_stream_reloads(redis_url: str) -> None:
    """If the change stream was trimmed past a router, it reloads everything instead of drifting."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    behind, ahead = RedisState(redis_url, namespace=namespace), RedisState(redis_url, namespace=namespace)
    try:
        await behind.load()
        await ahead.put_agent("a", profile("a"), AgentStatus.AVAILABLE, None, T0, 30)
        await ahead.add_call(queued("c1"))
        await ahead.redis.xtrim(ahead.changes_key, maxlen=0)  # as MAXLEN would after a long stall
        await ahead.add_call(queued("c2"))
        seen = await behind.changes()
        assert {getattr(r, "call_id", None) for r in seen} >= {"c1", "c2"}
        assert any(getattr(r, "agent_id", None) == "a" for r in seen)
    finally:
        await ahead.delete_all()
        await ahead.close()
        await behind.close()


async def _routed(events: list[dict], call_id: str, within_s: float) -> dict:
    for _ in range(int(within_s / 0.01)):
        found = [e for e in events if e["type"] == "call.routed" and e["call_id"] == call_id]
        if found:
            return found[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{call_id} not routed within {within_s} s; saw {[e['type'] for e in events]}")


async def test_live_dispatcher_assigns_when_a_timed_wrap_up_ends() -> None:
    """Nobody calls in: the dispatcher wakes when the wrap-up runs out and routes the waiting call."""
    events: list[dict] = []

    async def publish(channels: object, payload: dict, *, droppable: bool = False) -> None:
        events.append(payload)

    router = Router(MemoryState(), publish=publish)
    await router.start()
    try:
        await router.put_agent("a", {"languages": ["en"], "status": "available"})
        await router.route_call({"call_id": "first", "language": "en"})
        await router.route_call({"call_id": "second", "language": "en"})
        await router.put_agent("a", {"status": "wrap_up", "call_id": "first", "wrap_up_s": 0.3})
        assert (await router.get_call("second"))["state"] == "queued"
        routed = await _routed(events, "second", within_s=3.0)
        assert routed["agent_id"] == "a" and routed["waited_s"] >= 0.3
    finally:
        await router.stop()


async def test_live_dispatcher_reacts_to_changes_made_by_another_process(redis_url: str) -> None:
    """An agent made available straight in Redis (another router) is given the waiting call."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    events: list[dict] = []

    async def publish(channels: object, payload: dict, *, droppable: bool = False) -> None:
        events.append(payload)

    router = Router(RedisState(redis_url, namespace=namespace), publish=publish)
    other = RedisState(redis_url, namespace=namespace)
    await router.start()
    try:
        await router.route_call({"call_id": "waiting", "language": "en"})
        await other.put_agent("elsewhere", profile("elsewhere"), AgentStatus.AVAILABLE, None, time.time(), 30)
        routed = await _routed(events, "waiting", within_s=3.0)
        assert routed["agent_id"] == "elsewhere"
    finally:
        await other.delete_all()
        await other.close()
        await router.stop()


async def test_live_dispatcher_offers_a_callback_and_a_callback_case_waits_its_turn() -> None:
    """The offer is published when due; a case opened as a callback is routed with callback: true."""
    from routing.config import Overflow, RoutingConfig

    events: list[dict] = []

    async def publish(channels: object, payload: dict, *, droppable: bool = False) -> None:
        events.append({**payload, "channels": list(channels)})  # type: ignore[call-overload]

    config = RoutingConfig(overflow=Overflow(callback_after_s=0.3))
    router = Router(MemoryState(), config, publish=publish)
    await router.start()
    try:
        await router.route_call({"call_id": "patient", "language": "en"})
        case = await router.route_call(
            {"call_id": "retention-1", "language": "en"}, callback_number="+1 555 0101"
        )
        assert case["status"] == "queued" and case["callback"] is True
        for _ in range(300):
            if any(e["type"] == "routing.callback_offer" for e in events):
                break
            await asyncio.sleep(0.01)
        (offer,) = [e for e in events if e["type"] == "routing.callback_offer"]
        assert offer["call_id"] == "patient" and set(offer["channels"]) == {"call:patient", "supervisor"}
        await router.put_agent("a", {"languages": ["en"], "status": "available"})
        await router.put_agent("a", {"status": "available", "call_id": "patient"})
        routed = await _routed(events, "retention-1", within_s=3.0)
        assert routed["callback"] is True and routed["agent_id"] == "a"
    finally:
        await router.stop()


def test_the_state_backend_follows_the_bus_url() -> None:
    """memory:// -> in memory; redis:// -> Redis; anything else is refused."""
    from routing.extension import create_state

    assert isinstance(create_state("memory://"), MemoryState)
    assert isinstance(create_state("redis://127.0.0.1:6379/0"), RedisState)
    with pytest.raises(ValueError, match="unsupported"):
        create_state("kafka://broker")


async def test_the_queue_is_bounded() -> None:
    """Beyond max_queued new calls are refused with 503 queue_full; nothing already queued is lost."""
    from routing.config import RoutingConfig
    from routing.errors import QueueFull

    router = Router(MemoryState(), RoutingConfig(max_queued=2))
    await router.start(background=False)
    await router.route_call({"call_id": "q1", "language": "en"})
    await router.route_call({"call_id": "q2", "language": "en"})
    with pytest.raises(QueueFull) as full:
        await router.route_call({"call_id": "q3", "language": "en"})
    assert full.value.status == 503
    assert [c["call_id"] for c in (await router.queue())["calls"]] == ["q1", "q2"]
    await router.stop()


async def test_a_bus_prefix_is_understood_not_passed_to_redis(redis_url: str) -> None:
    """`redis://...?prefix=tenant-a:` (a bus option) starts routing; its keys carry the prefix."""
    sep = "&" if "?" in redis_url else "?"
    s = RedisState(f"{redis_url}{sep}prefix=tenant-{uuid.uuid4().hex[:6]}:", namespace="routing")
    try:
        assert s.namespace.startswith("tenant-") and "prefix" not in s.url
        assert await s.get_agent("nobody") is None  # a real round trip to Redis
    finally:
        await s.delete_all()
        await s.close()
