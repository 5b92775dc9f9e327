"""Real ``callassist serve`` processes sharing a private redis-server — A, and B running
``--workers 2`` (two processes on one port) — cross-process delivery and order, the
cluster-wide registry, 200 calls ending at once, a Redis restart mid-call and an archive
consumer killed with SIGKILL before its ack."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from redis.asyncio import Redis

from server import keys
from tests.cluster import ArchiveProcess, RedisServer, ServeProcess
from tests.helpers import MS, Listener, Softphone

pytestmark = pytest.mark.timeout(1200)  # the shared CI machine may take minutes to load two models


@dataclass
class Cluster:
    redis: RedisServer
    a: ServeProcess
    b: ServeProcess
    directory: Path
    b_processes: set[str]  # the process names of B's workers

    def archive(self, name: str, store: Path, *extra: str) -> ArchiveProcess:
        return ArchiveProcess(name, self.redis.url, store, self.directory, *extra)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("cluster")
    redis = RedisServer(directory / "redis").start()
    env = {"CALLASSIST_RECONNECT_GRACE_SECONDS": "2", "CALLASSIST_TORCH_THREADS": "1"}
    a = ServeProcess("A", redis.url, directory / "a.db", directory, **env)
    b = ServeProcess("B", redis.url, directory / "b.db", directory, workers=2, **env)
    try:
        with ThreadPoolExecutor(2) as pool:  # all three load the model at the same time
            list(pool.map(lambda p: p.wait_ready(), (a, b)))
        yield Cluster(redis, a, b, directory, b.health())
    finally:
        for process in (a, b):
            process.stop()
        redis.stop()
    for process in (a, b):  # no crash, whatever the tests did to Redis
        assert "Traceback" not in process.log(), process.log()[-4000:]


def assists(listener: Listener) -> list[str]:
    return [e["utterance_id"] for e in listener.of_type("assist")]


# Published by background workers on their own schedule (QA scores the ended call on
# whichever process claims it; routing sends queue stats), so not part of the call's order.
BACKGROUND = {"snapshot", "qa_scorecard", "routing.queue"}


def without_snapshot(listener: Listener) -> list[dict]:
    return [e for e in listener.events if e["type"] not in BACKGROUND]


async def test_events_cross_processes_in_order(cluster: Cluster) -> None:
    """Softphone on A, agent and supervisor on A and B: B gets every event A gets, in the same order;
    an agent widget reloading on B gets the call's state and a supervisor connecting to B mid-call
    sees the call live on A and can watch it."""
    a, b = cluster.a, cluster.b
    async with (
        Listener(f"{a.ws}/v1/agents/x-agent") as agent_a,
        Listener(f"{b.ws}/v1/agents/x-agent") as agent_b,
        Listener(f"{a.ws}/v1/supervisor") as board_a,
        Listener(f"{b.ws}/v1/supervisor") as board_b,
    ):
        for listener in (agent_a, agent_b, board_a, board_b):
            await listener.wait_for(lambda ev: len(ev) >= 1)
        async with Softphone(a.ws, "x-call") as phone:
            await phone.start("x-agent", customer={"id": "cust-9", "name": "Ana"})
            await phone.say("agent", "Thanks for calling, this call may be recorded for quality.", 1.0, "u-0")
            await phone.say("customer", "my bill is double", 4.0, "u-1", final=False)
            await phone.say("customer", "my bill is double this month and I am really angry", 5.0, "u-1")
            await phone.say("customer", "this is useless, I want to cancel everything", 9.0, "u-2")
            await phone.say("customer", "honestly the worst service I have ever had", 13.0, "u-3")
            await agent_b.wait_for(lambda ev: len([e for e in ev if e["type"] == "assist"]) == 3, 20000 * MS)
            await asyncio.sleep(100 * MS)  # A registers the call's state right after publishing
            async with Listener(f"{b.ws}/v1/agents/x-agent") as reopened:  # the widget on B reloads
                await reopened.wait_for(lambda ev: len(ev) >= 2)
            resumed = reopened.events[1]
            async with Listener(f"{b.ws}/v1/supervisor") as late_board:
                await late_board.wait_for(lambda ev: len(ev) >= 1)
                snapshot = late_board.events[0]
                await late_board.send({"type": "watch", "call_id": "x-call"})
                await asyncio.sleep(200 * MS)  # the watch subscription is in place
                await phone.say("customer", "are you still there?", 17.0, "u-4")
                await late_board.wait_for(lambda ev: any(e.get("utterance_id") == "u-4" for e in ev))
            ack = await phone.end()
        assert ack["stored"] is True
        for listener in (agent_a, agent_b, board_a, board_b):
            await listener.wait_for(lambda ev: any(e["type"] == "call_ended" for e in ev), 10000 * MS)
        await asyncio.sleep(300 * MS)  # anything late or duplicated would show up now

    assert assists(agent_a) == assists(agent_b) == ["u-1", "u-2", "u-3", "u-4"]
    assert without_snapshot(agent_b) == without_snapshot(agent_a)
    assert without_snapshot(board_b) == without_snapshot(board_a)
    kinds = [e["type"] for e in without_snapshot(board_b)]
    assert kinds[0] == "call_started" and kinds[-1] == "call_ended" and "alert" in kinds
    assert [c["call_id"] for c in snapshot["calls"]] == ["x-call"]
    assert resumed["type"] == "call_state" and resumed["last_assist"]["utterance_id"] == "u-3"
    assert [t["utterance_id"] for t in resumed["transcript"]] == ["u-0", "u-1", "u-2", "u-3"]
    assert snapshot["calls"][0]["process"] == "A" and snapshot["calls"][0]["agent_id"] == "x-agent"
    a_metrics = a.metrics()
    assert a_metrics['callassist_bus_messages_total{event="sent"}'] > 0
    assert a_metrics['callassist_bus_messages_total{event="dropped"}'] == 0


def test_model_threads_yield_the_cpu_where_events_cross_processes(cluster: Cluster) -> None:
    """With a Redis bus the default (auto) runs the model threads at SCHED_IDLE, so Redis and the
    other processes wake at once (docs/operations.md); /healthz reports what the kernel applied."""
    for process in (cluster.a, cluster.b):
        health = httpx.get(f"{process.http}/healthz", timeout=5).json()
        assert health["model_thread_priority"] == "idle", health


async def test_registry_spans_processes(cluster: Cluster) -> None:
    """A call live on B shows in A's /v1/live/calls and agent snapshot, GET /v1/calls/{id} on A
    says 409 call_live; a second start of it on A is refused with 1013 (it belongs to B), and
    once ended it cannot start anywhere."""
    a, b = cluster.a, cluster.b
    async with Softphone(b.ws, "reg-call") as phone:
        await phone.start("reg-agent")
        async with httpx.AsyncClient() as client:
            live = (await client.get(f"{a.http}/v1/live/calls")).json()["calls"]
            record_on_a = await client.get(f"{a.http}/v1/calls/reg-call")
        (owner,) = [c["process"] for c in live if c["call_id"] == "reg-call"]
        # Not stored yet, and live elsewhere: 409 with the call, not 404.
        assert record_on_a.status_code == 409 and record_on_a.json()["error"]["call"]["call_id"] == "reg-call"
        assert owner in cluster.b_processes
        async with Listener(f"{a.ws}/v1/agents/reg-agent") as agent:
            await agent.wait_for(lambda ev: len(ev) >= 1)
        assert [c["call_id"] for c in agent.events[0]["calls"]] == ["reg-call"]
        async with Softphone(a.ws, "reg-call") as intruder:
            await intruder.send({"type": "start", "agent_id": "reg-agent"})
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await intruder.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert f"live on {owner}" in closed.value.rcvd.reason
        await phone.end()
    async with Softphone(a.ws, "reg-call") as again:
        assert (await again.start("reg-agent"))["code"] == "call_already_ended"


async def test_200_calls_ending_at_once(cluster: Cluster) -> None:
    """200 calls on two processes end at the same moment: 200 acks, 200 stored records, and two
    archive consumers store each of them exactly once."""
    n = 200
    servers = [cluster.a, cluster.b]
    phones = [Softphone(servers[i % 2].ws, f"burst-{i}") for i in range(n)]
    for phone in phones:
        await phone.__aenter__()
    try:
        await asyncio.gather(*(p.start(f"burst-agent-{i % 25}") for i, p in enumerate(phones)))
        for i, phone in enumerate(phones):
            await phone.say("customer", f"my internet is down again, number {i}", 2.0, "u-1")
        await asyncio.sleep(500 * MS)
        acks = await asyncio.gather(*(p.end() for p in phones))
    finally:
        for phone in phones:
            await phone.__aexit__(None, None, None)
    assert sorted(a["call_id"] for a in acks) == sorted(f"burst-{i}" for i in range(n))
    assert all(a["stored"] and a["utterances"] == 1 for a in acks)
    stored: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for server in servers:
            calls = (await client.get(f"{server.http}/v1/calls", params={"limit": 1000})).json()["calls"]
            stored += [c["call_id"] for c in calls if c["call_id"].startswith("burst-")]
    assert sorted(stored) == sorted(f"burst-{i}" for i in range(n))

    store = cluster.directory / "archive-200.db"
    consumers = [cluster.archive(f"arch200-{i}", store, "--group", "arch200", "--burst") for i in range(2)]
    for consumer in consumers:
        assert await asyncio.to_thread(consumer.process.wait, 120) == 0, consumer.log()[-3000:]
    with contextlib.closing(sqlite3.connect(store)) as db:
        rows = db.execute("SELECT call_id, COUNT(*) FROM calls WHERE call_id LIKE 'burst-%' GROUP BY call_id")
        counts = dict(rows.fetchall())
    assert len(counts) == n and set(counts.values()) == {1}
    assert all("duplicates=0" in c.log() and "dead=0" in c.log() for c in consumers)


async def test_consumer_killed_before_ack(cluster: Cluster) -> None:
    """An archive consumer SIGKILLed after reading call.ended and before its ack: another consumer
    re-claims the entry and the record is stored exactly once."""
    store = cluster.directory / "archive-kill.db"
    raw = Redis.from_url(cluster.redis.url, decode_responses=True)
    stream = keys.redis_stream(keys.CALLS_STREAM)
    await raw.xgroup_create(stream, "killtest", id="$", mkstream=True)  # only what ends from now on
    first = cluster.archive("kill-1", store, "--group", "killtest")
    try:
        for _ in range(600):  # its store is open and it is reading the group
            if "kill-1" in [c["name"] for c in await raw.xinfo_consumers(stream, "killtest")]:
                break
            await asyncio.sleep(50 * MS)
        blocker = sqlite3.connect(store, isolation_level=None, timeout=30)
        blocker.execute("BEGIN IMMEDIATE")  # the consumer's write will wait on this lock
        async with Softphone(cluster.a.ws, "killed-call") as phone:
            await phone.start("kill-agent")
            await phone.say("customer", "I want a refund for last month", 2.0, "u-1")
            assert (await phone.end())["stored"]

        async def pending_for(consumer: str) -> int:
            info = await raw.xpending(stream, "killtest")
            return {c["name"]: int(c["pending"]) for c in info["consumers"]}.get(consumer, 0)

        for _ in range(200):
            if await pending_for("kill-1") == 1:
                break
            await asyncio.sleep(25 * MS)
        assert await pending_for("kill-1") == 1  # read, not acked, blocked in the write
        first.kill()
        blocker.execute("ROLLBACK")
        blocker.close()
        await asyncio.sleep(400 * MS)  # idle longer than the second consumer's --claim-idle-ms
        second = cluster.archive("kill-2", store, "--group", "killtest", "--claim-idle-ms", "300", "--burst")
        assert await asyncio.to_thread(second.process.wait, 60) == 0, second.log()[-3000:]
        assert (await raw.xpending(stream, "killtest"))["pending"] == 0
    finally:
        first.kill()
        await raw.aclose()
    assert "claimed=1" in second.log() and "stored=1" in second.log()
    with contextlib.closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT COUNT(*) FROM calls WHERE call_id = 'killed-call'").fetchone()[0] == 1


async def test_redis_restart_mid_call(cluster: Cluster) -> None:
    """Redis stops mid-call: the agent on the softphone's process keeps getting assists, the call
    ending meanwhile is stored and acked, drops are counted and logged, nothing crashes; after the
    restart cross-process delivery resumes and the call.ended that missed the bus is relayed."""
    a, b = cluster.a, cluster.b
    async with (
        Listener(f"{a.ws}/v1/agents/out-agent") as local,
        Listener(f"{b.ws}/v1/agents/out-agent") as remote,
        Softphone(a.ws, "out-call-1") as phone,
        Softphone(a.ws, "out-call-2") as short,
    ):
        await local.wait_for(lambda ev: len(ev) >= 1)
        await remote.wait_for(lambda ev: len(ev) >= 1)
        await phone.start("out-agent")
        await short.start("out-agent")
        await phone.say("customer", "my broadband keeps dropping out", 2.0, "u-1")
        await remote.wait_for(lambda ev: "u-1" in assists(remote), 10000 * MS)

        await asyncio.to_thread(cluster.redis.stop)
        await phone.say("customer", "it happens every evening around eight", 6.0, "u-2")
        await local.wait_for(lambda ev: "u-2" in assists(local), 5000 * MS)
        await short.say("customer", "I need to update my address", 3.0, "s-1")
        ack = await short.end()
        assert ack["stored"] is True
        async with httpx.AsyncClient() as client:
            health = (await client.get(f"{a.http}/healthz")).json()
        assert health["bus_connected"] is False and health["status"] == "ready"
        assert a.metrics()['callassist_bus_messages_total{event="dropped"}'] > 0

        await asyncio.to_thread(cluster.redis.start)
        await asyncio.to_thread(a.health, connected=True, timeout=30)  # reconnected, with backoff
        await asyncio.to_thread(b.health, connected=True, timeout=30)  # both of B's workers
        await phone.say("customer", "can you send an engineer?", 10.0, "u-3")
        await remote.wait_for(lambda ev: "u-3" in assists(remote), 10000 * MS)
        assert (await phone.end())["stored"]
        await local.wait_for(lambda ev: any(e["type"] == "call_ended" for e in ev))

    assert assists(local) == ["u-1", "u-2", "s-1", "u-3"]
    assert assists(remote) == ["u-1", "u-3"]  # u-2 and s-1 were published while Redis was down
    assert "dropped" in a.log() and "reconnected to Redis" in a.log()
    assert a.metrics()["callassist_bus_reconnects_total"] >= 1

    # out-call-1's call.ended went straight to the stream; out-call-2's waited in A's outbox.
    raw = Redis.from_url(cluster.redis.url, decode_responses=True)
    stream = keys.redis_stream(keys.CALLS_STREAM)

    async def announced() -> set[str]:
        entries = [json.loads(fields["data"]) for _, fields in await raw.xrange(stream, "-", "+")]
        return {e["call_id"] for e in entries if e["event"] == "call.ended"}

    try:
        for _ in range(300):  # the relay leaves records alone for 10 s and runs every 5 s
            if {"out-call-1", "out-call-2"} <= await announced():
                break
            await asyncio.sleep(100 * MS)
        assert {"out-call-1", "out-call-2"} <= await announced()
    finally:
        await raw.aclose()
