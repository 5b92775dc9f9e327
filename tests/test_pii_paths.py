"""PII redaction on every path, against a real server: store, sockets, bus, Redis, logs, LLM, QA.

A call reads a Luhn-valid card (as numerals and as spoken digits), an SSN, an e-mail and
a phone number aloud; none of the raw values may appear anywhere but, when configured,
the agent's own live transcript.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from assist.config import AssistConfig, PiiSettings
from assist.pii import mask_digit_runs
from server.log_redaction import RedactingFilter
from tests.fake_llm import FakeLLM
from tests.helpers import MS, Listener, RunningServer, Softphone

CARD = "4539 1488 0343 6467"
SPOKEN_CARD = "four five three nine one four eight eight zero three four three six four six seven"
SSN = "123-45-6789"
EMAIL = "dana.whitfield@example.com"
PHONE = "415 555 0132"
# Any of these in any output is a leak (digits-only forms too: a store may normalise).
RAW = [
    CARD,
    "4539148803436467",
    "4539 1488 0343",  # the interim half of the card
    "1488 0343",
    "four five three nine one four",
    SSN,
    "123456789",
    EMAIL,
    "dana.whitfield",
    PHONE,
    "4155550132",
]
LINES: list[tuple[str, str, float, bool]] = [
    ("agent", "Thank you for calling, this call may be recorded for quality and training purposes.", 1, True),
    ("customer", "I want to pay my bill with card 4539 1488 0343", 4, False),
    ("customer", f"I want to pay my bill with card {CARD}", 5, True),
    ("agent", f"Thanks, so that is card {CARD}, let me process it.", 9, True),
    ("customer", f"and my social security number is {SSN} if you need it", 13, True),
    ("customer", f"actually the card number is {SPOKEN_CARD}", 17, True),
    ("customer", f"send the receipt to {EMAIL} or call me back on {PHONE}", 21, True),
]


def leaks(blob: Any) -> list[str]:
    text = blob if isinstance(blob, str) else json.dumps(blob, ensure_ascii=False, default=str)
    return [raw for raw in RAW if raw.lower() in text.lower()]


def with_pii(demo_config: AssistConfig, **settings: Any) -> AssistConfig:
    return demo_config.model_copy(update={"pii": PiiSettings(**settings)})


class BusTap:
    """Records every payload the server hands to its bus, then lets the real bus deliver it."""

    def __init__(self, bus: Any) -> None:
        self.published: list[tuple[list[str], dict[str, Any]]] = []
        self.streamed: list[dict[str, Any]] = []
        publish, stream_add = bus.publish, bus.stream_add

        async def tapped_publish(channels: list[str], payload: dict[str, Any], **kw: Any) -> None:
            self.published.append((list(channels), json.loads(json.dumps(payload, default=str))))
            await publish(channels, payload, **kw)

        async def tapped_stream_add(stream: str, fields: dict[str, Any]) -> str:
            self.streamed.append(json.loads(json.dumps(fields, default=str)))
            return await stream_add(stream, fields)  # type: ignore[no-any-return]

        bus.publish, bus.stream_add = tapped_publish, tapped_stream_add


async def run_pii_call(server: RunningServer, call_id: str, agent_id: str) -> dict[str, Any]:
    """Stream the PII call with an agent widget and a supervisor watching it; return what each saw."""
    async with (
        Listener(f"{server.ws}/v1/agents/{agent_id}") as agent,
        Listener(f"{server.ws}/v1/supervisor") as board,
    ):
        await agent.wait_for(lambda ev: ev and ev[0]["type"] == "snapshot")
        await board.wait_for(lambda ev: ev and ev[0]["type"] == "snapshot")
        async with Softphone(server.ws, call_id) as phone:
            await phone.start(agent_id, customer={"id": "cust-pii", "name": "Dana"})
            await board.send({"type": "watch", "call_id": call_id})
            for i, (speaker, text, at, final) in enumerate(LINES):
                await phone.say(speaker, text, at, f"{call_id}-u{i}", final=final)
            finals = sum(1 for speaker, _, _, final in LINES if speaker == "customer" and final)
            await agent.wait_for(
                lambda ev: len([e for e in ev if e["type"] == "assist"]) == finals, 30000 * MS
            )
            # A reconnecting widget and a late drill-down get the resume snapshot (call_state).
            async with Listener(f"{server.ws}/v1/agents/{agent_id}") as late_agent:
                await late_agent.wait_for(lambda ev: any(e["type"] == "call_state" for e in ev))
            async with Listener(f"{server.ws}/v1/supervisor") as late_board:
                await late_board.wait_for(lambda ev: ev and ev[0]["type"] == "snapshot")
                await late_board.send({"type": "watch", "call_id": call_id})
                await late_board.wait_for(lambda ev: any(e["type"] == "call_state" for e in ev))
            ack = await phone.end()
        assert ack["stored"] is True
        await agent.wait_for(lambda ev: any(e["type"] == "call_ended" for e in ev))
        await board.wait_for(lambda ev: any(e["type"] == "call_ended" for e in ev))
    async with httpx.AsyncClient(base_url=server.http) as client:
        record = (await client.get(f"/v1/calls/{call_id}")).json()
    return {
        "agent": agent.events,
        "board": board.events,
        "late_agent": late_agent.events,
        "late_board": late_board.events,
        "record": record,
    }


def raw_database(path: Path) -> str:
    """Every value in every table of the SQLite store, as text (WAL checkpointed first)."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(FULL)")
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = [repr(db.execute(f'SELECT * FROM "{table}"').fetchall()) for table in tables]
    return "\n".join(dump)


@pytest.fixture
def fake_llm() -> Any:
    fake = FakeLLM().start()
    yield fake
    fake.stop()


async def test_pii_redacted_on_every_path(
    server_factory: Any,
    demo_config: AssistConfig,
    fake_llm: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Default config: the store, both sockets (events, watch, snapshots), the bus, the stream,
    the logs (DEBUG, unfiltered capture), the LLM prompt and the QA scorecard carry no raw PII;
    detection still works (the agent reading the card aloud raises pii_spoken, unquoted)."""
    monkeypatch.setenv("CALLASSIST_QA_LLM_URL", fake_llm.url)
    caplog.set_level(logging.DEBUG)
    store = tmp_path / "pii.db"
    server = server_factory(store_path=store, analysis_timeout_ms=60_000)
    tap = BusTap(server.services.bus)

    seen = await run_pii_call(server, "pii-1", "agent-pii")

    async with httpx.AsyncClient(base_url=server.http) as client:
        deadline = asyncio.get_running_loop().time() + 30000 * MS
        while (card := await client.get("/v1/qa/scorecards/pii-1")).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, "never scored"
            await asyncio.sleep(50 * MS)
        scorecard = card.json()
        analytics = [
            (await client.get(path)).text
            for path in ("/v1/analytics/kpis", "/v1/supervisor/alerts", "/v1/calls", "/v1/calls/pii-1")
        ]

    for name, events in seen.items():
        assert leaks(events) == [], name
    assert leaks(tap.published) == [] and tap.published
    assert leaks(tap.streamed) == [] and any(e["event"] == "call.ended" for e in tap.streamed)
    assert leaks(raw_database(store)) == []
    assert leaks(scorecard) == [] and leaks(analytics) == []
    assert fake_llm.requests, "the LLM judge was not asked"
    assert leaks([r["body"] for r in fake_llm.requests]) == []
    assert scorecard["scorer"] == "llm"
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert leaks(logged) == []

    # Redacted, not deleted: the text stays readable and the analyses still ran on it.
    texts = [u["text"] for u in seen["record"]["utterances"]]
    assert "I want to pay my bill with card [CARD ****6467]" in texts
    assert any("[SSN]" in t for t in texts) and any("[EMAIL]" in t and "[PHONE]" in t for t in texts)
    assert "actually the card number is [CARD ****6467]" in texts
    interim = [e for e in seen["agent"] if e["type"] == "transcript" and not e["is_final"]]
    assert interim and interim[0]["text"] == "I want to pay my bill with card [DIGITS]"
    assert [a["intent"] for a in seen["agent"] if a["type"] == "assist"][0] == "billing_inquiry"
    pii_alerts = [a for a in seen["record"]["compliance_alerts"] if a["kind"] == "pii_spoken"]
    assert pii_alerts and "card number" in pii_alerts[0]["message"]


async def test_agent_live_text_reaches_only_the_agent(server_factory: Any, demo_config: AssistConfig) -> None:
    """pii.agent_live_text: the agent's own widget shows the raw live transcript; the
    supervisor (events, watch, snapshots), the registry and the store stay redacted."""
    server = server_factory(assist_config=with_pii(demo_config, agent_live_text=True))
    seen = await run_pii_call(server, "pii-live-1", "agent-live")
    agent_transcripts = [e["text"] for e in seen["agent"] if e["type"] == "transcript"]
    assert f"I want to pay my bill with card {CARD}" in agent_transcripts
    assert "I want to pay my bill with card 4539 1488 0343" in agent_transcripts  # interim, raw
    assert [e for e in seen["agent"] if e["type"] == "assist" and leaks(e)] == []
    for name in ("board", "late_board", "late_agent", "record"):
        assert leaks(seen[name]) == [], name
    board_transcripts = [e["text"] for e in seen["board"] if e["type"] == "transcript"]
    assert "I want to pay my bill with card [CARD ****6467]" in board_transcripts


async def test_kinds_are_configurable(server_factory: Any, demo_config: AssistConfig) -> None:
    """Only the configured kinds are redacted (here: cards and SSNs, not e-mail or phone)."""
    server = server_factory(assist_config=with_pii(demo_config, kinds=["card_number", "ssn"]))
    seen = await run_pii_call(server, "pii-kinds-1", "agent-kinds")
    text = json.dumps(seen["record"]["utterances"])
    assert EMAIL in text and PHONE in text
    assert CARD not in text and SSN not in text


async def test_redis_sees_no_raw_pii(server_factory: Any, redis_url: str) -> None:
    """With Redis: a raw client psubscribed to every channel, plus every key afterwards
    (streams, registry hashes, strings), never holds a raw value."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub()
    await pubsub.psubscribe("*")
    heard: list[str] = []

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "pmessage":
                heard.append(str(message["data"]))

    listener = asyncio.create_task(listen())
    try:
        server = server_factory(bus_url=redis_url)
        seen = await run_pii_call(server, "pii-redis-1", "agent-redis")
        await asyncio.sleep(300 * MS)
        stored: list[str] = []
        async for key in client.scan_iter("*"):  # every key on the server, not only this call's
            kind = await client.type(key)
            if kind == "stream":
                stored.append(repr(await client.xrange(key)))
            elif kind == "hash":
                stored.append(repr(await client.hgetall(key)))
            elif kind == "string":
                stored.append(str(await client.get(key)))
            elif kind == "zset":
                stored.append(repr(await client.zrange(key, 0, -1)))
            elif kind == "set":
                stored.append(repr(await client.smembers(key)))
            elif kind == "list":
                stored.append(repr(await client.lrange(key, 0, -1)))
    finally:
        listener.cancel()
        await pubsub.aclose()
        await client.aclose()
    assert any("call.ended" in s for s in stored) and any("[CARD ****6467]" in s for s in stored)
    assert heard and any("[CARD ****6467]" in h for h in heard)
    assert leaks(heard) == []
    assert leaks(stored) == []
    assert leaks(seen) == []


# ------------------------------------------------------------------ pure parts


def test_log_filter_redacts_message_args_and_traceback() -> None:
    """The backstop filter redacts the formatted message and any traceback text."""
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "card %s mail %s", (CARD, EMAIL), None)
    try:
        raise ValueError(f"bad value {SSN}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "card [CARD ****6467] mail [EMAIL]"
    assert SSN not in (record.exc_text or "") and "[SSN]" in (record.exc_text or "")
    handler_output = logging.Formatter().format(record)
    assert leaks(handler_output) == []


def test_interim_digit_runs_are_masked() -> None:
    assert mask_digit_runs("card 4539 1488 0343 please", 6) == "card [DIGITS] please"
    assert mask_digit_runs("card four five three nine one four.", 6) == "card [DIGITS]."
    assert mask_digit_runs("plan Fibre 500 for 84 dollars", 6) == "plan Fibre 500 for 84 dollars"
    assert mask_digit_runs("card 4539 1488", 0) == "card 4539 1488"


def test_unknown_pii_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="kinds"):
        PiiSettings(kinds=["passport"])  # type: ignore[list-item]
