"""Everything the app owns, created and closed by the lifespan (no module-level state)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from server.bus import Bus
from server.metrics import Metrics
from server.registry import LiveRegistry
from server.settings import Settings
from server.store import CallStore, Database

if TYPE_CHECKING:
    from assist.config import AssistConfig
    from assist.embedding import Embedder
    from assist.engine import AssistEngine
    from server.calls import CallManager


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    bus: Bus
    db: Database
    store: CallStore
    registry: LiveRegistry
    config: AssistConfig
    embedder: Embedder | None = None
    engine: AssistEngine | None = None
    calls: CallManager | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    load_error: str | None = None
    started: float = field(default_factory=time.monotonic)
    ready_after: float | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    extensions: dict[str, Any] = field(default_factory=dict)
