"""QA end to end: calls streamed through the real server are scored by the in-process worker."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.helpers import MS, Listener, RunningServer, Softphone
from tests.qa_calls import EXEMPLARY, EXEMPLARY_CUSTOMER, NO_GREETING_NO_CLOSING, RUSHED_CUSTOMER


async def stream_call(
    server: RunningServer, call_id: str, agent_id: str, lines: list[dict[str, Any]], **start: Any
) -> None:
    async with Softphone(server.ws, call_id) as phone:
        await phone.start(agent_id, **start)
        for i, line in enumerate(lines):
            await phone.say(line["speaker"], line["text"], line["at"], f"{call_id}-u{i}")
        ack = await phone.end()
    assert ack["stored"] is True


async def scorecard(client: httpx.AsyncClient, call_id: str, timeout: float = 30000 * MS) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(f"/v1/qa/scorecards/{call_id}")
        if response.status_code == 200:
            return response.json()  # type: ignore[no-any-return]
        assert response.json()["error"]["code"] in ("not_scored", "unknown_call")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"call {call_id} was never scored")
        await asyncio.sleep(50 * MS)


async def test_exemplary_and_rushed_calls(server_factory) -> None:  # type: ignore[no-untyped-def]
    """An exemplary call scores high everywhere; a call with no greeting, no closing, a skipped
    recording notice and a hold without permission scores low in exactly those categories and
    lists exactly those violations, each citing the utterances that decided it."""
    server = server_factory(analysis_timeout_ms=60_000)  # QA judges the record; a busy CI must not degrade it
    async with Listener(f"{server.ws}/v1/supervisor") as board:
        await stream_call(
            server, "qa-good-1", "agent-qa", EXEMPLARY, customer=EXEMPLARY_CUSTOMER, team="billing"
        )
        await stream_call(
            server, "qa-bad-1", "agent-qa", NO_GREETING_NO_CLOSING, customer=RUSHED_CUSTOMER, team="billing"
        )
        async with httpx.AsyncClient(base_url=server.http) as client:
            good = await scorecard(client, "qa-good-1")
            bad = await scorecard(client, "qa-bad-1")
        await board.wait_for(lambda ev: len([e for e in ev if e["type"] == "qa_scorecard"]) == 2)

    assert good["overall_score"] >= 85, good["category_scores"]
    assert all(score >= 80 for score in good["category_scores"].values()), good["category_scores"]
    assert good["compliance_violations"] == [] and good["hold_procedure_score"] == 100.0
    assert good["coaching_opportunities"] == [] or all(
        c["points_lost"] < 3 for c in good["coaching_opportunities"]
    )
    assert {p["criterion"] for p in good["positive_behaviors"]} >= {
        "opening_greeting",
        "acknowledges_feelings",
        "hold_procedure",
    }

    low = {k for k, v in bad["category_scores"].items() if v < 60}
    assert low == {"greeting", "closing", "compliance"}, bad["category_scores"]
    assert all(bad["category_scores"][k] >= 75 for k in ("issue_identification", "resolution", "empathy"))
    assert bad["overall_score"] < good["overall_score"] - 15
    assert sorted(v["rule_id"] for v in bad["compliance_violations"]) == [
        "closing_summary",  # the call just stops: no recap
        "hold_without_permission",
        "recording_notice",
    ]
    assert bad["hold_procedure_score"] == 0.0 and bad["holds"] == 1
    hold = next(c for c in bad["criteria"] if c["id"] == "hold_procedure")
    assert hold["evidence"][0]["index"] == 10 and "putting you on hold" in hold["evidence"][0]["text"]
    violation = next(v for v in bad["compliance_violations"] if v["rule_id"] == "hold_without_permission")
    assert violation["evidence"]["index"] == 10
    for result in bad["criteria"] + good["criteria"]:
        if result["score"] is not None and result["id"] not in ("recording_notice", "no_forbidden_or_pii"):
            assert result["evidence"] or result["id"] in ("uses_name",), result
    greeting = next(c for c in bad["criteria"] if c["id"] == "opening_greeting")
    # Nothing matched: the closest of the first two agent turns is cited, below threshold.
    assert greeting["score"] == 0 and greeting["evidence"][0]["index"] in (0, 2)
    assert "below threshold" in greeting["evidence"][0]["note"]
    missed = {c["criterion"] for c in bad["coaching_opportunities"]}
    assert {
        "opening_greeting",
        "anything_else",
        "thanks_goodbye",
        "recording_notice",
        "hold_procedure",
    } <= missed

    summaries = board.of_type("qa_scorecard")
    assert {s["call_id"] for s in summaries} == {"qa-good-1", "qa-bad-1"}
    assert next(s for s in summaries if s["call_id"] == "qa-bad-1")["violations"] == 3


async def test_calls_stored_without_a_scorecard_are_scored_at_start(
    server_factory, demo_config, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """A call stored while no worker ran (an in-memory stream is lost at a restart) is scored
    when the server starts again."""
    import time

    from qa.records import OfflineRecorder
    from server.store import Database, SqliteCallStore

    store = tmp_path / "restart.db"
    db = Database(store)
    calls = SqliteCallStore(db)
    await calls.open()
    record = OfflineRecorder(demo_config).record(
        "restart-1", "agent-restart", EXEMPLARY, customer=EXEMPLARY_CUSTOMER, started_at=time.time() - 3600
    )
    assert await calls.save_call(record)
    await db.close()
    server = server_factory(store_path=store)
    async with httpx.AsyncClient(base_url=server.http) as client:
        card = await scorecard(client, "restart-1")
    assert card["agent_id"] == "agent-restart" and card["overall_score"] >= 80
