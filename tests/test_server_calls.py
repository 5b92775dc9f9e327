"""The assist server end to end: real uvicorn, real WebSocket clients, real model."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from assist.protocol import SERVER_EVENT_MODELS
from tests.helpers import MS, Listener, RunningServer, Softphone


def assert_valid(event: dict[str, object]) -> None:
    """Every server event matches its documented schema."""
    SERVER_EVENT_MODELS[str(event["type"])].model_validate(event)


async def test_whole_call(shared_server: RunningServer) -> None:
    """A call from start to end: one assist per final customer utterance, echoing its id;
    transcript, lifecycle and the durable record all arrive."""
    server = shared_server
    async with (
        Listener(f"{server.ws}/v1/agents/agent-whole") as agent,
        Listener(f"{server.ws}/v1/supervisor") as board,
    ):
        await agent.wait_for(lambda ev: ev and ev[0]["type"] == "snapshot")
        async with Softphone(server.ws, "whole-1") as phone:
            started = await phone.start(
                "agent-whole", customer={"id": "cust-1", "name": "Dana", "tier": "gold"}
            )
            assert started == {"type": "started", "call_id": "whole-1", "resumed": False}
            await phone.say(
                "agent",
                "Thank you for calling, this call may be recorded for quality and training purposes.",
                1.0,
                "u-0",
            )
            await phone.say("customer", "hi, uh, my bill is like double", 5.0, "u-1", final=False)
            await phone.say(
                "customer", "hi, uh, my bill is like double this month and I don't get why", 6.0, "u-1"
            )
            await phone.say("agent", "Sorry to hear that, can you confirm your date of birth?", 10.0, "u-2")
            await phone.say("customer", "sure, it's the fourth of May 1985", 14.0, "u-3")
            await agent.wait_for(lambda ev: len([e for e in ev if e["type"] == "assist"]) == 2)
            ack = await phone.end()
        assert ack == {"type": "ended", "call_id": "whole-1", "stored": True, "utterances": 4}
        assert_valid(ack)
        await agent.wait_for(lambda ev: any(e["type"] == "call_ended" for e in ev))
        await board.wait_for(lambda ev: any(e["type"] == "call_ended" for e in ev))

    assists = agent.of_type("assist")
    assert [a["utterance_id"] for a in assists] == ["u-1", "u-3"]
    first = assists[0]
    assert first["intent"] == "billing_inquiry" and first["intent_confidence"] >= 0.5
    assert first["knowledge_articles"] and first["knowledge_articles"][0]["id"] == "billing-high-bill"
    assert set(first["knowledge_articles"][0]) >= {"id", "title", "snippet", "score"}
    assert first["suggested_action"] and first["degraded"] == []
    assert -1 <= first["sentiment"] <= 1 and first["sentiment_trend"] == "stable"
    assert 0 < first["latency_ms"] < 2000
    for event in agent.events + board.events:
        assert_valid(event)
    transcript = agent.of_type("transcript")
    assert [t["is_final"] for t in transcript if t["utterance_id"] == "u-1"] == [False, True]
    assert board.events[0]["type"] == "snapshot"
    assert [e["type"] for e in board.events if e["type"] in ("call_started", "call_ended")] == [
        "call_started",
        "call_ended",
    ]

    async with httpx.AsyncClient(base_url=server.http) as client:
        stored = (await client.get("/v1/calls/whole-1")).json()
        listing = (await client.get("/v1/calls", params={"agent_id": "agent-whole"})).json()
        missing = await client.get("/v1/calls/never-happened")
    assert stored["agent_id"] == "agent-whole" and len(stored["utterances"]) == 4
    assert stored["disclosures"].keys() >= {"recording_notice", "identity_verification"}
    assert [a["utterance_id"] for a in stored["assists"]] == ["u-1", "u-3"]
    assert listing["calls"][0]["call_id"] == "whole-1"
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_call"


async def test_agent_isolation(shared_server: RunningServer) -> None:
    """Agent B receives nothing of agent A's call."""
    server = shared_server
    async with Listener(f"{server.ws}/v1/agents/iso-a") as a, Listener(f"{server.ws}/v1/agents/iso-b") as b:
        async with Softphone(server.ws, "iso-call") as phone:
            await phone.start("iso-a")
            await phone.say("customer", "I want to cancel my contract", 3.0, "u-1")
            await a.wait_for(lambda ev: any(e["type"] == "assist" for e in ev))
            await phone.end()
        await a.wait_for(lambda ev: any(e["type"] == "call_ended" for e in ev))
        await asyncio.sleep(100 * MS)
    assert [e["type"] for e in b.events] == ["snapshot"]
    assert b.events[0]["calls"] == []
    assert a.of_type("assist")[0]["intent"] == "cancellation"


async def test_protocol_errors_keep_the_socket_open(shared_server: RunningServer) -> None:
    """Malformed JSON, unknown type, utterance before start: error frames, and the socket still works."""
    async with Softphone(shared_server.ws, "errors-1") as phone:
        await phone.send("{not json")
        assert (await phone.recv())["code"] == "invalid_json"
        await phone.send({"type": "dance"})
        assert (await phone.recv())["code"] == "unknown_type"
        await phone.say("customer", "hello?", 1.0, "u-early")
        error = await phone.recv()
        assert error == {
            "type": "error",
            "code": "not_started",
            "message": "send a 'start' frame before utterances",
            "utterance_id": "u-early",
        }
        await phone.send({"type": "utterance", "speaker": "customer", "timestamp": 1})
        assert (await phone.recv())["code"] == "missing_field"
        await phone.send(b"\x00\x01")
        assert (await phone.recv())["code"] == "binary_not_supported"
        assert (await phone.start("agent-err"))["type"] == "started"
        await phone.send({"type": "start", "agent_id": "agent-err"})
        assert (await phone.recv())["code"] == "already_started"
        await phone.say("customer", "my internet keeps dropping", 3.0, "u-1")
        ack = await phone.end()
        assert ack["type"] == "ended" and ack["utterances"] == 1


async def test_ended_call_cannot_restart(shared_server: RunningServer) -> None:
    """A call id that already ended and was stored cannot be started again."""
    async with Softphone(shared_server.ws, "once-only") as phone:
        await phone.start("agent-once")
        await phone.end()
    async with Softphone(shared_server.ws, "once-only") as phone:
        reply = await phone.start("agent-once")
        assert reply["type"] == "error" and reply["code"] == "call_already_ended"


async def test_oversized_frame_closes_1009(shared_server: RunningServer) -> None:
    """A frame over the 64 KiB default closes the connection with 1009."""
    async with Softphone(shared_server.ws, "big-1") as phone:
        await phone.start("agent-big")
        await phone.say("customer", "x" * (70 * 1024), 1.0)
        with pytest.raises(websockets.ConnectionClosed) as info:
            await phone.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_repeated_garbage_closes_1008(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A client that keeps sending invalid frames is closed with 1008 after the configured count."""
    server = server_factory(max_consecutive_errors=3)
    async with Softphone(server.ws, "garbage") as phone:
        for _ in range(3):
            await phone.send("nope")
        codes = [(await phone.recv())["code"] for _ in range(3)]
        assert codes == ["invalid_json"] * 3
        with pytest.raises(websockets.ConnectionClosed) as info:
            await phone.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008


async def test_fifty_concurrent_calls(shared_server: RunningServer) -> None:
    """50 calls at once: every agent gets exactly its own assist events, none of another's."""
    server = shared_server
    n = 50
    listeners = [Listener(f"{server.ws}/v1/agents/load-{i}") for i in range(n)]
    for listener in listeners:
        await listener.__aenter__()

    async def call(i: int) -> None:
        async with Softphone(server.ws, f"load-call-{i}") as phone:
            await phone.start(f"load-{i}")
            for turn in range(3):
                await phone.say(
                    "customer",
                    f"my internet is down again, call {i} turn {turn}",
                    2.0 + turn * 4,
                    f"{i}-{turn}",
                )
                await asyncio.sleep(20 * MS)
            await listeners[i].wait_for(
                lambda ev: len([e for e in ev if e["type"] == "assist"]) == 3, timeout=20000 * MS
            )
            assert (await phone.end())["stored"]

    try:
        await asyncio.gather(*(call(i) for i in range(n)))
    finally:
        for listener in listeners:
            await listener.__aexit__(None, None, None)
    for i, listener in enumerate(listeners):
        assists = listener.of_type("assist")
        assert [a["utterance_id"] for a in assists] == [f"{i}-{t}" for t in range(3)]
        assert {e["call_id"] for e in listener.events if "call_id" in e} == {f"load-call-{i}"}


async def test_agent_reconnect_gets_call_state(shared_server: RunningServer) -> None:
    """An agent widget that reconnects mid-call gets the live call, transcript and last suggestion."""
    server = shared_server
    async with Softphone(server.ws, "resume-1") as phone:
        await phone.start("agent-resume", customer={"name": "Lee"})
        async with Listener(f"{server.ws}/v1/agents/agent-resume") as first:
            await phone.say("customer", "my TV says error TV-301", 4.0, "u-1")
            await first.wait_for(lambda ev: any(e["type"] == "assist" for e in ev))
        async with Listener(f"{server.ws}/v1/agents/agent-resume") as second:
            await second.wait_for(lambda ev: len(ev) >= 2)
        await phone.end()
    snapshot, state = second.events[0], second.events[1]
    assert_valid(snapshot)
    assert_valid(state)
    assert snapshot["type"] == "snapshot" and [c["call_id"] for c in snapshot["calls"]] == ["resume-1"]
    assert state["type"] == "call_state" and state["last_assist"]["utterance_id"] == "u-1"
    assert [t["text"] for t in state["transcript"]] == ["my TV says error TV-301"]


async def test_softphone_reconnect_resumes_call(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A softphone that drops and reconnects within the grace period continues the same call."""
    server = server_factory(reconnect_grace_seconds=30)
    async with Listener(f"{server.ws}/v1/agents/agent-rc") as agent:
        async with Softphone(server.ws, "rc-1") as phone:
            await phone.start("agent-rc")
            await phone.say("customer", "I'd like to upgrade my plan", 3.0, "u-1")
            await agent.wait_for(lambda ev: any(e["type"] == "assist" for e in ev))
        async with Softphone(server.ws, "rc-1") as phone:
            assert (await phone.start("agent-rc")) == {"type": "started", "call_id": "rc-1", "resumed": True}
            await phone.say("customer", "something with faster broadband", 9.0, "u-2")
            ack = await phone.end()
    assert ack["utterances"] == 2
    assert [a["utterance_id"] for a in agent.of_type("assist")] == ["u-1", "u-2"]


async def test_dropped_call_is_stored_after_grace(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A softphone that never comes back: the call is ended 'disconnected' and stored, not lost."""
    server = server_factory(reconnect_grace_seconds=0.2)
    async with Softphone(server.ws, "drop-1") as phone:
        await phone.start("agent-drop")
        await phone.say("customer", "hello, my phone has no signal", 2.0, "u-1")
        await asyncio.sleep(300 * MS)
    async with httpx.AsyncClient(base_url=server.http) as client:
        for _ in range(50):
            response = await client.get("/v1/calls/drop-1")
            if response.status_code == 200:
                break
            await asyncio.sleep(100 * MS)
    record = response.json()
    assert record["end_reason"] == "disconnected" and len(record["utterances"]) == 1


async def test_health_and_metrics(shared_server: RunningServer) -> None:
    """/healthz is ready with the model loaded; /metrics speaks Prometheus."""
    async with httpx.AsyncClient(base_url=shared_server.http) as client:
        health = (await client.get("/healthz")).json()
        metrics = (await client.get("/metrics")).text
    assert health["status"] == "ready"
    assert "callassist_assist_latency_seconds_bucket" in metrics
    assert "callassist_bus_messages_total" in metrics


async def test_gc_pauses_are_measured(shared_server: RunningServer) -> None:
    """Full garbage collections stop the event loop: /metrics times every pass by generation
    and counts what it freed (so an operator can tell whether CALLASSIST_GC_FULL_AFTER may rise)."""
    import gc
    import re

    def full_passes(text: str) -> tuple[float, float]:
        """(full passes, objects they freed)"""
        passes = re.search(r'callassist_gc_pause_seconds_count\{generation="2"\} (\S+)', text)
        freed = re.search(r'callassist_gc_collected_objects_total\{generation="2"\} (\S+)', text)
        return (float(passes.group(1)) if passes else 0.0, float(freed.group(1)) if freed else 0.0)

    async with httpx.AsyncClient(base_url=shared_server.http) as client:
        before = full_passes((await client.get("/metrics")).text)
        cycle: list[object] = []
        cycle.append(cycle)  # garbage only a collection can free
        del cycle
        gc.collect()  # the server runs in this process (a uvicorn thread)
        after = full_passes((await client.get("/metrics")).text)
    assert after[0] >= before[0] + 1
    assert after[1] >= before[1] + 1


async def test_pages_are_served(shared_server: RunningServer) -> None:
    """The home page links to the widget and the wall board; assets load without a CDN."""
    async with httpx.AsyncClient(base_url=shared_server.http) as client:
        home = (await client.get("/")).text
        agent = await client.get("/agent")
        board = await client.get("/supervisor")
        widget = await client.get("/static/widget.js")
    assert 'href="/agent' in home and 'href="/supervisor"' in home
    assert agent.status_code == board.status_code == widget.status_code == 200
    assert "http" not in json.dumps([line for line in agent.text.splitlines() if "<script" in line])
