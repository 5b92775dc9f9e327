"""The state seam: where agents and calls live, and the atomic claim that assigns one to the
other. Two backends share these rules: ``MemoryState`` (one process, the default) and
``RedisState`` (several routers in several processes; every rule runs inside a Lua script,
so two routers can never assign one agent or one call twice).

Rules:
- an agent on a call leaves it (``available`` / ``wrap_up``) only by naming that call, so a
  stale "I'm available" from the desktop cannot wipe an assignment made a moment earlier;
  ``offline`` and ``on_call`` (a call taken outside routing) are always accepted;
- staying available keeps the agent's idle-since time (heartbeats don't lose their place);
- a claim succeeds only if the agent is free (available, or its timed wrap-up is over) and
  the call is still queued; both change in the same step.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from routing.errors import Conflict, NotFound
from routing.model import AgentProfile, AgentRecord, AgentStatus, CallRecord, CallState

FINISHED_CALLS_KEPT = 10_000


@dataclass(frozen=True)
class ClaimResult:
    ok: bool
    reason: str = ""  # agent_busy | call_taken | missing
    agent: AgentRecord | None = None
    call: CallRecord | None = None


def agent_transition(
    current: AgentRecord | None,
    agent_id: str,
    profile: AgentProfile | None,
    status: AgentStatus | None,
    call_id: str | None,
    now: float,
    wrap_up_s: float,
) -> AgentRecord:
    """The next record of an agent (raises Conflict / NotFound). The Lua script mirrors this."""
    if current is None and profile is None:
        raise NotFound(f"unknown agent {agent_id}: send its profile first", field="languages")
    profile = profile or current.profile  # type: ignore[union-attr]
    if current is None:
        current = AgentRecord(profile=profile, status=AgentStatus.OFFLINE, status_since=now, idle_since=now)
    status = status or current.status
    if (
        current.status is AgentStatus.ON_CALL
        and status in (AgentStatus.AVAILABLE, AgentStatus.WRAP_UP)
        and call_id != current.call_id
    ):
        raise Conflict(
            f"agent {agent_id} is on call {current.call_id}: name it in call_id to end it",
            code="agent_on_call",
            field="call_id",
            call_id=current.call_id,
        )
    update: dict[str, Any] = {"profile": profile, "status": status, "version": current.version + 1}
    if status is not current.status:
        update["status_since"] = now
    if status is AgentStatus.AVAILABLE:
        if not current.free_at(now):
            update["idle_since"] = now
        else:
            update["idle_since"] = current.idle_from()
        update["call_id"] = None
        update["wrap_until"] = 0.0
    elif status is AgentStatus.WRAP_UP:
        update["wrap_until"] = now + wrap_up_s
        update["call_id"] = None
    elif status is AgentStatus.ON_CALL:
        update["call_id"] = call_id
        update["wrap_until"] = 0.0
    else:
        update["call_id"] = None
        update["wrap_until"] = 0.0
    return current.model_copy(update=update)


class RoutingState(ABC):
    """Where routing state lives. Every method is atomic on its own."""

    name: str

    async def start(self) -> None:  # noqa: B027 - optional hook
        pass

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @abstractmethod
    async def load(self) -> tuple[list[AgentRecord], list[CallRecord]]:
        """Every agent and every queued call (a router starts from this)."""

    @abstractmethod
    async def changes(self) -> list[AgentRecord | CallRecord]:
        """Records changed since the last call (by anyone, this router included)."""

    async def wait_for_changes(self, within_s: float) -> None:
        """Return when another router may have changed something, or after ``within_s``."""
        await asyncio.sleep(within_s)

    @abstractmethod
    async def get_agent(self, agent_id: str) -> AgentRecord | None: ...

    @abstractmethod
    async def get_call(self, call_id: str) -> CallRecord | None: ...

    @abstractmethod
    async def put_agent(
        self,
        agent_id: str,
        profile: AgentProfile | None,
        status: AgentStatus | None,
        call_id: str | None,
        now: float,
        wrap_up_s: float,
    ) -> AgentRecord: ...

    @abstractmethod
    async def add_call(self, record: CallRecord) -> CallRecord:
        """Queue a new call (Conflict if the id is already known); assigns ``seq``."""

    @abstractmethod
    async def abandon(self, call_id: str, now: float) -> CallRecord: ...

    @abstractmethod
    async def claim(
        self, call_id: str, agent_id: str, now: float, decision: dict[str, Any]
    ) -> ClaimResult: ...

    @abstractmethod
    async def update_callback(
        self, call_id: str, *, offered: bool, accepted: bool, number: str | None
    ) -> CallRecord: ...


class MemoryState(RoutingState):
    """One process: plain dicts; atomic because nothing awaits between check and change."""

    name = "memory"

    def __init__(self) -> None:
        self._agents: dict[str, AgentRecord] = {}
        self._queued: dict[str, CallRecord] = {}
        self._finished: OrderedDict[str, CallRecord] = OrderedDict()
        self._seq = 0

    async def load(self) -> tuple[list[AgentRecord], list[CallRecord]]:
        return list(self._agents.values()), list(self._queued.values())

    async def changes(self) -> list[AgentRecord | CallRecord]:
        return []  # this process made every change itself

    async def get_agent(self, agent_id: str) -> AgentRecord | None:
        return self._agents.get(agent_id)

    async def get_call(self, call_id: str) -> CallRecord | None:
        return self._queued.get(call_id) or self._finished.get(call_id)

    async def put_agent(
        self,
        agent_id: str,
        profile: AgentProfile | None,
        status: AgentStatus | None,
        call_id: str | None,
        now: float,
        wrap_up_s: float,
    ) -> AgentRecord:
        record = agent_transition(
            self._agents.get(agent_id), agent_id, profile, status, call_id, now, wrap_up_s
        )
        self._agents[agent_id] = record
        return record

    async def add_call(self, record: CallRecord) -> CallRecord:
        if record.call_id in self._queued or record.call_id in self._finished:
            raise Conflict(f"call {record.call_id} already exists", code="duplicate_call", field="call_id")
        self._seq += 1
        record = record.model_copy(update={"seq": self._seq, "version": 1})
        self._queued[record.call_id] = record
        return record

    def _finish(self, record: CallRecord) -> None:
        self._queued.pop(record.call_id, None)
        self._finished[record.call_id] = record
        while len(self._finished) > FINISHED_CALLS_KEPT:
            self._finished.popitem(last=False)

    async def abandon(self, call_id: str, now: float) -> CallRecord:
        record = self._queued.get(call_id)
        if record is None:
            finished = self._finished.get(call_id)
            if finished is None:
                raise NotFound(f"unknown call {call_id}")
            raise Conflict(f"call {call_id} is {finished.state.value}", code=f"call_{finished.state.value}")
        record = record.model_copy(
            update={"state": CallState.ABANDONED, "ended_at": now, "version": record.version + 1}
        )
        self._finish(record)
        return record

    async def claim(self, call_id: str, agent_id: str, now: float, decision: dict[str, Any]) -> ClaimResult:
        agent, call = self._agents.get(agent_id), self._queued.get(call_id)
        if agent is None or (call is None and call_id not in self._finished):
            return ClaimResult(False, "missing", agent, call)
        if call is None:
            return ClaimResult(False, "call_taken", agent, self._finished.get(call_id))
        if not agent.free_at(now):
            return ClaimResult(False, "agent_busy", agent, call)
        agent = agent.model_copy(
            update={
                "status": AgentStatus.ON_CALL,
                "call_id": call_id,
                "status_since": now,
                "wrap_until": 0.0,
                "version": agent.version + 1,
            }
        )
        call = call.model_copy(
            update={
                "state": CallState.ASSIGNED,
                "agent_id": agent_id,
                "assigned_at": now,
                "decision": decision,
                "version": call.version + 1,
            }
        )
        self._agents[agent_id] = agent
        self._finish(call)
        return ClaimResult(True, "", agent, call)

    async def update_callback(
        self, call_id: str, *, offered: bool, accepted: bool, number: str | None
    ) -> CallRecord:
        record = self._queued.get(call_id)
        if record is None:
            finished = self._finished.get(call_id)
            if finished is None:
                raise NotFound(f"unknown call {call_id}")
            raise Conflict(f"call {call_id} is {finished.state.value}", code=f"call_{finished.state.value}")
        update: dict[str, Any] = {"version": record.version + 1}
        if offered or accepted:
            update["callback_offered"] = True
        if accepted:
            update["callback"] = True
            update["callback_number"] = number
        record = record.model_copy(update=update)
        self._queued[call_id] = record
        return record
