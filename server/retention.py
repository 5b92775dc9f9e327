"""Retention: stored calls and the rows derived from them are deleted after ``retention_days``.

Runs once at start and then every ``retention_interval_seconds``. Tables of extensions that
are not running are skipped. Customer master data (``customers``) and the knowledge base are
not call data and are kept (docs/security.md, "What is stored where").
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)

# (table, time column): analytics_texts goes first, keyed by the analytics_calls rows it describes.
RETAINED: tuple[tuple[str, str], ...] = (
    ("calls", "ended_at"),
    ("qa_scorecards", "ended_at"),
    ("assist_feedback", "created_at"),
    ("assist_impressions", "ended_at"),
    ("alert_acks", "acked_at"),
    ("analytics_calls", "ended_at"),
    ("analytics_alerts", "raised_at"),
    ("analytics_retention_cases", "opened_at"),
)


def purge(conn: sqlite3.Connection, cutoff: float) -> dict[str, int]:
    """Delete rows older than ``cutoff`` (unix seconds); returns rows removed per table."""
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    removed: dict[str, int] = {}
    conn.execute("BEGIN IMMEDIATE")  # the connection is in autocommit mode: one transaction here
    try:
        if {"analytics_texts", "analytics_calls"} <= present:
            removed["analytics_texts"] = conn.execute(
                "DELETE FROM analytics_texts WHERE row IN (SELECT row FROM analytics_calls WHERE ended_at < ?)",
                (cutoff,),
            ).rowcount
        for table, column in RETAINED:
            if table in present:
                removed[table] = conn.execute(f"DELETE FROM {table} WHERE {column} < ?", (cutoff,)).rowcount
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return {table: count for table, count in removed.items() if count}


async def purge_once(services: Services, now: float | None = None) -> dict[str, int]:
    days = services.settings.retention_days
    if days <= 0:
        return {}
    cutoff = (time.time() if now is None else now) - days * 86400

    def run(conn: sqlite3.Connection) -> dict[str, int]:
        return purge(conn, cutoff)

    removed = await services.db.run(run)
    for table, count in removed.items():
        services.metrics.retention_purged.labels(table).inc(count)
    if removed:
        log.info("retention: removed %s (older than %.0f days)", removed, days)
    return removed


async def run_retention(services: Services) -> None:
    """The periodic purge (the lifespan runs the first one before the server answers)."""
    while True:
        await asyncio.sleep(services.settings.retention_interval_seconds)
        try:
            await purge_once(services)
        except Exception as exc:  # the next round retries
            log.warning("retention purge failed (%s); retrying", exc)
