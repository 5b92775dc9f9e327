"""Live-call registry: which calls are live, on which agent and process.

The supervisor snapshot and the agent's reconnect come from here. In memory for one
process; the Redis registry (server/redis_registry.py) makes it cluster-wide with expiry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class LiveRegistry(ABC):
    async def start(self) -> None:  # noqa: B027 - optional hook
        pass

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    async def claim(self, call_id: str) -> None:  # noqa: B027 - one process owns every call
        """Take a new call id for this process before its session starts. Raises ProtocolError
        when another live process holds the call or it already ended (cluster-wide registry)."""

    @abstractmethod
    async def upsert(self, summary: dict[str, Any], *, state: dict[str, Any] | None = None) -> None:
        """Register or refresh a live call; ``state`` is what a reconnecting agent widget needs
        (CallSession.resume_state()) for registries that serve other processes."""

    async def call_state(self, call_id: str) -> dict[str, Any] | None:
        """The last ``state`` of a call live on another process (None when unknown or local)."""
        return None

    @abstractmethod
    async def remove(self, call_id: str) -> None: ...

    @abstractmethod
    async def snapshot(self, *, agent_id: str | None = None) -> list[dict[str, Any]]: ...


class MemoryRegistry(LiveRegistry):
    def __init__(self) -> None:
        self._calls: dict[str, dict[str, Any]] = {}

    async def upsert(self, summary: dict[str, Any], *, state: dict[str, Any] | None = None) -> None:
        self._calls[summary["call_id"]] = summary

    async def remove(self, call_id: str) -> None:
        self._calls.pop(call_id, None)

    async def snapshot(self, *, agent_id: str | None = None) -> list[dict[str, Any]]:
        calls = self._calls.values()
        if agent_id is not None:
            calls = [c for c in calls if c["agent_id"] == agent_id]  # type: ignore[assignment]
        return sorted(calls, key=lambda c: c["started_at"])
