"""Durable side of the knowledge base: one SQLite file holding the articles, a change log
(so every server process sees every other's edits) and the embedding cache.

Chunks are not stored: they are a pure function of the article (``chunk_article``).
Vectors are cached by (model, chunk content hash), so an unchanged chunk is never embedded
twice, whichever article or process asks. Blocking: call from a worker thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb_index.articles import Article

SCHEMA_VERSION = 1
KEEP_CHANGES = 100_000  # change-log rows kept; a process further behind does a full resync

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    source TEXT,
    source_hash TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY, source TEXT, source_hash TEXT);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL,
    op TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, content_hash)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class StoredArticle:
    article: Article
    content_hash: str
    source: str | None
    source_hash: str | None
    updated_at: float


def _article_from_json(data: str) -> Article:
    raw = json.loads(data)
    raw["tags"] = tuple(raw.get("tags") or ())
    return Article(**raw)


class KBStore:
    """``path=None`` keeps everything in memory (tests, one-off evaluations)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(path) if path else ":memory:", check_same_thread=False, isolation_level=None, timeout=10
        )
        self._lock = threading.Lock()
        with self._lock:
            if path is not None:
                self._conn.execute("PRAGMA journal_mode=WAL")  # readers in other processes never block
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- articles -------------------------------------------------------------------------

    def get(self, article_id: str) -> StoredArticle | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT data, content_hash, source, source_hash, updated_at FROM articles WHERE id = ?",
                (article_id,),
            ).fetchone()
        return StoredArticle(_article_from_json(row[0]), *row[1:]) if row else None

    def all(self) -> Iterator[StoredArticle]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT data, content_hash, source, source_hash, updated_at FROM articles ORDER BY id"
            ).fetchall()
        for row in rows:
            yield StoredArticle(_article_from_json(row[0]), *row[1:])

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0])

    def tombstone(self, article_id: str) -> tuple[str | None, str | None] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT source, source_hash FROM tombstones WHERE id = ?", (article_id,)
            ).fetchone()
        return (row[0], row[1]) if row else None

    def put(
        self,
        article: Article,
        *,
        source: str | None = None,
        source_hash: str | None = None,
        keep_source: bool = True,
    ) -> int:
        """Insert or replace; returns the change sequence number. ``keep_source`` leaves the
        folder baseline of an existing row alone (API edits of a folder article)."""
        data = json.dumps(article.to_dict(), ensure_ascii=False, sort_keys=True)
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                existing = self._conn.execute(
                    "SELECT source, source_hash FROM articles WHERE id = ?", (article.id,)
                ).fetchone()
                if keep_source and existing is not None and source is None:
                    source, source_hash = existing
                self._conn.execute(
                    "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?)",
                    (article.id, data, article.content_hash, source, source_hash, now),
                )
                self._conn.execute("DELETE FROM tombstones WHERE id = ?", (article.id,))
                seq = self._log(article.id, "put", now)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return seq

    def delete(self, article_id: str, *, tombstone: bool = True) -> int | None:
        """Remove an article; a folder article leaves a tombstone so a restart does not revive it
        while its file is unchanged. Returns the change sequence number, None if unknown."""
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT source, source_hash FROM articles WHERE id = ?", (article_id,)
                ).fetchone()
                if row is None:
                    self._conn.execute("ROLLBACK")
                    return None
                self._conn.execute("DELETE FROM articles WHERE id = ?", (article_id,))
                if tombstone and row[0] is not None:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO tombstones VALUES (?, ?, ?)", (article_id, *row)
                    )
                seq = self._log(article_id, "delete", now)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return seq

    def ids_from_source(self, source: str) -> set[str]:
        with self._lock:
            rows = self._conn.execute("SELECT id FROM articles WHERE source = ?", (source,)).fetchall()
        return {r[0] for r in rows}

    def clear_tombstones(self, source: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM tombstones WHERE source = ?", (source,))

    # -- change log -----------------------------------------------------------------------

    def _log(self, article_id: str, op: str, at: float) -> int:
        cursor = self._conn.execute(
            "INSERT INTO changes (article_id, op, at) VALUES (?, ?, ?)", (article_id, op, at)
        )
        seq = int(cursor.lastrowid or 0)
        if seq % 1000 == 0:
            self._conn.execute("DELETE FROM changes WHERE seq <= ?", (seq - KEEP_CHANGES,))
        return seq

    def last_seq(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])

    def changes_since(self, seq: int) -> tuple[list[str], int, bool]:
        """(article ids changed after ``seq``, newest seq, complete?). Not complete when the log
        was pruned past ``seq``: the caller must resync everything."""
        with self._lock:
            oldest = self._conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
            rows = self._conn.execute(
                "SELECT seq, article_id FROM changes WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
        if not rows:
            return [], seq, True
        complete = oldest is None or oldest <= seq + 1
        return list(dict.fromkeys(r[1] for r in rows)), int(rows[-1][0]), complete

    # -- embedding cache ------------------------------------------------------------------

    def cached_vectors(self, model: str, hashes: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), 500):
                batch = unique[start : start + 500]
                marks = ",".join("?" * len(batch))
                for content_hash, blob in self._conn.execute(
                    f"SELECT content_hash, vector FROM embeddings WHERE model = ? AND content_hash IN ({marks})",
                    (model, *batch),
                ):
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape[0] == dim:
                        found[content_hash] = vector
        return found

    def cache_vectors(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        rows = [(model, h, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for h, v in items]
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
            self._conn.execute("COMMIT")

    def cache_size(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return int(self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
            return int(
                self._conn.execute("SELECT COUNT(*) FROM embeddings WHERE model = ?", (model,)).fetchone()[0]
            )

    def prune_cache(self, model: str, keep: set[str]) -> int:
        """Drop cached vectors no current chunk uses (``kb build --prune``)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT content_hash FROM embeddings WHERE model = ?", (model,)
            ).fetchall()
            stale = [(model, r[0]) for r in rows if r[0] not in keep]
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("DELETE FROM embeddings WHERE model = ? AND content_hash = ?", stale)
            self._conn.execute("COMMIT")
        return len(stale)
