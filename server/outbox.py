"""Bounded per-connection outbox with an explicit overflow policy.

Suggestions, call updates and interim text go stale, so when the queue is full the
oldest droppable message is shed. Alerts, compliance and lifecycle events are never
dropped: if the queue is full of them the connection is marked overflowed and the
endpoint closes it with 1013 (the client reconnects and gets a fresh snapshot).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BusMessage:
    text: str  # JSON, sent to the socket as is (serialised once per publish)
    droppable: bool = False


class Outbox:
    def __init__(self, maxsize: int, *, on_drop: Callable[[BusMessage], None] | None = None) -> None:
        self.maxsize = maxsize
        self._items: deque[BusMessage] = deque()
        self._ready = asyncio.Event()
        self._on_drop = on_drop
        self.overflowed = False
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, message: BusMessage) -> None:
        """Never blocks the publisher; applies the overflow policy instead."""
        if self.overflowed:
            return
        if len(self._items) >= self.maxsize and not self._shed(message):
            return
        self._items.append(message)
        self._ready.set()

    # Replies to the socket's own client frames: never filtered by a subclass's ``put``.
    put_direct = put

    def _shed(self, incoming: BusMessage) -> bool:
        """Make room; False when the incoming message itself was dropped or we overflowed."""
        for index, queued in enumerate(self._items):
            if queued.droppable:
                del self._items[index]
                self._dropped(queued)
                return True
        if incoming.droppable:
            self._dropped(incoming)
            return False
        self.overflowed = True
        self._ready.set()  # wake the writer so it closes the connection
        return False

    def _dropped(self, message: BusMessage) -> None:
        self.dropped += 1
        if self._on_drop:
            self._on_drop(message)

    async def get(self) -> BusMessage | None:
        """Next message, or None once the outbox overflowed (close the connection)."""
        while not self._items:
            if self.overflowed:
                return None
            self._ready.clear()
            await self._ready.wait()
        if self.overflowed:
            return None
        return self._items.popleft()
