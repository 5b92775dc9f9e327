"""Coaching patterns, score distributions and the scorecard list over the REST API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from assist.engine import AssistEngine
from qa.evidence import EvidenceScorer
from qa.rubric import Rubric
from qa.scorecard import Scorecard
from qa.store import QAStore
from server.store import Database
from tests.helpers import RunningServer
from tests.qa_calls import EXEMPLARY, EXEMPLARY_CUSTOMER, NO_EMPATHY, NO_GREETING_NO_CLOSING, RUSHED_CUSTOMER
from tests.qa_helpers import build_record

DAY = 86_400.0
T0 = 1_780_000_000.0


@pytest.fixture(scope="module")
async def cards(embedder: Any, demo_config: Any, engine_parts: Any) -> AsyncIterator[list[Scorecard]]:
    """Agent 'coach-me': three billing calls without empathy, two technical calls with it; agent
    'star': two exemplary calls. Each in its own day."""
    engine = AssistEngine(demo_config, embedder, *engine_parts)
    engine.start()
    scorer = EvidenceScorer(Rubric.load(), embedder)
    plan = [
        ("coach-me", NO_EMPATHY, EXEMPLARY_CUSTOMER, "team-a"),
        ("coach-me", NO_EMPATHY, EXEMPLARY_CUSTOMER, "team-a"),
        ("coach-me", NO_GREETING_NO_CLOSING, RUSHED_CUSTOMER, "team-a"),
        ("coach-me", NO_EMPATHY, EXEMPLARY_CUSTOMER, "team-a"),
        ("coach-me", NO_GREETING_NO_CLOSING, RUSHED_CUSTOMER, "team-a"),
        ("star", EXEMPLARY, EXEMPLARY_CUSTOMER, "team-b"),
        ("star", EXEMPLARY, EXEMPLARY_CUSTOMER, "team-b"),
    ]
    out = []
    for i, (agent, lines, customer, team) in enumerate(plan):
        record = await build_record(
            engine, f"ins-{i}", lines, agent_id=agent, customer=customer, team=team, started_at=T0 + i * DAY
        )
        out.append(scorer.score(record))
    await engine.close()
    yield out


async def test_coaching_finds_the_pattern_with_its_moments(server_factory, cards: list[Scorecard]) -> None:  # type: ignore[no-untyped-def]
    """'Loses empathy points on billing calls': the three calls, each with the moment the
    customer turned negative and what the agent said next; the agent's good areas are not flagged."""
    server: RunningServer = server_factory()
    db = Database(server.services.settings.store_path)
    store = QAStore(db)
    await store.open()
    for card in cards:
        assert await store.save(card)
    await db.close()
    async with httpx.AsyncClient(base_url=server.http) as client:
        coaching = (await client.get("/v1/qa/agents/coach-me/coaching")).json()
        star = (await client.get("/v1/qa/agents/star/coaching")).json()
        nobody = await client.get("/v1/qa/agents/nobody/coaching")
        listing = (
            await client.get("/v1/qa/scorecards", params={"agent_id": "coach-me", "since": T0 + 2.5 * DAY})
        ).json()
        dist = (await client.get("/v1/qa/distribution")).json()
        bad_query = await client.get("/v1/qa/scorecards", params={"since": "last tuesday"})
        rubric = (await client.get("/v1/qa/rubric")).json()

    assert coaching["calls"] == 5
    empathy = next(p for p in coaching["patterns"] if p["rubric_category"] == "empathy")
    assert empathy["issue_category"] == "billing_inquiry"
    assert empathy["message"].startswith(
        "loses empathy points on billing inquiry calls: 3 of 3 calls below 70"
    )
    assert empathy["missed_criteria"][0] == {"criterion": "acknowledges_feelings", "calls": 3}
    assert empathy["tips"][0].startswith("When the customer is upset")
    assert len(empathy["examples"]) == 3
    for example in empathy["examples"]:
        assert example["moment"]["speaker"] == "customer" and "stuck paying more" in example["moment"]["text"]
        assert example["agent_reply"]["text"].startswith("Not at all. I've applied")
    categories = {(p["issue_category"], p["rubric_category"]) for p in coaching["patterns"]}
    assert ("technical_support", "greeting") in categories and (
        "technical_support",
        "empathy",
    ) not in categories
    assert star["patterns"] == []
    assert nobody.status_code == 404 and nobody.json()["error"]["code"] == "no_scorecards"

    assert [c["call_id"] for c in listing["scorecards"]] == ["ins-4", "ins-3"]
    assert set(listing["scorecards"][0]) >= {"overall_score", "raw_overall_score", "scorer", "primary_intent"}
    assert bad_query.status_code == 422 and bad_query.json()["error"]["code"] == "invalid_query"

    assert dist["all"]["calls"] == 7 and set(dist["teams"]) == {"team-a", "team-b"}
    assert dist["agents"]["star"]["calls"] == 2 and dist["agents"]["star"]["min"] >= 85
    assert sum(dist["agents"]["coach-me"]["histogram"].values()) == 5
    assert sum(dist["all"]["bands"]) == 7
    assert [c["weight"] for c in rubric["categories"]] == [0.1, 0.2, 0.3, 0.1, 0.15, 0.15]
