"""Routing over HTTP on a real server: assignment with explanation, queueing, abandon,
validation (422 naming the field), events to the agent widget and the wall board.

Tests share one server, so each uses its own language: agents of one test never take
another test's calls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from routing.errors import InvalidInput
from tests.helpers import MS, Listener, RunningServer, Softphone, start_server

# Routing answers before the models load; the wait is only for the softphone test's sake,
# generous because the test machine is shared.
READY_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def routing_server(
    embedder: Any, demo_config: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One server (default extensions, memory bus) for this module."""
    from server.app import create_app
    from server.settings import Settings

    settings = Settings(
        store_path=tmp_path_factory.mktemp("routing") / "calls.db", process_name="routing-api"
    )
    server = start_server(
        create_app(settings, embedder=embedder, config=demo_config), ready_timeout=READY_TIMEOUT_S
    )
    yield server
    server.stop()


async def put_agent(client: httpx.AsyncClient, agent_id: str, **body: object) -> httpx.Response:
    return await client.put(f"/v1/routing/agents/{agent_id}", json=body)


@pytest.fixture
async def client(routing_server: RunningServer):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=routing_server.http, timeout=10) as c:
        yield c


async def test_call_is_routed_with_explanation_and_announced_to_the_agent(
    routing_server: RunningServer, client: httpx.AsyncClient
) -> None:
    """POST /calls -> 200 with the agent and why; the agent widget gets call.routed."""
    assert (await put_agent(client, "de-generic", languages=["de"], status="available")).status_code == 200
    r = await put_agent(
        client, "de-fit", languages=["de-DE"], products=["mobile"], specializations=["billing"],
        skill_level=4, csat=4.7, status="available",
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["languages"] == ["de"] and r.json()["status"] == "available"
    async with Listener(f"{routing_server.ws}/v1/agents/de-fit") as widget:
        await widget.wait_for(lambda ev: bool(ev) and ev[0]["type"] == "snapshot")
        r = await client.post(
            "/v1/routing/calls",
            json={"call_id": "api-de-1", "language": "de", "product": "mobile", "issue_category": "billing",
                  "tier": "gold", "clv": 12_000},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["status"], body["agent_id"], body["call_id"]) == ("assigned", "de-fit", "api-de-1")
        x = body["explanation"]
        assert x["match"]["factors"]["product"] == {
            "raw": "mobile",
            "value": 1.0,
            "weight": 0.3,
            "contribution": 0.3,
        }
        assert x["priority"]["factors"]["tier"]["raw"] == "gold" and x["why"]
        await widget.wait_for(lambda ev: any(e["type"] == "call.routed" for e in ev), timeout=5000 * MS)
    (routed,) = widget.of_type("call.routed")
    assert routed["call_id"] == "api-de-1" and routed["caller"]["clv"] == 12_000 and routed["why"] == x["why"]
    agent = (await client.get("/v1/routing/agents/de-fit")).json()
    assert (agent["status"], agent["call_id"]) == ("on_call", "api-de-1")
    call = (await client.get("/v1/routing/calls/api-de-1")).json()
    assert call["state"] == "assigned" and call["decision"]["why"] == x["why"]


async def test_queue_position_stats_and_abandon(
    routing_server: RunningServer, client: httpx.AsyncClient
) -> None:
    """No free agent: 202 with position; GET /queue lists it; the board gets stats; DELETE abandons."""
    async with Listener(f"{routing_server.ws}/v1/supervisor") as board:
        r1 = await client.post("/v1/routing/calls", json={"call_id": "api-fr-1", "language": "fr"})
        r2 = await client.post(
            "/v1/routing/calls",
            json={"call_id": "api-fr-2", "language": "fr", "tier": "platinum", "clv": 40_000},
        )
        assert (r1.status_code, r2.status_code) == (202, 202)
        assert r1.json()["position"] == 1 and r2.json()["position"] == 1  # the VIP goes ahead
        assert r1.json()["explanation"]["why"] == "no logged-in agent speaks 'fr'"
        queue = (await client.get("/v1/routing/queue")).json()
        mine = [c["call_id"] for c in queue["calls"] if c["language"] == "fr"]
        assert mine == ["api-fr-2", "api-fr-1"] and queue["queued_by_language"]["fr"] == 2
        await board.wait_for(
            lambda ev: any(
                e["type"] == "routing.queue" and e["queued_by_language"].get("fr") == 2 for e in ev
            ),
            timeout=5000 * MS,
        )
    r = await client.delete("/v1/routing/calls/api-fr-1")
    assert r.status_code == 200 and r.json()["state"] == "abandoned"
    assert (await client.delete("/v1/routing/calls/api-fr-1")).status_code == 409
    assert (await client.delete("/v1/routing/calls/never-seen")).status_code == 404
    await client.delete("/v1/routing/calls/api-fr-2")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"language": "xx"}, "language"),
        ({"language": "en", "clv": -5}, "clv"),
        ({"language": "en", "previous_agent_id": "nobody"}, "previous_agent_id"),
        ({"language": "en", "tier": "diamond"}, "tier"),
        ({"language": "en", "ivr_sentiment": -3}, "ivr_sentiment"),
        ({"language": "en", "colour": "blue"}, "colour"),
        ({}, "language"),
    ],
)
async def test_bad_calls_get_422_naming_the_field(client: httpx.AsyncClient, body: dict, field: str) -> None:
    """Unknown language, negative CLV, unknown agent, ... -> 422 with the field named."""
    r = await client.post("/v1/routing/calls", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("agent_id", "body", "field"),
    [
        ("bad-lang", {"languages": ["klingon"]}, "languages"),
        ("no-lang", {"status": "available"}, "languages"),
        ("bad-skill", {"languages": ["en"], "skill_level": 9}, "skill_level"),
        ("bad-status", {"languages": ["en"], "status": "napping"}, "status"),
        ("bad-wrap", {"languages": ["en"], "wrap_up_s": -1}, "wrap_up_s"),
        ("mismatch", {"agent_id": "other", "languages": ["en"]}, "agent_id"),
    ],
)
async def test_bad_agents_get_422_naming_the_field(
    client: httpx.AsyncClient, agent_id: str, body: dict, field: str
) -> None:
    """Bad agent profiles and updates -> 422 with the field named."""
    r = await client.put(f"/v1/routing/agents/{agent_id}", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    """A body that is not JSON is rejected with 422, not a 500."""
    r = await client.post("/v1/routing/calls", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"


async def test_agent_on_a_call_must_name_it_to_become_available(client: httpx.AsyncClient) -> None:
    """409 when an on-call agent says 'available' without the call; naming it routes the next call."""
    await put_agent(client, "it-1", languages=["it"], status="available")
    first = await client.post("/v1/routing/calls", json={"call_id": "api-it-1", "language": "it"})
    assert first.json()["agent_id"] == "it-1"
    second = await client.post("/v1/routing/calls", json={"call_id": "api-it-2", "language": "it"})
    assert second.status_code == 202
    r = await put_agent(client, "it-1", status="available")
    assert r.status_code == 409 and r.json()["error"]["call_id"] == "api-it-1"
    r = await put_agent(client, "it-1", status="available", call_id="api-it-1")
    assert r.status_code == 200
    assert r.json()["status"] == "on_call" and r.json()["call_id"] == "api-it-2"


async def test_ended_softphone_call_starts_the_agents_wrap_up(
    routing_server: RunningServer, client: httpx.AsyncClient
) -> None:
    """call.ended on the calls stream moves the agent from on_call to timed wrap-up."""
    await put_agent(client, "pt-1", languages=["pt"], status="available")
    routed = await client.post("/v1/routing/calls", json={"call_id": "api-pt-1", "language": "pt"})
    assert routed.json()["agent_id"] == "pt-1"
    async with Softphone(routing_server.ws, "api-pt-1") as phone:
        await phone.start("pt-1")
        await phone.say("customer", "hello, my internet is down", 1.0, "u-1")
        await phone.end()
    for _ in range(200):
        agent = (await client.get("/v1/routing/agents/pt-1")).json()
        if agent["status"] != "on_call":
            break
        await asyncio.sleep(0.025)
    assert agent["status"] == "wrap_up" and agent["wrap_until"] is not None


async def test_callback_keeps_the_place_and_is_flagged_on_assignment(client: httpx.AsyncClient) -> None:
    """A caller who accepts a callback stays queued; the assignment says callback: true."""
    r = await client.post("/v1/routing/calls", json={"call_id": "api-nl-1", "language": "nl"})
    assert r.status_code == 202
    r = await client.post("/v1/routing/calls/api-nl-1/callback", json={"number": "+31 20 555 0100"})
    assert r.status_code == 200 and r.json()["callback"] is True and r.json()["position"] == 1
    r = await put_agent(client, "nl-1", languages=["nl"], status="available")
    assert r.json()["call_id"] == "api-nl-1"
    decision = (await client.get("/v1/routing/calls/api-nl-1")).json()
    assert decision["state"] == "assigned" and decision["callback"] is True


async def test_in_process_api_for_other_extensions(routing_server: RunningServer) -> None:
    """services.extensions['routing'] routes calls and raises InvalidInput naming the field."""
    routing = routing_server.services.extensions["routing"]
    with pytest.raises(InvalidInput) as err:
        await routing.route_call({"language": "sv", "clv": -1})
    assert err.value.field == "clv"
    result = await routing.route_call(
        {"call_id": "retention-sv-1", "language": "sv", "issue_category": "cancellation"}
    )
    assert result["status"] == "queued"
    await routing.router.abandon("retention-sv-1")


async def test_routing_metrics_are_exported(client: httpx.AsyncClient) -> None:
    """/metrics carries the queue, agents by status and decision latency."""
    text = (await client.get("/metrics")).text
    assert "callassist_routing_queued" in text and 'callassist_routing_agents{status="available"}' in text
    assert "callassist_routing_decision_seconds_bucket" in text
