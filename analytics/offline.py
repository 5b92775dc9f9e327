"""Analytics without a running server (CLI, benchmarks): the same steps on one connection."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analytics import store as st
from analytics.config import AnalyticsConfig
from analytics.engine import Analytics
from analytics.records import CallFacts, facts_from_record
from server.store import call_row


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection set up like the server's ``Database`` (WAL, autocommit, row objects)."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")
    st.open_schema(conn)
    return conn


def write_records(conn: sqlite3.Connection, records: Iterable[dict[str, Any]], batch: int = 2000) -> int:
    """Store call records in the core's ``calls`` table in batches (one transaction each); the
    row is the one ``server.store.SqliteCallStore.save_call`` writes, idempotent by call id."""
    from server.store import CALLS_SCHEMA

    conn.executescript(CALLS_SCHEMA)
    written = 0
    rows: list[tuple[Any, ...]] = []

    def flush() -> None:
        nonlocal written
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            cursor = conn.executemany(
                "INSERT OR IGNORE INTO calls (call_id, agent_id, customer_id, team, started_at, ended_at, duration,"
                " primary_intent, final_sentiment, end_reason, alert_count, record, stored_at, published)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                rows,
            )
            written += max(cursor.rowcount, 0)
        rows.clear()

    for record in records:
        rows.append(call_row(record))
        if len(rows) >= batch:
            flush()
    if rows:
        flush()
    return written


def facts_of(raw_records: Sequence[str], config: AnalyticsConfig) -> tuple[list[CallFacts], int]:
    """(facts, malformed count) of stored record JSON strings."""
    out, bad = [], 0
    for raw in raw_records:
        try:
            out.append(
                facts_from_record(
                    json.loads(raw),
                    cancellation_intents=config.cancellation_intents,
                    cancellation_patterns=config.cancellation_patterns,
                )
            )
        except (KeyError, TypeError, ValueError):
            bad += 1
    return out, bad


def ingest_store(conn: sqlite3.Connection, engine: Analytics, embedder: Any | None, batch: int = 512) -> int:
    """Ingest every stored call the analytics tables have not seen (cursor in analytics_state)."""
    total = 0
    while True:
        cursor = int(st.get_state(conn, "calls_cursor", 0))
        rows = conn.execute(
            "SELECT rowid, record FROM calls WHERE rowid > ? ORDER BY rowid LIMIT ?", (cursor, batch)
        ).fetchall()
        if not rows:
            return total
        facts, _ = facts_of([r[1] for r in rows], engine.config)
        vectors = embedder.encode([f.summary for f in facts]) if embedder is not None and facts else None
        total += engine.ingest(conn, facts, vectors)
        st.put_state(conn, "calls_cursor", int(rows[-1][0]))


def ingest_facts(
    conn: sqlite3.Connection, engine: Analytics, batches: Iterable[tuple[list[CallFacts], np.ndarray | None]]
) -> int:
    """Direct ingestion of facts with their vectors (synthetic histories, migrations)."""
    return sum(engine.ingest(conn, facts, vectors) for facts, vectors in batches)
