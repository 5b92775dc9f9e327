"""Routing as a server extension: routes under /v1/routing, the live router, metrics, and a
consumer of the ``calls`` stream (a call that ends puts its agent into timed wrap-up).

State: in memory with a ``memory://`` bus; in Redis (atomic claims, shared by every server
process) with a ``redis://`` bus. Other extensions use ``services.extensions["routing"].router``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.routing import BaseRoute

from routing import api
from routing.config import RoutingConfig
from routing.metrics import RoutingMetrics
from routing.router import Router
from routing.state import MemoryState, RoutingState

if TYPE_CHECKING:
    from server.bus import StreamEntry
    from server.services import Services
    from server.worker import StreamWorker

log = logging.getLogger(__name__)


class RoutingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLASSIST_ROUTING_", env_file=".env", extra="ignore")

    config: Path | None = Field(
        default=None, description="Routing YAML; the defaults (the seed's) when unset."
    )
    state_url: str | None = Field(
        default=None, description="memory:// or redis://...; defaults to the server's bus URL."
    )


def create_state(url: str) -> RoutingState:
    if url.startswith("memory://"):
        return MemoryState()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from routing.redis_state import RedisState

        return RedisState(url)
    raise ValueError(f"unsupported routing state URL {url!r}: use memory:// or redis://host:port/db")


class RoutingExtension:
    name = "routing"

    def __init__(self, config: RoutingConfig | None = None, settings: RoutingSettings | None = None) -> None:
        self.settings = settings or RoutingSettings()
        self._config = config
        self.router: Router | None = None
        self.services: Services | None = None
        self._worker: StreamWorker | None = None
        self._worker_task: asyncio.Task[None] | None = None

    def routes(self) -> list[BaseRoute]:
        return api.routes()

    async def start(self, services: Services) -> None:
        from server import keys
        from server.worker import StreamWorker

        self.services = services
        config = self._config or RoutingConfig.load(self.settings.config)
        url = self.settings.state_url or services.settings.bus_url
        metrics = RoutingMetrics(services.metrics.registry)
        self.router = Router(
            create_state(url), config, publish=services.bus.publish, observe_decision=metrics.observe_decision
        )
        metrics.attach(self.router)
        await self.router.start()
        self._worker = StreamWorker(
            services.bus,
            keys.CALLS_STREAM,
            group="routing",
            consumer=services.settings.process_name,
            handler=self._on_call_event,
        )
        self._worker_task = asyncio.create_task(self._worker.run(), name="routing-calls-stream")
        log.info("routing started (%s state)", self.router.state.name)

    async def stop(self) -> None:
        if self._worker is not None and self._worker_task is not None:
            await self._worker.stop(grace_s=2.0)
            self._worker_task.cancel()
            await asyncio.gather(self._worker_task, return_exceptions=True)
        if self.router is not None:
            await self.router.stop()

    async def _on_call_event(self, entry: StreamEntry) -> None:
        """call.ended -> the agent's timed wrap-up starts (idempotent: only if still on that call)."""
        fields: dict[str, Any] = entry.fields
        if fields.get("event") == "call.ended" and fields.get("agent_id") and self.router is not None:
            await self.router.call_ended(str(fields["agent_id"]), str(fields["call_id"]))

    # Shortcuts so other extensions can write services.extensions["routing"].route_call(...)
    async def route_call(self, data: dict[str, Any], *, callback_number: str | None = None) -> dict[str, Any]:
        assert self.router is not None, "routing has not started"
        return await self.router.route_call(data, callback_number=callback_number)

    async def put_agent(self, agent_id: str, data: dict[str, Any]) -> dict[str, Any]:
        assert self.router is not None, "routing has not started"
        return await self.router.put_agent(agent_id, data)
