"""Archive consumer: ``call.ended`` records from the ``calls`` stream into one central store.

Each server process stores its own calls before acknowledging ``end``; a deployment with
several processes (or hosts) runs one or more archive consumers in the ``archive`` group to
gather every record in one place. Writes are idempotent by call id (INSERT OR IGNORE), so
an entry delivered twice (a consumer died before its ack, the outbox relay re-announced a
call) is stored once. Run as ``callassist worker archive --bus redis://... --store PATH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from server import keys
from server.bus import Bus, StreamEntry, create_bus
from server.store import CallStore, Database, SqliteCallStore
from server.worker import StreamWorker

log = logging.getLogger(__name__)

worker_app = typer.Typer(help="Stream consumers (run next to the servers, scale by adding more).")


class InvalidRecord(ValueError):
    """A call.ended entry without a usable record: retried, then dead-lettered."""


@dataclass
class ArchiveStats:
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0


class Archiver:
    """The handler: store each ended call once, ignore every other event."""

    def __init__(self, store: CallStore) -> None:
        self.store = store
        self.stats = ArchiveStats()

    async def __call__(self, entry: StreamEntry) -> None:
        fields = entry.fields
        if fields.get("event") != "call.ended":
            self.stats.skipped += 1
            return
        record = fields.get("record")
        if (
            not isinstance(record, dict)
            or not record.get("call_id")
            or record["call_id"] != fields.get("call_id")
        ):
            raise InvalidRecord(f"entry {entry.id}: call.ended without a matching record")
        if await self.store.save_call(record):
            self.stats.stored += 1
        else:
            self.stats.duplicates += 1
            log.info(
                "call %s already archived (delivery %d); not stored again",
                record["call_id"],
                entry.deliveries,
            )
        # The entry is on the bus by definition: a server sharing this store must not relay it again.
        await self.store.mark_published(record["call_id"])


async def run_archive(
    bus: Bus,
    store_path: Path,
    *,
    group: str = keys.ARCHIVE_GROUP,
    consumer: str,
    concurrency: int = 8,
    claim_idle_ms: int = 30_000,
    max_tries: int = 5,
    burst: bool = False,
    stop: asyncio.Event | None = None,
    grace_s: float = 10.0,
) -> tuple[ArchiveStats, Any]:
    """Consume until ``stop`` is set (or, with ``burst``, until nothing is left)."""
    db = Database(store_path)
    store = SqliteCallStore(db)
    await db.open()
    await store.open()
    archiver = Archiver(store)
    worker = StreamWorker(
        bus,
        keys.CALLS_STREAM,
        group,
        consumer,
        archiver,
        max_tries=max_tries,
        claim_idle_ms=claim_idle_ms,
        concurrency=concurrency,
    )
    try:
        running = asyncio.create_task(worker.run(burst=burst), name=f"archive-{consumer}")
        waits = {running}
        stopper = asyncio.create_task(stop.wait()) if stop is not None else None
        if stopper is not None:
            waits.add(stopper)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            await worker.stop(grace_s)  # in-flight entries finish or stay pending for another consumer
        await running
        if stopper is not None:
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
    finally:
        await db.close()
    return archiver.stats, worker.stats


@worker_app.command("archive")
def archive(
    bus: str = typer.Option(
        ..., help="Event bus, redis://host:port/db (memory:// only makes sense in tests)."
    ),
    store: Path = typer.Option(Path("var/archive.db"), help="SQLite file the records go to."),
    group: str = typer.Option(keys.ARCHIVE_GROUP, help="Consumer group; every group gets every call."),
    consumer: str = typer.Option(
        "", help="This consumer's name in the group, unique among running consumers (default host:pid)."
    ),
    concurrency: int = typer.Option(8, min=1, help="Entries handled at once."),
    claim_idle_ms: int = typer.Option(
        30_000, min=1, help="Take over entries a dead consumer left pending this long."
    ),
    max_tries: int = typer.Option(5, min=1, help="Deliveries before an entry goes to calls:dead."),
    burst: bool = typer.Option(False, help="Exit once the stream is drained (for batch jobs and tests)."),
    log_level: str = typer.Option("info"),
) -> None:
    """Store every ended call from the calls stream in one SQLite file, once per call id."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    name = consumer or f"{socket.gethostname()}:{os.getpid()}"

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        event_bus = create_bus(bus)
        await event_bus.start()
        try:
            log.info("archive consumer %s: group %s on %s -> %s", name, group, event_bus.url, store)
            stats, worker_stats = await run_archive(
                event_bus,
                store,
                group=group,
                consumer=name,
                concurrency=concurrency,
                claim_idle_ms=claim_idle_ms,
                max_tries=max_tries,
                burst=burst,
                stop=stop,
            )
        finally:
            await event_bus.close()
        log.info(
            "archive consumer %s stopped: stored=%d duplicates=%d skipped=%d claimed=%d failed=%d dead=%d",
            name,
            stats.stored,
            stats.duplicates,
            stats.skipped,
            worker_stats.claimed,
            worker_stats.failed,
            worker_stats.dead,
        )

    asyncio.run(main())
