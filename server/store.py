"""Durable storage of completed calls (SQLite file by default, WAL).

``Database`` owns one SQLite connection on one dedicated thread, so every statement runs
off the event loop and in order. Packages keep their own tables next to the calls
(QA scorecards, feedback, customers) through the same ``Database``.
``CallStore`` is the seam a server database can implement later.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def call_row(record: dict[str, Any]) -> tuple[Any, ...]:
    """The ``calls`` table's columns for one call record (the store and bulk imports alike)."""
    customer = record.get("customer") or {}
    return (
        record["call_id"],
        record["agent_id"],
        customer.get("id"),
        record.get("team"),
        record["started_at"],
        record["ended_at"],
        record["duration"],
        record.get("primary_intent"),
        record.get("final_sentiment"),
        record.get("end_reason"),
        len(record.get("supervisor_alerts") or []),
        json.dumps(record, ensure_ascii=False),
        time.time(),
    )


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="callassist-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # an acknowledged 'end' survives power loss
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA foreign_keys=ON")
        self._conn = conn

    async def open(self) -> None:
        await self.run(lambda _conn: None)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work)

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._open()
        assert self._conn is not None
        result = work(self._conn)
        if isinstance(result, sqlite3.Cursor):
            # A cursor must not outlive this thread: finalised later on the event loop it
            # races the next statement ("bad parameter or other API misuse").
            result.close()
            return None  # type: ignore[return-value]
        return result

    async def close(self) -> None:
        if self._conn is not None:
            await self.run(lambda conn: conn.close())
            self._conn = None
        self._executor.shutdown(wait=True)


class CallStore(ABC):
    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def save_call(self, record: dict[str, Any]) -> bool:
        """Store a completed call; idempotent by call_id. True if newly stored."""

    @abstractmethod
    async def get_call(self, call_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def list_calls(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        agent_id: str | None = None,
        customer_id: str | None = None,
        teams: Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Summaries (no transcript), newest first; ``teams`` keeps only calls of those teams."""

    @abstractmethod
    async def mark_published(self, call_id: str) -> None:
        """The call.ended event reached the bus."""

    @abstractmethod
    async def unpublished(
        self, limit: int = 100, *, stored_before: float | None = None
    ) -> list[dict[str, Any]]:
        """Stored calls whose call.ended event has not reached the bus yet (outbox), oldest
        first; with ``stored_before`` (unix seconds) only those stored earlier."""

    @abstractmethod
    async def count(self) -> int: ...


SUMMARY_COLUMNS = (
    "call_id, agent_id, customer_id, team, started_at, ended_at, duration, primary_intent, "
    "final_sentiment, end_reason, alert_count, stored_at"
)

CALLS_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    customer_id TEXT,
    team TEXT,
    started_at REAL NOT NULL,
    ended_at REAL NOT NULL,
    duration REAL NOT NULL,
    primary_intent TEXT,
    final_sentiment REAL,
    end_reason TEXT,
    alert_count INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL,
    stored_at REAL NOT NULL,
    published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS calls_ended_at ON calls(ended_at);
CREATE INDEX IF NOT EXISTS calls_agent ON calls(agent_id, ended_at);
CREATE INDEX IF NOT EXISTS calls_customer ON calls(customer_id, ended_at);
CREATE INDEX IF NOT EXISTS calls_unpublished ON calls(published) WHERE published = 0;
"""


class SqliteCallStore(CallStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self) -> None:
        await self.db.run(lambda conn: conn.executescript(CALLS_SCHEMA))

    async def save_call(self, record: dict[str, Any]) -> bool:
        row = call_row(record)

        def insert(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO calls (call_id, agent_id, customer_id, team, started_at, ended_at, duration,"
                " primary_intent, final_sentiment, end_reason, alert_count, record, stored_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                row,
            )
            return cursor.rowcount == 1

        return await self.db.run(insert)

    async def get_call(self, call_id: str) -> dict[str, Any] | None:
        def fetch(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute("SELECT record FROM calls WHERE call_id = ?", (call_id,)).fetchone()
            return json.loads(row["record"]) if row else None

        return await self.db.run(fetch)

    async def list_calls(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        agent_id: str | None = None,
        customer_id: str | None = None,
        teams: Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        for clause, value in (
            ("ended_at >= ?", since),
            ("ended_at < ?", until),
            ("agent_id = ?", agent_id),
            ("customer_id = ?", customer_id),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if teams is not None:
            clauses.append(f"team IN ({', '.join('?' * len(teams))})" if teams else "0")
            params.extend(teams)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {SUMMARY_COLUMNS} FROM calls {where} ORDER BY ended_at DESC LIMIT ? OFFSET ?"

        def fetch(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [dict(row) for row in conn.execute(sql, (*params, limit, offset))]

        return await self.db.run(fetch)

    async def mark_published(self, call_id: str) -> None:
        await self.db.run(
            lambda conn: conn.execute("UPDATE calls SET published = 1 WHERE call_id = ?", (call_id,))
        )

    async def unpublished(
        self, limit: int = 100, *, stored_before: float | None = None
    ) -> list[dict[str, Any]]:
        before = float("inf") if stored_before is None else stored_before

        def fetch(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT record FROM calls WHERE published = 0 AND stored_at < ? ORDER BY stored_at LIMIT ?",
                (before, limit),
            ).fetchall()
            return [json.loads(row["record"]) for row in rows]

        return await self.db.run(fetch)

    async def count(self) -> int:
        return await self.db.run(lambda conn: int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]))
