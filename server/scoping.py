"""Which calls a principal may see: an agent its own, a team-scoped supervisor its teams'.

``TeamFilter`` applies the team scope to the supervisor socket's event stream: a call becomes
visible when an event shows it in one of the teams (snapshot, call_started, call_update,
call_state); events that name a call (alerts, transcript, call_ended) pass only for visible
calls; events that belong to no call are withheld (fail closed).
"""

from __future__ import annotations

import json
from typing import Any

from server.auth import Principal
from server.outbox import BusMessage, Outbox


def may_see(principal: Principal, call: dict[str, Any]) -> bool:
    if principal.role == "agent":
        return call.get("agent_id") == principal.agent_id
    if principal.teams:
        return call.get("team") in principal.teams
    return True


class TeamFilter:
    def __init__(self, teams: tuple[str, ...]) -> None:
        self.teams = frozenset(teams)
        self.visible: set[str] = set()

    def show(self, call: dict[str, Any]) -> bool:
        """Record whether this call (a summary with call_id and team) is in scope."""
        call_id = call.get("call_id")
        if call.get("team") in self.teams and isinstance(call_id, str):
            self.visible.add(call_id)
            return True
        if isinstance(call_id, str):
            self.visible.discard(call_id)
        return False

    def admit(self, text: str) -> bool:
        try:
            payload = json.loads(text)
        except ValueError:
            return False
        if not isinstance(payload, dict):
            return False
        call = payload.get("call")
        if isinstance(call, dict) and "call_id" in call:
            return self.show(call)
        if payload.get("team") is not None:  # e.g. QA scorecards carry their team
            return payload["team"] in self.teams
        call_id = payload.get("call_id")
        if isinstance(call_id, str) and call_id in self.visible:
            if payload.get("type") == "call_ended":
                self.visible.discard(call_id)
            return True
        return False


class ScopedOutbox(Outbox):
    """An outbox that takes from the bus only what ``TeamFilter`` admits."""

    def __init__(self, maxsize: int, scope: TeamFilter, **options: Any) -> None:
        super().__init__(maxsize, **options)
        self.scope = scope

    def put(self, message: BusMessage) -> None:
        if self.scope.admit(message.text):
            super().put(message)
