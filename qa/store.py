"""QA tables in the server's SQLite ``Database``: scorecards (one per call, idempotent by
call id) and calibration offsets per agent."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from qa.scorecard import Scorecard
from server.store import Database

GLOBAL_AGENT = "*"  # the offset for agents without enough calibrated calls of their own

QA_SCHEMA = """
CREATE TABLE IF NOT EXISTS qa_scorecards (
    call_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    team TEXT,
    primary_intent TEXT,
    ended_at REAL,
    scored_at REAL NOT NULL,
    scorer TEXT NOT NULL,
    overall_score REAL NOT NULL,
    raw_overall_score REAL NOT NULL,
    card TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS qa_scorecards_agent ON qa_scorecards(agent_id, ended_at);
CREATE INDEX IF NOT EXISTS qa_scorecards_team ON qa_scorecards(team, ended_at);
CREATE INDEX IF NOT EXISTS qa_scorecards_ended ON qa_scorecards(ended_at);
CREATE TABLE IF NOT EXISTS qa_calibration (
    agent_id TEXT PRIMARY KEY,
    offset REAL NOT NULL,
    std REAL,
    sample_size INTEGER NOT NULL,
    pearson REAL,
    updated_at REAL NOT NULL
);
"""

SUMMARY_COLUMNS = (
    "call_id, agent_id, team, primary_intent, ended_at, scored_at, scorer, overall_score, raw_overall_score"
)


class QAStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self) -> None:
        await self.db.run(lambda conn: conn.executescript(QA_SCHEMA))

    async def save(self, card: Scorecard) -> bool:
        """Store a scorecard; True if new. A second scorecard for a call is never created."""
        row = (
            card.call_id,
            card.agent_id,
            card.team,
            card.primary_intent,
            card.ended_at,
            card.scored_at,
            card.scorer,
            card.overall_score,
            card.raw_overall_score,
            card.model_dump_json(),
        )

        def insert(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                f"INSERT OR IGNORE INTO qa_scorecards ({SUMMARY_COLUMNS}, card) VALUES (?,?,?,?,?,?,?,?,?,?)",
                row,
            )
            return cursor.rowcount == 1

        return await self.db.run(insert)

    async def has(self, call_id: str) -> bool:
        def fetch(conn: sqlite3.Connection) -> bool:
            return (
                conn.execute("SELECT 1 FROM qa_scorecards WHERE call_id = ?", (call_id,)).fetchone()
                is not None
            )

        return await self.db.run(fetch)

    async def get(self, call_id: str) -> Scorecard | None:
        def fetch(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT card FROM qa_scorecards WHERE call_id = ?", (call_id,)).fetchone()
            return row["card"] if row else None

        raw = await self.db.run(fetch)
        return Scorecard.model_validate_json(raw) if raw else None

    async def get_many(self, call_ids: list[str]) -> dict[str, Scorecard]:
        def fetch(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            out = []
            for start in range(0, len(call_ids), 500):
                chunk = call_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                out += conn.execute(
                    f"SELECT call_id, card FROM qa_scorecards WHERE call_id IN ({marks})", chunk
                ).fetchall()
            return [(r["call_id"], r["card"]) for r in out]

        return {call_id: Scorecard.model_validate_json(card) for call_id, card in await self.db.run(fetch)}

    async def list(
        self,
        *,
        agent_id: str | None = None,
        team: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        offset: int = 0,
        full: bool = False,
    ) -> list[dict[str, Any]]:
        """Newest first. Summaries, or whole scorecards with ``full``."""
        clauses, params = [], []
        for clause, value in (
            ("agent_id = ?", agent_id),
            ("team = ?", team),
            ("ended_at >= ?", since),
            ("ended_at < ?", until),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        columns = "card" if full else SUMMARY_COLUMNS
        sql = f"SELECT {columns} FROM qa_scorecards {where} ORDER BY ended_at DESC LIMIT ? OFFSET ?"

        def fetch(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(sql, (*params, limit, offset)).fetchall()
            return [json.loads(r["card"]) for r in rows] if full else [dict(r) for r in rows]

        return await self.db.run(fetch)

    async def scores(
        self, *, since: float | None = None, until: float | None = None
    ) -> list[tuple[str, str | None, float]]:
        """(agent_id, team, overall_score) of every scorecard in the period."""
        clauses, params = [], []
        for clause, value in (("ended_at >= ?", since), ("ended_at < ?", until)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""

        def fetch(conn: sqlite3.Connection) -> list[tuple[str, str | None, float]]:
            sql = f"SELECT agent_id, team, overall_score FROM qa_scorecards {where}"
            return [(r[0], r[1], float(r[2])) for r in conn.execute(sql, params)]

        return await self.db.run(fetch)

    async def unscored(self, *, since: float | None = None, limit: int = 500) -> list[str]:
        """Stored calls (oldest first) that have no scorecard: what a restart may have left."""

        def fetch(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT c.call_id FROM calls c LEFT JOIN qa_scorecards q ON q.call_id = c.call_id"
                " WHERE q.call_id IS NULL AND c.ended_at >= ? ORDER BY c.ended_at LIMIT ?",
                (since if since is not None else 0.0, limit),
            ).fetchall()
            return [r[0] for r in rows]

        return await self.db.run(fetch)

    async def count(self) -> int:
        return await self.db.run(
            lambda conn: int(conn.execute("SELECT COUNT(*) FROM qa_scorecards").fetchone()[0])
        )

    # ------------------------------------------------------------------ calibration offsets

    async def save_offsets(self, offsets: dict[str, dict[str, Any]]) -> None:
        """Replace the calibration offsets (agent id -> offset, std, sample_size, pearson)."""
        now = time.time()
        rows = [
            (agent, o["offset"], o.get("std"), o["sample_size"], o.get("pearson"), now)
            for agent, o in offsets.items()
        ]

        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN")
                conn.execute("DELETE FROM qa_calibration")
                conn.executemany(
                    "INSERT INTO qa_calibration (agent_id, offset, std, sample_size, pearson, updated_at)"
                    " VALUES (?,?,?,?,?,?)",
                    rows,
                )

        await self.db.run(write)

    async def offsets(self) -> dict[str, dict[str, Any]]:
        def fetch(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            rows = conn.execute("SELECT * FROM qa_calibration").fetchall()
            out = {}
            for row in rows:
                values = dict(row)
                out[values.pop("agent_id")] = values
            return out

        return await self.db.run(fetch)

    async def offset_for(self, agent_id: str) -> float:
        """The agent's own offset, else the global one, else 0."""

        def fetch(conn: sqlite3.Connection) -> float:
            row = conn.execute(
                "SELECT offset FROM qa_calibration WHERE agent_id IN (?, ?)"
                " ORDER BY agent_id = ? DESC LIMIT 1",
                (agent_id, GLOBAL_AGENT, agent_id),
            ).fetchone()
            return float(row["offset"]) if row else 0.0

        return await self.db.run(fetch)
