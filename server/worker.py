"""At-least-once stream consumers (QA scoring, archiving, analytics) over the bus seam.

A worker reads its consumer group, runs the handler, and acks only after the handler
succeeded, so a crash leaves the entry pending; entries left pending by a dead consumer
are claimed after ``claim_idle_ms``. Handlers must be idempotent by key (e.g. the call id):
an entry may run twice. After ``max_tries`` deliveries an entry goes to a dead-letter
stream instead of looping forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from server.bus import Bus, StreamEntry

log = logging.getLogger(__name__)

Handler = Callable[[StreamEntry], Awaitable[None]]


class Retry(Exception):  # noqa: N818 - reads as `raise Retry(...)`
    """Raise from a handler to leave the entry pending for a later try."""


@dataclass
class WorkerStats:
    done: int = 0
    failed: int = 0
    claimed: int = 0
    dead: int = 0


@dataclass
class StreamWorker:
    bus: Bus
    stream: str
    group: str
    consumer: str
    handler: Handler
    max_tries: int = 5
    claim_idle_ms: int = 30_000
    concurrency: int = 4
    read_block_ms: int = 1000
    stats: WorkerStats = field(default_factory=WorkerStats)

    def __post_init__(self) -> None:
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(self.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._working: set[str] = set()

    @property
    def dead_letter_stream(self) -> str:
        return f"{self.stream}:dead"

    async def run(self, *, burst: bool = False) -> None:
        """Consume until ``stop()``; with ``burst`` return once nothing is left to do."""
        outage = grouped = False
        while not self._stopping.is_set():
            try:
                if not grouped:  # inside the guard: the bus may be down at start
                    await self.bus.ensure_group(self.stream, self.group)
                    grouped = True
                entries = await self.bus.stream_claim(
                    self.stream,
                    self.group,
                    self.consumer,
                    min_idle_ms=self.claim_idle_ms,
                    count=self.concurrency,
                )
                # An entry we are still working on can look idle if claim_idle_ms is short.
                entries = [e for e in entries if e.id not in self._working]
                self.stats.claimed += len(entries)
                if not entries:
                    await self._slots.acquire()  # only read what we can start now
                    self._slots.release()
                    entries = await self.bus.stream_read(
                        self.stream,
                        self.group,
                        self.consumer,
                        count=self.concurrency,
                        block_ms=self.read_block_ms,
                    )
            except Exception as exc:
                if not outage:  # once per outage, without a stack trace: the bus will be back
                    log.warning("%s/%s: bus unavailable (%s); retrying", self.stream, self.group, exc)
                outage = True
                await asyncio.sleep(1.0)
                continue
            if outage:
                log.info("%s/%s: bus available again", self.stream, self.group)
                outage = False
            for entry in entries:
                await self._slots.acquire()
                if self._stopping.is_set():  # read (or waited for a slot) past stop(): leave it
                    self._slots.release()  # pending; another worker claims it
                    break
                task = asyncio.create_task(self._process(entry), name=f"{self.group}-{entry.id}")
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            if burst and not entries:
                if self._inflight:
                    await asyncio.wait(set(self._inflight))
                    continue
                if (await self.bus.stream_info(self.stream, self.group))["lag"] == 0:
                    return

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming; let in-flight entries finish within the grace period.
        Entries still running then are cancelled and stay pending for another worker."""
        self._stopping.set()
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _process(self, entry: StreamEntry) -> None:
        self._working.add(entry.id)
        try:
            if entry.deliveries > self.max_tries:
                await asyncio.shield(self._dead_letter(entry))
                return
            try:
                await self.handler(entry)
            except Retry:
                return  # stays pending; claimed again after claim_idle_ms
            except Exception:
                self.stats.failed += 1
                log.exception("%s/%s: entry %s failed (try %d of %d)", self.stream, self.group, entry.id,
                              entry.deliveries, self.max_tries)  # fmt: skip
                return
            # Finish bookkeeping even if we are being cancelled right now.
            await asyncio.shield(self.bus.stream_ack(self.stream, self.group, [entry.id]))
            self.stats.done += 1
        finally:
            self._working.discard(entry.id)
            self._slots.release()

    async def _dead_letter(self, entry: StreamEntry) -> None:
        with contextlib.suppress(Exception):
            await self.bus.stream_add(
                self.dead_letter_stream, {"group": self.group, "entry_id": entry.id, "fields": entry.fields}
            )
        await self.bus.stream_ack(self.stream, self.group, [entry.id])
        self.stats.dead += 1
        log.error(
            "%s/%s: entry %s dead-lettered after %d tries",
            self.stream,
            self.group,
            entry.id,
            entry.deliveries,
        )
