"""QA test tools: an assist engine for building stored call records, scorers, and records."""

from __future__ import annotations

from typing import Any

from assist.engine import AssistEngine
from qa.records import record_with_engine


async def build_record(
    engine: AssistEngine,
    call_id: str,
    lines: list[dict[str, Any]],
    *,
    agent_id: str = "agent-qa",
    customer: dict[str, Any] | None = None,
    team: str | None = None,
    started_at: float = 1_780_000_000.0,
) -> dict[str, Any]:
    """The record the server would store for this call (full live analysis)."""
    return await record_with_engine(
        engine, call_id, agent_id, lines, customer=customer, team=team, started_at=started_at
    )
