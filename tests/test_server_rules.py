"""Compliance rules and supervisor alerts through the real server, and the demo calls."""

from __future__ import annotations

import asyncio

import httpx

from server.demo import load_demo_calls, replay_call
from tests.helpers import MS, Listener, RunningServer, Softphone

RECORDING = (
    "Thanks for calling Northwind Connect, this call may be recorded for quality and training purposes."
)


def kinds(listener: Listener, call_id: str) -> list[tuple[str, bool]]:
    return [
        (e["alert"]["rule_id"], e["alert"]["resolved"])
        for e in listener.of_type("compliance", call_id=call_id)
    ]


def alerts(board: Listener, call_id: str) -> list[tuple[str, str | None]]:
    """Compliance alerts on the wall board (sentiment alerts are tested on their own)."""
    return [
        (e["kind"], e["rule_id"]) for e in board.of_type("alert", call_id=call_id, kind="compliance_breach")
    ]


async def run_call(
    server: RunningServer, call_id: str, agent_id: str, lines: list[tuple[str, float, str]]
) -> tuple[Listener, Listener]:
    """Stream a call while an agent widget and a wall board listen; returns both listeners."""
    async with (
        Listener(f"{server.ws}/v1/agents/{agent_id}") as agent,
        Listener(f"{server.ws}/v1/supervisor") as board,
    ):
        await board.wait_for(lambda ev: bool(ev))
        async with Softphone(server.ws, call_id) as phone:
            await phone.start(agent_id)
            for index, (speaker, at, text) in enumerate(lines):
                await phone.say(speaker, text, at, f"u-{index}")
            assert (await phone.end())["stored"]
        await agent.wait_for(lambda ev: any(e["type"] == "call_ended" for e in ev))
        await board.wait_for(
            lambda ev: any(e["type"] == "call_ended" and e["call_id"] == call_id for e in ev)
        )
    return agent, board


async def test_missing_recording_notice_alerts_once_then_resolves(shared_server: RunningServer) -> None:
    """The recording notice not given in 30 s of call time alerts once, when the window passes;
    saying it later marks it resolved."""
    agent, board = await run_call(
        shared_server,
        "rule-recording",
        "agent-rec",
        [
            ("agent", 1.0, "Hi, Northwind Connect, Sam speaking, how can I help?"),
            ("customer", 6.0, "I'd like to check my data allowance"),
            ("agent", 12.0, "Sure, can you confirm your date of birth for me?"),
            ("customer", 25.0, "twelfth of June 1970, it's the mobile plan"),
            ("customer", 31.0, "the unlimited one I think"),
            ("customer", 40.0, "yes that one"),
            (
                "agent",
                45.0,
                "Sorry, I should have said: this call may be recorded for quality and training purposes.",
            ),
            ("agent", 60.0, "Just to summarise, you're on Unlimited Plus with no cap."),
        ],
    )
    assert kinds(agent, "rule-recording") == [("recording_notice", False), ("recording_notice", True)]
    first = agent.of_type("compliance", call_id="rule-recording")[0]
    assert first["alert"]["timestamp"] == 31.0 and first["alert"]["severity"] == "high"
    assert alerts(board, "rule-recording") == [("compliance_breach", "recording_notice")]


async def test_account_details_before_verification(shared_server: RunningServer) -> None:
    """Discussing the account before verifying identity is a breach; verifying first is not."""
    agent, board = await run_call(
        shared_server,
        "rule-verify-bad",
        "agent-v1",
        [
            ("agent", 1.0, RECORDING),
            ("customer", 5.0, "why did my bill go up"),
            ("agent", 9.0, "I can see on your account that your last payment was on the fifth"),
            ("agent", 30.0, "Just to recap, the increase is the end of your discount."),
        ],
    )
    assert kinds(agent, "rule-verify-bad") == [("identity_verification", False)]
    assert alerts(board, "rule-verify-bad") == [("compliance_breach", "identity_verification")]
    agent, _ = await run_call(
        shared_server,
        "rule-verify-good",
        "agent-v2",
        [
            ("agent", 1.0, RECORDING),
            ("customer", 5.0, "why did my bill go up"),
            (
                "agent",
                9.0,
                "Before I look at the account, can you confirm your date of birth and the last four digits?",
            ),
            ("customer", 14.0, "fifth of May eighty five, and one two three four"),
            ("agent", 19.0, "Thanks. I can see on your account that your last payment was on the fifth."),
            ("agent", 30.0, "Just to recap, the increase is the end of your discount."),
        ],
    )
    assert kinds(agent, "rule-verify-good") == []


async def test_forbidden_promise_hold_and_card_number(shared_server: RunningServer) -> None:
    """An unauthorised promise, a hold without permission and a card number read aloud each
    raise a compliance event at once; a hold with permission does not."""
    agent, board = await run_call(
        shared_server,
        "rule-breaches",
        "agent-br",
        [
            ("agent", 1.0, RECORDING),
            ("agent", 5.0, "Can you confirm your date of birth please?"),
            ("customer", 9.0, "third of March 1990"),
            ("agent", 14.0, "Is it okay if I place you on hold for a minute while I check?"),
            ("customer", 17.0, "sure"),
            ("agent", 19.0, "Thanks, placing you on hold now."),
            ("agent", 60.0, "I guarantee you'll get a full refund by Friday."),
            ("agent", 70.0, "Hang on, I'm putting you on hold."),
            ("agent", 90.0, "So that's card 4539 1488 0343 6467, expiry 08/27, is that right?"),
            ("agent", 100.0, "To summarise, the refund request is raised."),
        ],
    )
    assert kinds(agent, "rule-breaches") == [
        ("unauthorised_promise", False),
        ("hold_without_permission", False),
        ("pii_spoken", False),
    ]
    assert alerts(board, "rule-breaches") == [
        ("compliance_breach", "unauthorised_promise"),
        ("compliance_breach", "pii_spoken"),
    ]
    async with httpx.AsyncClient(base_url=shared_server.http) as client:
        record = (await client.get("/v1/calls/rule-breaches")).json()
    assert [h["permission_asked"] for h in record["holds"]] == [True, False]
    card_line = record["utterances"][8]["text"]
    assert "4539" not in card_line and "[CARD ****6467]" in card_line


async def test_missing_closing_summary_at_end(shared_server: RunningServer) -> None:
    """A call that ends without a closing summary gets that alert at the end, before call_ended."""
    agent, _ = await run_call(
        shared_server,
        "rule-closing",
        "agent-cl",
        [
            ("agent", 1.0, RECORDING),
            ("customer", 5.0, "what are your opening hours"),
            ("agent", 9.0, "Eight till eight."),
        ],
    )
    types = [e["type"] for e in agent.events if e["type"] in ("compliance", "call_ended")]
    assert types == ["compliance", "call_ended"]
    assert kinds(agent, "rule-closing") == [("closing_summary", False)]


async def test_declining_sentiment_alert_once_per_episode(shared_server: RunningServer) -> None:
    """Sentiment declining for more than 60 s of call time alerts once; a very negative
    customer alerts once per episode, not once per utterance."""
    happy = [
        "thanks so much, that's great",
        "brilliant, really appreciate it",
        "perfect, thank you",
        "lovely, that helps a lot",
        "great, thanks",
    ]
    angry = [
        "this is terrible",
        "I'm really angry about this",
        "this is awful service",
        "I'm fed up, this is useless",
        "absolutely horrible, I hate this",
        "worst company ever",
        "this is a disgrace",
    ]
    lines = [("agent", 0.5, RECORDING)]
    lines += [("customer", 5.0 + 10 * i, text) for i, text in enumerate(happy)]
    lines += [("customer", 60.0 + 15 * i, text) for i, text in enumerate(angry)]
    agent, board = await run_call(shared_server, "rule-sentiment", "agent-sent", lines)
    raised = [(e["kind"], e["timestamp"]) for e in board.of_type("alert", call_id="rule-sentiment")]
    declining = [t for kind, t in raised if kind == "sentiment_declining"]
    negative = [t for kind, t in raised if kind == "negative_sentiment"]
    assert len(declining) == 1 and declining[0] > 60.0 + 60.0
    assert len(negative) == 1
    trends = [a["sentiment_trend"] for a in agent.of_type("assist")]
    assert trends[-1] == "declining"


async def test_demo_calls_raise_what_they_should(shared_server: RunningServer) -> None:
    """The six scripted demo calls, replayed fast through the real protocol: the compliant
    calls raise no compliance alert, the bad ones raise exactly their breaches."""
    scripts = {s.id: s for s in load_demo_calls()}
    assert len(scripts) >= 5
    async with Listener(f"{shared_server.ws}/v1/supervisor") as board:
        await board.wait_for(lambda ev: bool(ev))
        acks = await asyncio.gather(
            *(
                replay_call(shared_server.ws, s, speed=40, call_id=f"demo-{s.id}", interim=False)
                for s in scripts.values()
            )
        )
        await board.wait_for(
            lambda ev: len([e for e in ev if e["type"] == "call_ended"]) == len(scripts), timeout=30000 * MS
        )
    assert all(ack["stored"] for ack in acks)
    async with httpx.AsyncClient(base_url=shared_server.http) as client:
        records = {s: (await client.get(f"/v1/calls/demo-{s}")).json() for s in scripts}
    breaches = {s: sorted({a["rule_id"] for a in r["compliance_alerts"]}) for s, r in records.items()}
    for compliant in ("billing-dispute", "cancellation", "outage", "upgrade"):
        assert breaches[compliant] == [], compliant
    assert breaches["complaint-skipped-disclosure"] == [
        "closing_summary",
        "identity_verification",
        "recording_notice",
        "unauthorised_promise",
    ]
    assert breaches["hold-and-card"] == ["hold_without_permission", "pii_spoken"]
    complaint_alerts = {
        e["kind"] for e in board.of_type("alert", call_id="demo-complaint-skipped-disclosure")
    }
    assert {"compliance_breach", "negative_sentiment"} <= complaint_alerts
    assert records["outage"]["primary_intent"] == "technical_support"
    assert records["cancellation"]["primary_intent"] == "cancellation"
    assert records["billing-dispute"]["primary_intent"] == "billing_inquiry"
