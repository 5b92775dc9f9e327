"""Analytics tables in the server's SQLite ``Database`` (all ``analytics_*`` plus ``customers``).

The facts table is narrow and numeric so a 90-day window of 1.35 M calls loads in seconds:
names (customers, agents, categories, resolutions, teams) are dictionary-encoded in
``analytics_names``; each call's summary and its embedding (int8, one scale per vector) live
beside it in ``analytics_texts`` and are read only when clustering needs them.

Every function here takes the ``sqlite3.Connection`` and runs on the database thread
(``await db.run(lambda conn: ...)``) or, in the CLI and benchmarks, on a private connection.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.records import CallFacts

SCHEMA = """
CREATE TABLE IF NOT EXISTS analytics_names (
    key INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (kind, name)
);
CREATE TABLE IF NOT EXISTS analytics_calls (
    row INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL UNIQUE,
    customer INTEGER NOT NULL DEFAULT -1,
    agent INTEGER NOT NULL,
    team INTEGER NOT NULL DEFAULT -1,
    started_at REAL NOT NULL,
    ended_at REAL NOT NULL,
    duration REAL NOT NULL,
    category INTEGER NOT NULL DEFAULT -1,
    resolution INTEGER NOT NULL DEFAULT -1,
    cluster INTEGER NOT NULL DEFAULT -1,
    sentiment REAL,
    sentiment_mean REAL,
    cancellation INTEGER NOT NULL DEFAULT 0,
    wait_s REAL,
    clv REAL,
    ingested_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS analytics_calls_ended ON analytics_calls(ended_at);
CREATE INDEX IF NOT EXISTS analytics_calls_customer ON analytics_calls(customer, ended_at);
CREATE TABLE IF NOT EXISTS analytics_texts (
    row INTEGER PRIMARY KEY,
    summary TEXT NOT NULL,
    vector BLOB,
    scale REAL
);
CREATE TABLE IF NOT EXISTS analytics_clusters (
    cluster_id INTEGER PRIMARY KEY,
    method TEXT NOT NULL,
    centroid BLOB NOT NULL,
    label TEXT NOT NULL,
    terms TEXT NOT NULL,
    samples TEXT NOT NULL,
    fitted_size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS analytics_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS analytics_alerts (
    alert_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    cluster_id INTEGER,
    day TEXT NOT NULL,
    raised_at REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS analytics_retention_cases (
    case_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    opened_at REAL NOT NULL,
    score REAL NOT NULL,
    clv REAL NOT NULL,
    status TEXT NOT NULL,
    factors TEXT NOT NULL,
    routing_call_id TEXT,
    agent_id TEXT,
    routed_at REAL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS analytics_cases_customer ON analytics_retention_cases(customer_id, opened_at);
CREATE INDEX IF NOT EXISTS analytics_cases_status ON analytics_retention_cases(status, opened_at);
CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    name TEXT,
    tier TEXT,
    clv REAL,
    renewal_date TEXT,
    product TEXT,
    language TEXT,
    phone TEXT,
    extra TEXT,
    updated_at REAL NOT NULL
);
"""

NAME_KINDS = ("customer", "agent", "team", "category", "resolution")
MISSING = -1
# Columns of the frame, in the order ``load_frame`` reads them.
FRAME_COLUMNS = (
    "row",
    "ended_at",
    "duration",
    "customer",
    "agent",
    "category",
    "resolution",
    "cluster",
    "sentiment",
    "cancellation",
    "wait_s",
    "clv",
)
NAN_SENTINEL = -1e300


def open_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


# ---------------------------------------------------------------------------------------- vectors


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes and one scale per vector (cosine to the float vector stays above 0.999)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(vectors).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / scale[:, None]), -127, 127).astype(np.int8)
    return codes, scale


def dequantize(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    vectors = codes.astype(np.float32) * scale[:, None].astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


# ------------------------------------------------------------------------------------------ names


NAME_CACHE_SIZE = 200_000


class Names:
    """Dictionary encoding of names (per kind). Only ever used on one thread at a time.

    The table is the truth; this is a cache of it. Customer ids grow with every new caller,
    so the cache starts over once it holds ``capacity`` names instead of growing for ever."""

    def __init__(self, capacity: int = NAME_CACHE_SIZE) -> None:
        self.capacity = capacity
        self._keys: dict[tuple[str, str], int] = {}
        self._names: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def _bound(self) -> None:
        # Before a lookup, never during one: a call's own names stay cached until it returns.
        if len(self._keys) > self.capacity or len(self._names) > self.capacity:
            self._keys.clear()
            self._names.clear()

    def keys(self, conn: sqlite3.Connection, kind: str, names: Iterable[str | None]) -> list[int]:
        self._bound()
        wanted = [None if n is None or n == "" else str(n) for n in names]
        missing = sorted({n for n in wanted if n is not None and (kind, n) not in self._keys})
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            conn.executemany(
                "INSERT OR IGNORE INTO analytics_names (kind, name) VALUES (?, ?)", [(kind, n) for n in chunk]
            )
            marks = ",".join("?" * len(chunk))
            for key, name in conn.execute(
                f"SELECT key, name FROM analytics_names WHERE kind = ? AND name IN ({marks})", (kind, *chunk)
            ):
                self._keys[(kind, name)] = int(key)
                self._names[int(key)] = name
        return [MISSING if n is None else self._keys[(kind, n)] for n in wanted]

    def lookup(self, conn: sqlite3.Connection, keys: Iterable[int]) -> dict[int, str]:
        self._bound()
        wanted = sorted({int(k) for k in keys if int(k) >= 0})
        missing = [k for k in wanted if k not in self._names]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, kind, name in conn.execute(
                f"SELECT key, kind, name FROM analytics_names WHERE key IN ({marks})", chunk
            ):
                self._names[int(key)] = name
                self._keys[(kind, name)] = int(key)
        return {k: self._names[k] for k in wanted if k in self._names}

    def key_of(self, conn: sqlite3.Connection, kind: str, name: str) -> int | None:
        self._bound()
        if (kind, name) in self._keys:
            return self._keys[(kind, name)]
        row = conn.execute(
            "SELECT key FROM analytics_names WHERE kind = ? AND name = ?", (kind, name)
        ).fetchone()
        if row is None:
            return None
        self._keys[(kind, name)] = int(row[0])
        self._names[int(row[0])] = name
        return int(row[0])


# ---------------------------------------------------------------------------------------- writing


def insert_calls(
    conn: sqlite3.Connection,
    names: Names,
    facts: Sequence[CallFacts],
    vectors: np.ndarray | None = None,
    clusters: Sequence[int] | None = None,
) -> int:
    """Store calls (idempotent by call_id) with their summaries and embeddings. Returns how many
    were new. One transaction: a crash stores all of the batch or none of it."""
    if not facts:
        return 0
    now = time.time()
    codes, scales = quantize(vectors) if vectors is not None and len(vectors) else (None, None)
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        ids = [f.call_id for f in facts]
        present: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            present.update(
                r[0]
                for r in conn.execute(
                    f"SELECT call_id FROM analytics_calls WHERE call_id IN ({marks})", chunk
                )
            )
        fresh: list[int] = []
        for i, f in enumerate(facts):
            if f.call_id not in present:
                present.add(f.call_id)  # a batch may repeat a call id: keep the first
                fresh.append(i)
        if not fresh:
            return 0
        chosen = [facts[i] for i in fresh]
        customers = names.keys(conn, "customer", (f.customer_id for f in chosen))
        agents = names.keys(conn, "agent", (f.agent_id for f in chosen))
        teams = names.keys(conn, "team", (f.team for f in chosen))
        categories = names.keys(conn, "category", (f.category for f in chosen))
        resolutions = names.keys(conn, "resolution", (f.resolution for f in chosen))
        first = int(conn.execute("SELECT COALESCE(MAX(row), 0) FROM analytics_calls").fetchone()[0]) + 1
        rows = []
        texts = []
        for n, (index, f) in enumerate(zip(fresh, chosen, strict=True)):
            row = first + n
            rows.append(
                (
                    row,
                    f.call_id,
                    customers[n],
                    agents[n],
                    teams[n],
                    f.started_at,
                    f.ended_at,
                    f.duration,
                    categories[n],
                    resolutions[n],
                    MISSING if clusters is None else int(clusters[index]),
                    f.sentiment,
                    f.sentiment_mean,
                    int(f.cancellation),
                    f.wait_s,
                    f.clv,
                    now,
                )
            )
            if codes is not None and scales is not None:
                texts.append((row, f.summary, codes[index].tobytes(), float(scales[index])))
            else:
                texts.append((row, f.summary, None, None))
        conn.executemany(
            "INSERT INTO analytics_calls (row, call_id, customer, agent, team, started_at, ended_at, duration,"
            " category, resolution, cluster, sentiment, sentiment_mean, cancellation, wait_s, clv, ingested_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        conn.executemany("INSERT INTO analytics_texts (row, summary, vector, scale) VALUES (?,?,?,?)", texts)
    return len(rows)


def set_clusters(
    conn: sqlite3.Connection, rows: np.ndarray, clusters: np.ndarray, chunk: int = 20_000
) -> None:
    """Store reassigned clusters in short transactions: other writers (the core saving ended
    calls) wait for one chunk at most, never for the whole reassignment."""
    for start in range(0, rows.size, chunk):
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "UPDATE analytics_calls SET cluster = ? WHERE row = ?",
                zip(
                    clusters[start : start + chunk].astype(int).tolist(),
                    rows[start : start + chunk].astype(int).tolist(),
                    strict=True,
                ),
            )


# ---------------------------------------------------------------------------------------- reading


@dataclass
class Frame:
    """Calls of a window as columns (numpy), in ``ended_at`` order."""

    row: np.ndarray
    ended_at: np.ndarray
    duration: np.ndarray
    customer: np.ndarray
    agent: np.ndarray
    category: np.ndarray
    resolution: np.ndarray
    cluster: np.ndarray
    sentiment: np.ndarray
    cancellation: np.ndarray
    wait_s: np.ndarray
    clv: np.ndarray

    def __len__(self) -> int:
        return int(self.row.size)

    def take(self, mask: np.ndarray) -> Frame:
        return Frame(**{c: getattr(self, c)[mask] for c in FRAME_COLUMNS})

    @classmethod
    def empty(cls) -> Frame:
        return from_matrix(np.zeros((0, len(FRAME_COLUMNS))))


def from_matrix(m: np.ndarray) -> Frame:
    def col(name: str) -> np.ndarray:
        return m[:, FRAME_COLUMNS.index(name)]

    def nan(values: np.ndarray) -> np.ndarray:
        return np.where(values <= NAN_SENTINEL / 2, np.nan, values).astype(np.float32)

    return Frame(
        row=col("row").astype(np.int64),
        ended_at=col("ended_at").astype(np.float64),
        duration=col("duration").astype(np.float32),
        customer=col("customer").astype(np.int64),
        agent=col("agent").astype(np.int64),
        category=col("category").astype(np.int64),
        resolution=col("resolution").astype(np.int64),
        cluster=col("cluster").astype(np.int64),
        sentiment=nan(col("sentiment")),
        cancellation=col("cancellation").astype(bool),
        wait_s=nan(col("wait_s")),
        clv=nan(col("clv")),
    )


def load_frame(conn: sqlite3.Connection, since: float, until: float) -> Frame:
    """Every call that ended in [since, until), oldest first."""
    sentinel = repr(NAN_SENTINEL)
    sql = (
        "SELECT row, ended_at, duration, customer, agent, category, resolution, cluster,"
        f" COALESCE(sentiment_mean, sentiment, {sentinel}), cancellation, COALESCE(wait_s, {sentinel}),"
        f" COALESCE(clv, {sentinel})"
        " FROM analytics_calls WHERE ended_at >= ? AND ended_at < ? ORDER BY ended_at"
    )
    count = int(
        conn.execute(
            "SELECT COUNT(*) FROM analytics_calls WHERE ended_at >= ? AND ended_at < ?", (since, until)
        ).fetchone()[0]
    )
    if count == 0:
        return Frame.empty()
    cursor = conn.execute(sql, (since, until))
    flat = np.fromiter(
        (value for row in cursor for value in row), dtype=np.float64, count=count * len(FRAME_COLUMNS)
    )
    return from_matrix(flat.reshape(count, len(FRAME_COLUMNS)))


def _rows_query(
    conn: sqlite3.Connection, columns: str, extra: str, part: np.ndarray
) -> Iterator[tuple[Any, ...]]:
    """Rows ``part`` (sorted) of analytics_texts: one range scan when they are dense, else
    IN-lists, so a sample spread over the whole table never reads the whole table."""
    lo, hi = int(part[0]), int(part[-1])
    if part.size >= 0.5 * (hi - lo + 1):
        yield from conn.execute(
            f"SELECT {columns} FROM analytics_texts WHERE row >= ? AND row <= ?{extra}", (lo, hi)
        )
        return
    for start in range(0, part.size, 900):
        chunk = part[start : start + 900].tolist()
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(f"SELECT {columns} FROM analytics_texts WHERE row IN ({marks}){extra}", chunk)


def iter_vectors(
    conn: sqlite3.Connection, rows: np.ndarray, dim: int, chunk: int = 20_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(positions into ``rows``, float32 unit vectors) for the given rows, in chunks; rows
    without a stored vector are skipped."""
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    for start in range(0, ordered.size, chunk):
        part = ordered[start : start + chunk]
        found_rows: list[int] = []
        blobs: list[bytes] = []
        scales: list[float] = []
        for row, blob, scale in _rows_query(conn, "row, vector, scale", " AND vector IS NOT NULL", part):
            found_rows.append(row)
            blobs.append(blob)
            scales.append(scale)
        if not found_rows:
            continue
        found = np.asarray(found_rows, dtype=np.int64)
        at = np.searchsorted(part, found)
        ok = (at < part.size) & (part[np.minimum(at, part.size - 1)] == found)
        if not ok.any():
            continue
        codes = np.frombuffer(b"".join(b for b, good in zip(blobs, ok, strict=True) if good), dtype=np.int8)
        vectors = dequantize(codes.reshape(-1, dim), np.asarray(scales, dtype=np.float32)[ok])
        yield order[start + at[ok]], vectors


def vectors_for(conn: sqlite3.Connection, rows: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions into ``rows`` that have vectors, their vectors)."""
    positions, parts = [], []
    for pos, vectors in iter_vectors(conn, rows, dim):
        positions.append(pos)
        parts.append(vectors)
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(positions), np.concatenate(parts)


def summaries_for(conn: sqlite3.Connection, rows: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    wanted = [int(r) for r in rows]
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out.update(
            (int(r), s)
            for r, s in conn.execute(
                f"SELECT row, summary FROM analytics_texts WHERE row IN ({marks})", chunk
            )
        )
    return out


def call_ids_for(conn: sqlite3.Connection, rows: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    wanted = [int(r) for r in rows]
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out.update(
            (int(r), c)
            for r, c in conn.execute(
                f"SELECT row, call_id FROM analytics_calls WHERE row IN ({marks})", chunk
            )
        )
    return out


def vector_dim(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT vector FROM analytics_texts WHERE vector IS NOT NULL LIMIT 1").fetchone()
    return len(row[0]) if row else None


# ------------------------------------------------------------------------------------------ state


def get_state(conn: sqlite3.Connection, key: str, default: Any = None) -> Any:
    row = conn.execute("SELECT value FROM analytics_state WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else default


def put_state(conn: sqlite3.Connection, key: str, value: Any) -> None:
    conn.execute(
        "INSERT INTO analytics_state (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(value)),
    )


def count_calls(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM analytics_calls").fetchone()[0])


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        is not None
    )


def iter_summaries(
    conn: sqlite3.Connection, rows: np.ndarray, chunk: int = 50_000
) -> Iterator[tuple[np.ndarray, list[str]]]:
    """(positions into ``rows``, summaries) in chunks, like ``iter_vectors``."""
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    for start in range(0, ordered.size, chunk):
        part = ordered[start : start + chunk]
        found: list[int] = []
        texts: list[str] = []
        for row, summary in _rows_query(conn, "row, summary", "", part):
            found.append(row)
            texts.append(summary)
        if not found:
            continue
        f = np.asarray(found, dtype=np.int64)
        at = np.searchsorted(part, f)
        ok = (at < part.size) & (part[np.minimum(at, part.size - 1)] == f)
        yield order[start + at[ok]], [t for t, good in zip(texts, ok, strict=True) if good]
