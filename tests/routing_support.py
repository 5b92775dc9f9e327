"""Builders shared by the routing tests: agents and callers with sensible defaults."""

from __future__ import annotations

from typing import Any

from routing.config import RoutingConfig
from routing.engine import RoutingEngine
from routing.model import AgentProfile, AgentRecord, AgentStatus, CallerProfile, CallRecord, CallState

T0 = 1_000_000.0


def agent(agent_id: str, *, status: str = "available", idle_since: float = T0, **profile: Any) -> AgentRecord:
    profile.setdefault("languages", ["en"])
    return AgentRecord(
        profile=AgentProfile(agent_id=agent_id, **profile),
        status=AgentStatus(status),
        status_since=idle_since,
        idle_since=idle_since,
        version=1,
    )


def call(call_id: str, *, at: float = T0, seq: int | None = None, **profile: Any) -> CallRecord:
    profile.setdefault("language", "en")
    return CallRecord(
        profile=CallerProfile(call_id=call_id, **profile),
        enqueued_at=at,
        wait_start=at,
        seq=seq if seq is not None else int(at * 1000),
        version=1,
    )


def engine(*agents: AgentRecord, config: RoutingConfig | None = None, **overrides: Any) -> RoutingEngine:
    if overrides:
        config = (config or RoutingConfig()).model_copy(update=overrides)
    e = RoutingEngine(config)
    for a in agents:
        e.apply_agent(a)
    return e


def commit(e: RoutingEngine, call_id: str, agent_id: str, now: float) -> None:
    """What a state backend does on a successful claim, for the pure tests."""
    record = e.call(call_id)
    a = e.agent(agent_id)
    assert record is not None and a is not None
    e.apply_agent(
        a.model_copy(update={"status": AgentStatus.ON_CALL, "call_id": call_id, "version": a.version + 1})
    )
    e.apply_call(
        record.model_copy(
            update={
                "state": CallState.ASSIGNED,
                "agent_id": agent_id,
                "assigned_at": now,
                "version": record.version + 1,
            }
        )
    )
