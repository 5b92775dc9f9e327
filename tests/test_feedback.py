"""Suggestion feedback, adoption figures and the wall board's alert feed (real server, no browser)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import httpx
import pytest

from server.feedback import SCHEMA, adoption, assist_key, impressions
from tests.helpers import MS, Listener, RunningServer, Softphone

BILL = "hi, my bill is double this month and I don't understand why"
ANGRY = "this is absolutely ridiculous, I'm furious, worst service I have ever had, I hate this"


async def poll(check: Any, timeout: float = 5000 * MS) -> Any:
    """Retry ``check()`` until it returns something truthy (the impressions worker is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def adoption_with_calls(client: httpx.AsyncClient, calls: int, **params: Any) -> dict[str, Any]:
    async def fetch() -> dict[str, Any] | None:
        body = (await client.get("/v1/assist/adoption", params=params)).json()
        return body if body["calls"] >= calls else None

    return await poll(fetch)


def feedback_rows(server: RunningServer, call_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.services.settings.store_path) as conn:
        return conn.execute(
            "SELECT utterance_id, target, article_id, used, rating FROM assist_feedback WHERE call_id = ?"
            " ORDER BY target, article_id",
            (call_id,),
        ).fetchall()


async def test_feedback_frames_on_the_agent_socket(server_factory: Any) -> None:
    """The widget's feedback frames are checked against what the agent was shown, stored
    idempotently per (call, utterance, target), and counted in the adoption figures once
    the call has ended."""
    server = server_factory()
    async with Listener(f"{server.ws}/v1/agents/agent-fb") as agent, Softphone(server.ws, "fb-1") as phone:
        await phone.start("agent-fb", customer={"id": "c-1", "tier": "gold"}, team="billing")
        await phone.say("customer", BILL, 3.0, "u-1")
        await agent.wait_for(lambda ev: any(e["type"] == "assist" for e in ev))
        assist = agent.of_type("assist")[0]
        article = assist["knowledge_articles"][0]["id"]

        frames = [
            {"call_id": "fb-1", "utterance_id": "u-1", "target": "suggestion", "used": True},
            {"call_id": "fb-1", "utterance_id": "u-1", "target": "suggestion", "rating": "helpful"},
            {"call_id": "fb-1", "utterance_id": "u-1", "target": "suggestion", "rating": "helpful"},
            {
                "call_id": "fb-1",
                "utterance_id": "u-1",
                "target": "article",
                "article_id": article,
                "used": True,
            },
            {
                "call_id": "fb-1",
                "utterance_id": "u-1",
                "target": "article",
                "article_id": "not-shown",
                "used": True,
            },
            {"call_id": "fb-1", "utterance_id": "u-9", "target": "suggestion", "used": True},
            {"call_id": "nope", "utterance_id": "u-1", "target": "suggestion", "used": True},
            {"call_id": "fb-1", "utterance_id": "u-1", "target": "suggestion"},
            {"call_id": "fb-1", "utterance_id": "u-1", "target": "article", "used": True},
            {"call_id": "fb-1", "utterance_id": "u-1", "target": "board", "used": True},
        ]
        for frame in frames:
            await agent.send({"type": "feedback", **frame})
        await agent.wait_for(
            lambda ev: len([e for e in ev if e["type"] in ("feedback_saved", "error")]) == len(frames)
        )
        answers = [e for e in agent.events if e["type"] in ("feedback_saved", "error")]
        await phone.end()

    saved = [(a["target"], a.get("used"), a.get("rating")) for a in answers[:4]]
    assert saved == [
        ("suggestion", True, None),
        ("suggestion", True, "helpful"),
        ("suggestion", True, "helpful"),
        ("article", True, None),
    ]
    assert [(a["code"], a.get("field")) for a in answers[4:]] == [
        ("unknown_article", "article_id"),
        ("unknown_utterance", "utterance_id"),
        ("unknown_call", "call_id"),
        ("missing_field", "used"),
        ("missing_field", "article_id"),
        ("invalid_field", "target"),
    ]
    assert feedback_rows(server, "fb-1") == [
        ("u-1", "article", article, 1, None),
        ("u-1", "suggestion", "", 1, "helpful"),
    ]

    async with httpx.AsyncClient(base_url=server.http) as client:
        figures = await adoption_with_calls(client, 1)
    billing = next(row for row in figures["by_intent"] if row["intent"] == assist["intent"])
    assert billing == {
        "intent": assist["intent"],
        "shown": 1,
        "used": 1,
        "helpful": 1,
        "not_helpful": 0,
        "used_rate": 1.0,
        "helpful_rate": 1.0,
    }
    shown_articles = {row["article_id"]: row for row in figures["by_article"]}
    assert set(shown_articles) == {a["id"] for a in assist["knowledge_articles"]}
    assert shown_articles[article]["used"] == 1 and shown_articles[article]["helpful_rate"] is None
    assert figures["suggestions"]["shown"] == 1 and figures["articles"]["used"] == 1


async def test_feedback_over_http_and_adoption_filters(server_factory: Any) -> None:
    """POST /v1/assist/feedback works after the call has ended (checked against the stored
    record), refuses another agent's call with 403 and bad bodies with clear 4xx errors;
    adoption filters by agent, team, intent and time window."""
    server = server_factory()
    async with Softphone(server.ws, "fb-http") as phone, Listener(f"{server.ws}/v1/agents/agent-h") as agent:
        await phone.start("agent-h", team="care")
        await phone.say("customer", BILL, 2.0, "u-1")
        await phone.say("customer", "and I want to cancel my broadband contract", 9.0)  # no utterance id
        await agent.wait_for(lambda ev: len([e for e in ev if e["type"] == "assist"]) == 2)
        await phone.end()
    second = agent.of_type("assist")[1]
    assert second["utterance_id"] is None
    keyless = assist_key(None, second["timestamp"])
    assert keyless == "@9"

    async with httpx.AsyncClient(base_url=server.http) as client:
        post = lambda body: client.post("/v1/assist/feedback", json=body)  # noqa: E731
        ok = await post({"agent_id": "agent-h", "call_id": "fb-http", "utterance_id": keyless,
                         "target": "suggestion", "rating": "not_helpful"})  # fmt: skip
        again = await post({"agent_id": "agent-h", "call_id": "fb-http", "utterance_id": keyless,
                            "target": "suggestion", "rating": "not_helpful"})  # fmt: skip
        cleared = await post({"agent_id": "agent-h", "call_id": "fb-http", "utterance_id": "u-1",
                              "target": "suggestion", "used": True, "rating": None})  # fmt: skip
        other = await post({"agent_id": "agent-x", "call_id": "fb-http", "utterance_id": "u-1",
                            "target": "suggestion", "used": True})  # fmt: skip
        missing = await post(
            {"call_id": "fb-http", "utterance_id": "u-1", "target": "suggestion", "used": True}
        )
        garbage = await client.post("/v1/assist/feedback", content=b"{not json")
        unknown = await post({"agent_id": "agent-h", "call_id": "never", "utterance_id": "u-1",
                              "target": "suggestion", "used": True})  # fmt: skip
        assert ok.status_code == 200 and ok.json()["rating"] == "not_helpful"
        assert again.json() == ok.json()
        assert cleared.json()["used"] is True and cleared.json()["rating"] is None
        assert (other.status_code, other.json()["error"]["code"]) == (403, "not_your_call")
        assert (missing.status_code, missing.json()["error"]["field"]) == (422, "agent_id")
        assert (garbage.status_code, garbage.json()["error"]["code"]) == (400, "invalid_json")
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_call")

        figures = await adoption_with_calls(client, 1, agent_id="agent-h")
        assert figures["suggestions"]["not_helpful"] == 1 and figures["suggestions"]["used"] == 1
        assert (await adoption_with_calls(client, 1, team="care"))["calls"] == 1
        assert (await client.get("/v1/assist/adoption", params={"team": "sales"})).json()["calls"] == 0
        future = (await client.get("/v1/assist/adoption", params={"since": time.time() + 3600})).json()
        assert future["calls"] == 0 and future["by_intent"] == []
        bad = await client.get("/v1/assist/adoption", params={"since": "yesterday"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_query")


def test_adoption_counts_what_the_agent_saw() -> None:
    """A suggestion that stays on screen over several utterances is shown once; feedback on
    any utterance that carried it counts for it, the latest rating wins; an article counts
    once per call."""
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.executescript(SCHEMA)
    same = "Explain the charges on the latest bill"
    record = {
        "call_id": "c-1",
        "agent_id": "a-1",
        "team": "t",
        "ended_at": 1000.0,
        "assists": [
            {
                "utterance_id": "u-1",
                "timestamp": 1.0,
                "intent": "billing",
                "suggested_action": same,
                "articles": [{"id": "kb-bill", "title": "High bill"}],
            },  # fmt: skip
            {
                "utterance_id": "u-2",
                "timestamp": 5.0,
                "intent": "billing",
                "suggested_action": same,
                "articles": [{"id": "kb-bill", "title": "High bill"}, {"id": "kb-pay", "title": "Payments"}],
            },  # fmt: skip
            {
                "utterance_id": None,
                "timestamp": 9.5,
                "intent": "cancel",
                "suggested_action": "Offer retention",
                "articles": [],
            },  # fmt: skip
        ],
    }
    rows = impressions(record)
    conn.executemany("INSERT OR IGNORE INTO assist_impressions VALUES (?,?,?,?,?,?,?,?,?,?)", rows + rows)
    feedback = [
        ("u-1", "suggestion", "", 1, 10.0, "helpful", 10.0),
        ("u-2", "suggestion", "", None, None, "not_helpful", 20.0),  # the agent changed their mind
        ("u-2", "article", "kb-bill", 1, 21.0, None, None),
        ("u-1", "article", "kb-bill", 1, 11.0, "helpful", 11.0),
        ("@9.5", "suggestion", "", 0, 30.0, None, None),
    ]
    conn.executemany(
        "INSERT INTO assist_feedback (call_id, utterance_id, target, article_id, agent_id, used, used_at,"
        " rating, rated_at, created_at) VALUES ('c-1', ?, ?, ?, 'a-1', ?, ?, ?, ?, 0)",
        feedback,
    )
    figures = adoption(conn)
    by_intent = {row["intent"]: row for row in figures["by_intent"]}
    assert (by_intent["billing"]["shown"], by_intent["billing"]["used"]) == (1, 1)
    assert (by_intent["billing"]["helpful"], by_intent["billing"]["not_helpful"]) == (0, 1)
    assert by_intent["cancel"]["used_rate"] == 0.0 and by_intent["cancel"]["helpful_rate"] is None
    by_article = {row["article_id"]: row for row in figures["by_article"]}
    assert by_article["kb-bill"] == {"article_id": "kb-bill", "title": "High bill", "shown": 1, "used": 1,
                                     "helpful": 1, "not_helpful": 0, "used_rate": 1.0, "helpful_rate": 1.0}  # fmt: skip
    assert by_article["kb-pay"]["shown"] == 1 and by_article["kb-pay"]["used"] == 0
    assert figures["calls"] == 1 and figures["articles"]["shown"] == 2
    assert (
        adoption(conn, until=999.0)["calls"] == 0
        and adoption(conn, intent="cancel")["suggestions"]["shown"] == 1
    )


@pytest.mark.parametrize(("timestamp", "key"), [(4, "@4"), (4.0, "@4"), (12.5, "@12.5"), (0.1, "@0.1")])
def test_assist_key_matches_the_widget(timestamp: float, key: str) -> None:
    """Assists without an utterance id are keyed by call time, printed as JavaScript prints it."""
    assert assist_key(None, timestamp) == key
    assert assist_key("u-3", timestamp) == "u-3"


async def test_alert_feed_and_acknowledge(shared_server: RunningServer) -> None:
    """Recent alerts survive a board reload (GET), the first acknowledgement wins and every
    board hears it once; unknown alerts are 404."""
    server = shared_server
    async with Listener(f"{server.ws}/v1/supervisor") as board, Softphone(server.ws, "feed-1") as phone:
        await phone.start("agent-feed", customer={"id": "c-9"})
        await phone.say("customer", ANGRY, 4.0, "u-1")
        await board.wait_for(lambda ev: any(e["type"] == "alert" and e["call_id"] == "feed-1" for e in ev))
        alert = board.of_type("alert", call_id="feed-1")[0]
        async with httpx.AsyncClient(base_url=server.http) as client:
            listed = (await client.get("/v1/supervisor/alerts", params={"call_id": "feed-1"})).json()
            assert [(a["alert_id"], a["ack"]) for a in listed["alerts"]] == [(alert["alert_id"], None)]
            first = await client.post(f"/v1/supervisor/alerts/{alert['alert_id']}/ack", json={"by": "Sam"})
            second = await client.post(f"/v1/supervisor/alerts/{alert['alert_id']}/ack", json={"by": "Alex"})
            empty_body = await client.post(f"/v1/supervisor/alerts/{alert['alert_id']}/ack")
            unknown = await client.post("/v1/supervisor/alerts/feed-1:99/ack")
            bad_by = await client.post(f"/v1/supervisor/alerts/{alert['alert_id']}/ack", json={"by": ""})
            await board.wait_for(lambda ev: any(e["type"] == "alert_ack" for e in ev))
            listed = (await client.get("/v1/supervisor/alerts", params={"call_id": "feed-1"})).json()
        await phone.end()
    assert first.status_code == 200 and first.json()["by"] == "Sam"
    assert second.json() == first.json() == empty_body.json()
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_alert")
    assert bad_by.status_code == 422
    assert listed["alerts"][0]["ack"]["by"] == "Sam"
    acks = board.of_type("alert_ack")
    assert len(acks) == 1 and acks[0]["alert_id"] == alert["alert_id"] and acks[0]["call_id"] == "feed-1"


async def test_impressions_survive_concurrent_call_ends(tmp_path: Any) -> None:
    """Hundreds of calls ending at once all get their impressions (no SQLite cursor crosses
    threads: that used to fail some inserts with "bad parameter or other API misuse")."""
    from types import SimpleNamespace

    from server.bus import StreamEntry
    from server.feedback import FeedbackExtension
    from server.store import Database

    db = Database(tmp_path / "impressions.db")
    await db.open()
    await db.run(lambda conn: conn.executescript(SCHEMA) and None)
    extension = FeedbackExtension()
    extension._services = SimpleNamespace(db=db)  # type: ignore[assignment]
    assists = [{"utterance_id": f"u-{i}", "timestamp": float(i), "intent": "billing", "suggested_action": "Explain",
                "articles": [{"id": "kb-1", "title": "One"}, {"id": "kb-2", "title": "Two"}]} for i in range(4)]  # fmt: skip

    def ended(n: int) -> StreamEntry:
        record = {"call_id": f"c-{n}", "agent_id": "a", "ended_at": 1.0, "assists": assists}
        return StreamEntry(f"{n}-0", {"event": "call.ended", "call_id": f"c-{n}", "record": record})

    await asyncio.gather(*(extension._on_call_event(ended(n)) for n in range(300)))
    count = await db.run(lambda conn: conn.execute("SELECT COUNT(*) FROM assist_impressions").fetchone()[0])
    await db.close()
    assert count == 300 * 4 * 3


async def test_feedback_storage_failure_is_a_clear_error(server_factory: Any) -> None:
    """If the feedback cannot be stored the agent gets a retryable error frame and the
    socket (and the call) carry on."""
    server = server_factory()
    async with (
        Listener(f"{server.ws}/v1/agents/agent-broken") as agent,
        Softphone(server.ws, "fb-broken") as phone,
    ):
        await phone.start("agent-broken")
        await phone.say("customer", BILL, 2.0, "u-1")
        await agent.wait_for(lambda ev: any(e["type"] == "assist" for e in ev))
        with sqlite3.connect(server.services.settings.store_path) as conn:
            conn.execute("DROP TABLE assist_feedback")
        await agent.send({"type": "feedback", "call_id": "fb-broken", "utterance_id": "u-1",
                          "target": "suggestion", "used": True})  # fmt: skip
        await agent.send({"type": "ping"})
        await agent.wait_for(lambda ev: any(e["type"] == "pong" for e in ev))
        await phone.say("customer", "and I want to cancel", 6.0, "u-2")
        await agent.wait_for(lambda ev: len([e for e in ev if e["type"] == "assist"]) == 2)
        assert (await phone.end())["stored"] is True
    errors = agent.of_type("error")
    assert [e["code"] for e in errors] == ["feedback_unavailable"]
