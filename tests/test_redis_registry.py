"""The cluster-wide live-call registry against a real redis-server."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from assist.protocol import ProtocolError
from server.redis_registry import RedisRegistry
from tests.cluster import ROOT


def summary(call_id: str, agent_id: str = "a1", started_at: float = 1.0, **extra: object) -> dict:
    return {"call_id": call_id, "agent_id": agent_id, "started_at": started_at, "process": "p", **extra}


@pytest.fixture
async def registries(redis_url: str) -> AsyncIterator[tuple[RedisRegistry, RedisRegistry]]:
    url = f"{redis_url}?prefix=t-{uuid.uuid4().hex[:8]}"
    a, b = RedisRegistry(url, process="A", ttl_s=1.5), RedisRegistry(url, process="B", ttl_s=1.5)
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def test_every_process_sees_every_live_call(registries: tuple[RedisRegistry, RedisRegistry]) -> None:
    """Calls registered on A and B appear in both snapshots, by start time, with updates and removals;
    a call's resume state is readable from any process while it is live."""
    a, b = registries
    await a.upsert(summary("c2", "a1", 2.0))
    await b.upsert(summary("c1", "a2", 1.0))
    await a.upsert(summary("c3", "a1", 3.0))
    state = {"type": "call_state", "call": summary("c2"), "transcript": [{"text": "hello"}]}
    await a.upsert(summary("c2", "a1", 2.0, intent="billing_inquiry"), state=state)
    await a.upsert(summary("c2", "a1", 2.0, intent="billing_inquiry"))  # the state stays
    assert await b.call_state("c2") == state and await b.call_state("c1") is None
    for registry in (a, b):
        calls = await registry.snapshot()
        assert [c["call_id"] for c in calls] == ["c1", "c2", "c3"]
        assert calls[1]["intent"] == "billing_inquiry" and calls[1]["updated_at"] <= time.time()
        assert [c["call_id"] for c in await registry.snapshot(agent_id="a1")] == ["c2", "c3"]
    await a.remove("c2")
    assert [c["call_id"] for c in await b.snapshot()] == ["c1", "c3"]
    assert await b.call_state("c2") is None
    assert [c["call_id"] for c in await b.snapshot(agent_id="a1")] == ["c3"]


async def test_dead_process_calls_expire(registries: tuple[RedisRegistry, RedisRegistry]) -> None:
    """A process that stops heartbeating (killed) loses its calls from every snapshot within the TTL."""
    a, b = registries
    await a.upsert(summary("dies-1"))
    await b.upsert(summary("lives-1", started_at=2.0))
    assert a._heartbeat is not None
    a._heartbeat.cancel()  # what SIGKILL does to the heartbeat
    await asyncio.sleep(a.ttl_s / 2)
    assert [c["call_id"] for c in await b.snapshot()] == ["dies-1", "lives-1"]
    await asyncio.sleep(a.ttl_s + 0.5)
    assert [c["call_id"] for c in await b.snapshot()] == ["lives-1"]
    assert [c["call_id"] for c in await b.snapshot(agent_id="a1")] == ["lives-1"]


async def test_a_call_runs_on_one_process_only(registries: tuple[RedisRegistry, RedisRegistry]) -> None:
    """A call id claimed by A is refused on B (try again: 1013) and, once ended, refused everywhere."""
    a, b = registries
    await a.claim("c1")
    await a.claim("c1")  # the owner may claim again (softphone reconnects to the same process)
    await a.upsert(summary("c1"))
    with pytest.raises(ProtocolError) as refused:
        await b.claim("c1")
    assert refused.value.code == "call_live_elsewhere" and refused.value.close_code == 1013
    assert "A" in refused.value.message
    await a.remove("c1")
    for registry in (a, b):
        with pytest.raises(ProtocolError) as ended:
            await registry.claim("c1")
        assert ended.value.code == "call_already_ended"


def test_default_ttl_bounds_expiry_within_30_seconds() -> None:
    """With the defaults a dead process's calls are gone within 15 s, well inside 30 s."""
    registry = RedisRegistry("redis://127.0.0.1:1/0")
    assert registry.ttl_s <= 15 and registry.heartbeat_s == registry.ttl_s / 3


DOOMED = """
import asyncio, sys
from server.redis_registry import RedisRegistry
from tests.cluster import ROOT

async def main():
    registry = RedisRegistry(sys.argv[1], process="doomed", ttl_s=float(sys.argv[2]))
    await registry.start()
    await registry.upsert({"call_id": "doomed-call", "agent_id": "a9", "started_at": 1.0, "process": "doomed"})
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_sigkilled_process_calls_expire(redis_url: str) -> None:
    """A real process registers a call and is SIGKILLed: the call leaves every snapshot within its TTL."""
    url = f"{redis_url}?prefix=t-{uuid.uuid4().hex[:8]}"
    ttl = 3.0
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DOOMED, url, str(ttl), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    observer = RedisRegistry(url, process="observer")
    await observer.start()
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
        assert [c["call_id"] for c in await observer.snapshot()] == ["doomed-call"]
        proc.kill()
        await proc.wait()
        killed = time.monotonic()
        while await observer.snapshot():
            assert time.monotonic() - killed < ttl + 2, "the dead process's call did not expire"
            await asyncio.sleep(0.1)
        assert await observer.snapshot(agent_id="a9") == []
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await observer.close()
