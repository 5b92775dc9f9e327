"""Retention: stored calls and every row derived from them go after ``retention_days``."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from server.retention import RETAINED, purge
from server.store import Database, SqliteCallStore
from tests.helpers import MS

DAY = 86400.0


def _record(call_id: str, ended_at: float) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "agent_id": "agent-r",
        "started_at": ended_at - 60,
        "ended_at": ended_at,
        "duration": 60.0,
        "utterances": [],
    }


def _insert(conn: sqlite3.Connection, table: str, values: dict[str, Any]) -> None:
    """A row with every NOT NULL column filled with a dummy of its type, then ``values``."""
    row: dict[str, Any] = {}
    for _, name, kind, notnull, default, pk in conn.execute(f"PRAGMA table_info({table})"):
        if (notnull or pk) and default is None:
            row[name] = 0 if kind.upper() in ("INTEGER", "REAL") else f"{table}-{name}-{time.monotonic_ns()}"
    row.update(values)
    conn.execute(
        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )


def test_purge_removes_old_rows_of_every_call_table() -> None:
    from analytics.store import SCHEMA as ANALYTICS
    from qa.store import QA_SCHEMA
    from server.alert_feed import SCHEMA as ALERTS
    from server.feedback import SCHEMA as FEEDBACK
    from server.store import CALLS_SCHEMA

    conn = sqlite3.connect(":memory:", isolation_level=None)
    for schema in (CALLS_SCHEMA, QA_SCHEMA, ANALYTICS, ALERTS, FEEDBACK):
        conn.executescript(schema)
    now = time.time()
    for table, column in RETAINED:
        for age_days, tag in ((100, "old"), (1, "new")):
            extra: dict[str, Any] = {"row": 1 if tag == "old" else 2} if table == "analytics_calls" else {}
            if table == "assist_feedback":
                extra["target"] = "suggestion"
            _insert(conn, table, {column: now - age_days * DAY, **extra})
    _insert(conn, "analytics_texts", {"row": 1, "summary": "old"})
    _insert(conn, "analytics_texts", {"row": 2, "summary": "new"})
    _insert(conn, "customers", {"updated_at": now - 400 * DAY})  # master data, not call data

    removed = purge(conn, now - 90 * DAY)
    assert removed == {table: 1 for table, _ in RETAINED} | {"analytics_texts": 1}
    for table, _ in (*RETAINED, ("analytics_texts", None)):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 1, table
    assert conn.execute("SELECT summary FROM analytics_texts").fetchone()[0] == "new"
    assert conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 1


async def test_server_purges_old_calls_at_start(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A store with a 100-day-old and a 1-day-old call: with retention_days=30 the server
    deletes the old one at start and keeps the recent one; the purge is counted in /metrics."""
    path = tmp_path / "retained.db"
    db = Database(path)
    store = SqliteCallStore(db)
    await store.open()
    now = time.time()
    await store.save_call(_record("old-call", now - 100 * DAY))
    await store.save_call(_record("recent-call", now - DAY))
    await db.close()

    server = server_factory(store_path=path, retention_days=30)
    async with httpx.AsyncClient(base_url=server.http) as client:
        for _ in range(100):
            if (await client.get("/v1/calls/old-call")).status_code == 404:
                break
            await asyncio.sleep(100 * MS)
        assert (await client.get("/v1/calls/old-call")).status_code == 404
        assert (await client.get("/v1/calls/recent-call")).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert 'callassist_retention_purged_total{table="calls"} 1.0' in metrics


async def test_retention_zero_keeps_everything(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "kept.db"
    db = Database(path)
    store = SqliteCallStore(db)
    await store.open()
    await store.save_call(_record("ancient-call", time.time() - 3650 * DAY))
    await db.close()
    server = server_factory(store_path=path, retention_days=0)
    await asyncio.sleep(1500 * MS)  # past the first purge round
    async with httpx.AsyncClient(base_url=server.http) as client:
        assert (await client.get("/v1/calls/ancient-call")).status_code == 200
