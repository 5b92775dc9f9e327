"""The live knowledge base: durable store + in-memory FAISS and BM25 indexes, searched
hybrid (dense + lexical, reciprocal rank fusion), one hit per article.

Concurrency contract: the object that ``AssistEngine.knowledge`` refers to stays the same
for its whole life; updates change it in place. Writers are serialised; the expensive part
of an update (chunking, embedding, tokenizing, rebuilding BM25) runs outside the search
lock, and only the FAISS add/remove and a few reference swaps run under it, so a search
running during an update sees either the old or the new article, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kb_index.articles import Article
from kb_index.chunking import Chunk, chunk_article
from kb_index.lexical import LexicalIndex, Tokenizer
from kb_index.store import KBStore, StoredArticle
from kb_index.vectors import IndexSpec, VectorIndex

log = logging.getLogger(__name__)

EmbedFn = Callable[[Sequence[str]], np.ndarray]
Progress = Callable[[int, int], None]  # (done, total) chunks embedded
SearchMode = Literal["hybrid", "dense", "lexical"]

SNIPPET_CHARS = 240
EMBED_BATCH = 256
STORE_FILE = "kb.sqlite"
SNAPSHOT_FILE = "vectors.npz"
FINGERPRINT_TEXT = "callassist embedding fingerprint: my bill is higher than usual"


@dataclass(frozen=True, slots=True)
class ArticleHit:
    id: str
    title: str
    snippet: str
    score: float  # cosine of the best chunk: comparable across queries, what min_score applies to
    url: str | None = None
    anchor: str | None = None
    chunk_id: str | None = None
    lexical_score: float = 0.0
    fused: float = 0.0  # reciprocal-rank-fusion score the hits are ordered by

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "snippet": self.snippet,
            "score": round(self.score, 4),
            "url": self.url,
            "anchor": self.anchor,
        }

    def to_api_dict(self) -> dict[str, object]:
        return {
            **self.to_dict(),
            "chunk_id": self.chunk_id,
            "lexical_score": round(self.lexical_score, 4),
            "fused": round(self.fused, 6),
        }


@dataclass(frozen=True, slots=True)
class Filters:
    """Every given field must match; ``tags``: the article carries all of them."""

    product: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.product or self.language or self.tags)

    def matches(self, article: Article) -> bool:
        return (
            (not self.product or article.product == self.product.lower())
            and (not self.language or article.language == self.language.lower())
            and {t.lower() for t in self.tags} <= set(article.tags)
        )


@dataclass(frozen=True, slots=True)
class RetrievalSettings:
    mode: SearchMode = "hybrid"
    rrf_k: int = 60  # the constant of Cormack et al.; ranks past ~20 barely count
    depth: int = 40  # chunks taken from each retriever before fusion
    min_lexical_score: float = 6.0  # BM25 score that lets a hit through below min_score
    # Short spoken phrasings match short chit-chat ("hello") more easily than article text
    # does, so a hit found only through a customer phrasing needs this much more cosine.
    question_margin: float = 0.15


@dataclass
class ChangeReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_cached: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
            "chunks_embedded": self.chunks_embedded,
            "chunks_cached": self.chunks_cached,
            "seconds": round(self.seconds, 3),
        }


def snippet_of(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > limit // 2 else limit] + "…"


def model_key(name: str, embed: EmbedFn) -> str:
    """Identity of the embedding model for the cache: name, dimension and a vector fingerprint,
    so pointing the server at another model never reuses the old model's vectors."""
    probe = embed([FINGERPRINT_TEXT])[0]
    digest = hashlib.sha256(np.round(probe, 3).astype(np.float32).tobytes()).hexdigest()[:12]
    return f"{name}/{probe.shape[0]}/{digest}"


@dataclass(frozen=True, slots=True)
class CachedEmbedder:
    """The Embedder seam over the knowledge base's embedding cache."""

    name: str
    dim: int
    encode: EmbedFn


def source_key(path: Path) -> str:
    """How the store remembers where a folder article came from."""
    return str(Path(path).resolve())


def default_directory(root: Path, source: Path | None) -> Path:
    """Index folder under ``root`` for a knowledge base synced from ``source``: one per source,
    so two configurations never mix their articles."""
    if source is None:
        return root / "default"
    digest = hashlib.sha256(source_key(source).encode("utf-8")).hexdigest()[:8]
    return root / f"{Path(source).stem or 'kb'}-{digest}"


def _hash64(content_hash: str) -> int:
    return int(content_hash[:15], 16)


class KnowledgeIndex:
    def __init__(
        self,
        embed: EmbedFn,
        *,
        model: str,
        dim: int,
        directory: Path | None = None,
        spec: IndexSpec | None = None,
        retrieval: RetrievalSettings | None = None,
    ) -> None:
        self.directory = directory
        self.store = KBStore(directory / STORE_FILE if directory else None)
        self.model = model
        self.dim = dim
        self.spec = spec or IndexSpec()
        self.retrieval = retrieval or RetrievalSettings()
        self._embed = embed
        self._tokenize = Tokenizer()
        self._lock = threading.Lock()  # searches and the short apply step of an update
        self._write_lock = threading.RLock()  # one writer at a time
        self._articles: dict[str, StoredArticle] = {}
        self._article_chunks: dict[str, list[int]] = {}
        self._chunks: dict[int, Chunk] = {}
        self._chunk_hash: dict[int, str] = {}
        self._tokens: dict[int, list[str]] = {}
        self._vectors = VectorIndex.flat(dim)
        self._lexical = LexicalIndex([], [])
        self._seq = 0
        self._dirty = False
        self._trained_count = 0
        self.loaded_from_snapshot = False

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path | None,
        embed: EmbedFn,
        *,
        model_name: str = "model",
        spec: IndexSpec | None = None,
        retrieval: RetrievalSettings | None = None,
        progress: Progress | None = None,
    ) -> KnowledgeIndex:
        """Open (or create) the knowledge base in ``directory`` (None: in memory) and load it.
        Blocking: only chunks whose text is not in the embedding cache are embedded."""
        key = model_key(model_name, embed)
        dim = int(key.split("/")[-2])
        index = cls(embed, model=key, dim=dim, directory=directory, spec=spec, retrieval=retrieval)
        index.reload(progress=progress)
        return index

    @classmethod
    def build(
        cls, articles: Sequence[Article], embed: EmbedFn, *, model_name: str = "model", **kwargs: Any
    ) -> KnowledgeIndex:
        """An in-memory knowledge base of ``articles`` (tests, evaluations)."""
        index = cls.open(None, embed, model_name=model_name, **kwargs)
        index.upsert_many(articles)
        return index

    def close(self) -> None:
        self.store.close()

    def encode_cached(self, texts: Sequence[str]) -> np.ndarray:
        """Embed through the persistent cache (intent examples, compliance exemplars at start-up)."""
        hashes = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        found = self.store.cached_vectors(self.model, hashes, self.dim)
        missing = list({h: t for h, t in zip(hashes, texts, strict=True) if h not in found}.items())
        if missing:
            embedded = self._embed([t for _, t in missing])
            pairs = [(h, v) for (h, _), v in zip(missing, embedded, strict=True)]
            self.store.cache_vectors(self.model, pairs)
            found.update(pairs)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.vstack([found[h] for h in hashes]).astype(np.float32, copy=False)

    def cached_embedder(self, name: str) -> CachedEmbedder:
        return CachedEmbedder(name, self.dim, self.encode_cached)

    # -- reads -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._chunks)

    @property
    def article_count(self) -> int:
        return len(self._articles)

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def chunks(self) -> list[Chunk]:
        with self._lock:
            return list(self._chunks.values())

    def get(self, article_id: str) -> StoredArticle | None:
        return self._articles.get(article_id)

    def article_chunks(self, article_id: str) -> list[Chunk]:
        with self._lock:
            return [self._chunks[v] for v in self._article_chunks.get(article_id, [])]

    def list_articles(self, filters: Filters | None = None) -> list[StoredArticle]:
        with self._lock:
            items = sorted(self._articles.values(), key=lambda s: s.article.id)
        return [s for s in items if not filters or filters.matches(s.article)]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "articles": len(self._articles),
                "chunks": len(self._chunks),
                "index": self._vectors.kind,
                "nlist": self._vectors.nlist,
                "nprobe": self._vectors.nprobe,
                "vectors": len(self._vectors),
                "dim": self.dim,
                "model": self.model,
                "lexical_vocabulary": len(self._lexical._vocab),
                "cached_embeddings": self.store.cache_size(self.model),
                "directory": str(self.directory) if self.directory else None,
                "change_seq": self._seq,
                "products": sorted({s.article.product for s in self._articles.values() if s.article.product}),
                "languages": sorted({s.article.language for s in self._articles.values()}),
            }

    # -- search ----------------------------------------------------------------------------

    def search(
        self,
        vectors: np.ndarray,
        texts: Sequence[str] | None = None,
        *,
        k: int = 3,
        min_score: float = 0.0,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
    ) -> list[list[ArticleHit]]:
        """Top ``k`` articles per query (best chunk each). ``vectors`` rows are L2-normalised
        query embeddings; ``texts`` the same queries as text, for the lexical side."""
        mode = mode or self.retrieval.mode
        if texts is None:
            mode = "dense"
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if texts is not None and len(texts) != len(vectors):
            raise ValueError("texts and vectors differ in length")
        depth = max(self.retrieval.depth, k * 8)
        with self._lock:
            if not self._chunks:
                return [[] for _ in range(len(vectors))]
            allowed = self._allowed(filters) if filters else None
            if allowed is not None and len(allowed) == 0:
                return [[] for _ in range(len(vectors))]
            dense_scores, dense_ids = (
                self._vectors.search(vectors, depth, allowed) if mode != "lexical" else (None, None)
            )
            lexical_mask = np.isin(self._lexical.rows, allowed) if allowed is not None else None
            results = []
            for row, query in enumerate(vectors):
                dense = (
                    [
                        (int(i), float(s))
                        for s, i in zip(dense_scores[row], dense_ids[row], strict=True)
                        if i >= 0
                    ]
                    if dense_scores is not None
                    else []
                )
                lexical: list[tuple[int, float]] = []
                if mode != "dense" and texts is not None:
                    ids, scores = self._lexical.top(self._tokenize(texts[row]), depth, lexical_mask)
                    lexical = [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]
                results.append(self._fuse(query, dense, lexical, k, min_score, mode))
        return results

    def _allowed(self, filters: Filters) -> np.ndarray:
        ids = [
            vid
            for article_id, vids in self._article_chunks.items()
            if filters.matches(self._articles[article_id].article)
            for vid in vids
        ]
        return np.asarray(ids, dtype=np.int64)

    def _fuse(
        self,
        query: np.ndarray,
        dense: list[tuple[int, float]],
        lexical: list[tuple[int, float]],
        k: int,
        min_score: float,
        mode: SearchMode,
    ) -> list[ArticleHit]:
        """Collapse chunks to articles (best chunk each), fuse the two rankings with RRF."""
        rrf_k = self.retrieval.rrf_k
        best: dict[str, dict[str, Any]] = {}
        for kind, ranked in (("dense", dense), ("lexical", lexical)):
            rank = 0
            for vid, score in ranked:
                chunk = self._chunks.get(vid)
                if chunk is None:
                    continue
                entry = best.setdefault(
                    chunk.article_id,
                    {"fused": 0.0, "chunk": vid, "cos": None, "bm25": 0.0, "shown_cos": None},
                )
                if kind == "dense" and entry["shown_cos"] is None and score >= self._floor(chunk, min_score):
                    entry["shown_cos"] = score  # the best chunk that clears its own floor
                if kind in entry:
                    continue  # a later chunk of an article already ranked by this retriever
                rank += 1
                entry[kind] = rank
                entry["fused"] += 1.0 / (rrf_k + rank)
                if kind == "dense":
                    entry["cos"], entry["chunk"] = score, vid
                else:
                    entry["bm25"] = score
        hits: list[ArticleHit] = []
        for article_id, entry in best.items():
            cosine = entry["cos"]
            if cosine is None:  # found by BM25 only: its dense score still decides the floor
                cosine = float(self._vectors.reconstruct([entry["chunk"]])[0] @ query)
                if cosine >= self._floor(self._chunks[entry["chunk"]], min_score):
                    entry["shown_cos"] = cosine
            lexical_pass = mode != "dense" and entry["bm25"] >= self.retrieval.min_lexical_score
            if entry["shown_cos"] is None and not lexical_pass:
                continue
            chunk = self._chunks[entry["chunk"]]
            shown = self._body_chunk(article_id) if chunk.kind == "question" else chunk
            hits.append(
                ArticleHit(
                    id=article_id,
                    title=chunk.title,
                    snippet=snippet_of(shown.text),
                    score=cosine,
                    url=chunk.url,
                    anchor=chunk.anchor,
                    chunk_id=chunk.id,
                    lexical_score=entry["bm25"],
                    fused=entry["fused"],
                )
            )
        hits.sort(key=lambda h: (-h.fused, -h.score, h.id))
        return hits[:k]

    def _floor(self, chunk: Chunk, min_score: float) -> float:
        return min_score + self.retrieval.question_margin if chunk.kind == "question" else min_score

    def _body_chunk(self, article_id: str) -> Chunk:
        """The article's first content chunk: what to show when a customer phrasing matched."""
        chunks = [self._chunks[v] for v in self._article_chunks.get(article_id, ()) if v in self._chunks]
        body = [c for c in chunks if c.kind == "body"]
        return body[0] if body else chunks[0]

    def search_text(self, queries: Sequence[str], **kwargs: Any) -> list[list[ArticleHit]]:
        """Embed ``queries`` with this index's model, then ``search``. Blocking."""
        return self.search(self._embed(list(queries)), list(queries), **kwargs)

    # -- writes ----------------------------------------------------------------------------

    def upsert(self, article: Article) -> tuple[bool, ChangeReport]:
        """Create or replace one article (API / CLI edit). Returns (created, report)."""
        with self._write_lock:
            created = article.id not in self._articles
            report = self.upsert_many([article])
        return created, report

    def upsert_many(
        self,
        articles: Iterable[Article],
        *,
        source: str | None = None,
        progress: Progress | None = None,
    ) -> ChangeReport:
        started = time.perf_counter()
        report = ChangeReport()
        with self._write_lock:
            changed: list[Article] = []
            for article in articles:
                current = self._articles.get(article.id)
                if (
                    current is not None
                    and current.content_hash == article.content_hash
                    and (source is None or current.source == source)
                ):
                    report.unchanged += 1
                    continue
                (report.updated if current else report.added).append(article.id)
                self.store.put(article, source=source, source_hash=article.content_hash if source else None)
                changed.append(article)
            if changed:
                self._apply_from_store([a.id for a in changed], report, progress)
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, article_id: str) -> bool:
        with self._write_lock:
            if self.store.delete(article_id) is None:
                return False
            self._apply_from_store([article_id], ChangeReport())
        return True

    def sync_source(
        self, articles: Sequence[Article], source: str, *, progress: Progress | None = None
    ) -> ChangeReport:
        """Make the articles that came from ``source`` (a folder or file) match ``articles``.

        The source is the baseline, not a dictator: an article edited or deleted through the
        API stays as edited until its file changes; articles from other sources are untouched.
        """
        started = time.perf_counter()
        report = ChangeReport()
        with self._write_lock:
            incoming: list[Article] = []
            for article in articles:
                current = self._articles.get(article.id)
                tomb = self.store.tombstone(article.id)
                if current is None and tomb is not None and tomb[1] == article.content_hash:
                    report.unchanged += 1  # deleted by a user; the file has not changed since
                    continue
                if current is not None and current.source_hash == article.content_hash:
                    report.unchanged += 1  # file unchanged since last ingest (maybe edited since)
                    continue
                incoming.append(article)
            wanted = {a.id for a in articles}
            removed = sorted(self.store.ids_from_source(source) - wanted)
            for article_id in removed:
                self.store.delete(article_id, tombstone=False)
            for article in incoming:
                (report.updated if article.id in self._articles else report.added).append(article.id)
                self.store.put(article, source=source, source_hash=article.content_hash, keep_source=False)
            report.removed = removed
            if incoming or removed:
                self._apply_from_store([a.id for a in incoming] + removed, report, progress)
        report.seconds = time.perf_counter() - started
        return report

    def refresh(self) -> int:
        """Apply changes other processes (or the CLI) wrote to the store. Cheap when idle."""
        with self._write_lock:
            changed, newest, complete = self.store.changes_since(self._seq)
            if not complete:
                self.reload()
                return len(changed)
            if changed:
                self._apply_from_store(changed, ChangeReport())
            self._seq = max(self._seq, newest)
        return len(changed)

    def reload(self, *, progress: Progress | None = None) -> ChangeReport:
        """Load everything from the store (and the vector snapshot when it is still valid)."""
        report = ChangeReport()
        started = time.perf_counter()
        with self._write_lock:
            seq = self.store.last_seq()
            stored = {s.article.id: s for s in self.store.all()}
            chunks = {a: chunk_article(s.article) for a, s in stored.items()}
            flat = [c for cs in chunks.values() for c in cs]
            hashes = {c.vector_id: c.content_hash for c in flat}
            vectors = self._vectors_for(flat, report, progress)
            snapshot = self._read_snapshot(len(flat))
            if snapshot is not None:
                index, snap_ids, snap_hashes = snapshot
                keep = {
                    int(i)
                    for i, h in zip(snap_ids, snap_hashes, strict=True)
                    if hashes.get(int(i)) is not None and _hash64(hashes[int(i)]) == int(h)
                }
                index.remove(np.asarray([i for i in snap_ids if int(i) not in keep], np.int64))
                add = [c for c in flat if c.vector_id not in keep]
                index.add([c.vector_id for c in add], self._stack(add, vectors))
                self.loaded_from_snapshot = True
                self._dirty = bool(add) or len(keep) != len(snap_ids)
            else:
                ids = np.asarray([c.vector_id for c in flat], np.int64)
                index = VectorIndex.build(self.spec, self.dim, ids, self._stack(flat, vectors))
                self._trained_count = len(flat)
                self._dirty = True
            tokens = {c.vector_id: self._tokenize(c.embedding_text) for c in flat}
            lexical = LexicalIndex(list(tokens), list(tokens.values()))
            with self._lock:
                self._articles = stored
                self._article_chunks = {a: [c.vector_id for c in cs] for a, cs in chunks.items()}
                self._chunks = {c.vector_id: c for c in flat}
                self._chunk_hash = hashes
                self._tokens = tokens
                self._vectors = index
                self._lexical = lexical
                self._seq = seq
        report.seconds = time.perf_counter() - started
        return report

    def _stack(self, chunks: Sequence[Chunk], vectors: dict[str, np.ndarray]) -> np.ndarray:
        if not chunks:
            return np.zeros((0, self.dim), np.float32)
        return np.vstack([vectors[c.content_hash] for c in chunks]).astype(np.float32, copy=False)

    def _vectors_for(
        self, chunks: Sequence[Chunk], report: ChangeReport, progress: Progress | None = None
    ) -> dict[str, np.ndarray]:
        """Vectors by content hash: from the cache, else embedded (in batches, cached as we go)."""
        wanted = list(dict.fromkeys(c.content_hash for c in chunks))
        found = self.store.cached_vectors(self.model, wanted, self.dim)
        texts = {c.content_hash: c.embedding_text for c in chunks if c.content_hash not in found}
        missing = list(texts)
        report.chunks_cached += len(wanted) - len(missing)
        if progress:
            progress(0, len(missing))
        for start in range(0, len(missing), EMBED_BATCH):
            batch = missing[start : start + EMBED_BATCH]
            embedded = self._embed([texts[h] for h in batch])
            pairs = list(zip(batch, embedded, strict=True))
            self.store.cache_vectors(self.model, pairs)
            found.update(pairs)
            report.chunks_embedded += len(batch)
            if progress:
                progress(min(start + EMBED_BATCH, len(missing)), len(missing))
        return found

    def _apply_from_store(
        self, article_ids: Sequence[str], report: ChangeReport, progress: Progress | None = None
    ) -> None:
        """Bring the in-memory indexes in line with the store for these articles (idempotent)."""
        current = {a: self.store.get(a) for a in dict.fromkeys(article_ids)}
        unchanged = all(
            (self._articles[a].content_hash if a in self._articles else None)
            == (s.content_hash if s else None)
            for a, s in current.items()
        )
        if unchanged:
            return
        new_chunks = {a: chunk_article(s.article) if s else [] for a, s in current.items()}
        remove: list[int] = []
        add: list[Chunk] = []
        for article_id, chunks in new_chunks.items():
            fresh = {c.vector_id: c.content_hash for c in chunks}
            remove.extend(
                vid
                for vid in self._article_chunks.get(article_id, [])
                if fresh.get(vid) != self._chunk_hash.get(vid)
            )
            add.extend(c for c in chunks if self._chunk_hash.get(c.vector_id) != c.content_hash)
        vectors = self._vectors_for(add, report, progress)
        add_matrix = self._stack(add, vectors)
        tokens = dict(self._tokens)
        for article_id in new_chunks:
            for vid in self._article_chunks.get(article_id, []):
                tokens.pop(vid, None)
        for chunks in new_chunks.values():
            for chunk in chunks:
                previous = self._tokens.get(chunk.vector_id)
                same = previous is not None and self._chunk_hash.get(chunk.vector_id) == chunk.content_hash
                tokens[chunk.vector_id] = previous if same else self._tokenize(chunk.embedding_text)
        lexical = LexicalIndex(list(tokens), list(tokens.values()))
        with self._lock:
            self._vectors.remove(np.asarray(remove, np.int64))
            self._vectors.add([c.vector_id for c in add], add_matrix)
            for article_id, stored in current.items():
                for vid in self._article_chunks.pop(article_id, []):
                    self._chunks.pop(vid, None)
                    self._chunk_hash.pop(vid, None)
                self._articles.pop(article_id, None)
                if stored is not None:
                    self._articles[article_id] = stored
                    self._article_chunks[article_id] = [c.vector_id for c in new_chunks[article_id]]
                    for chunk in new_chunks[article_id]:
                        self._chunks[chunk.vector_id] = chunk
                        self._chunk_hash[chunk.vector_id] = chunk.content_hash
            self._tokens = tokens
            self._lexical = lexical
            self._dirty = True

    # -- snapshot --------------------------------------------------------------------------

    def _snapshot_path(self) -> Path | None:
        return self.directory / SNAPSHOT_FILE if self.directory else None

    def save_snapshot(self) -> bool:
        """Persist the FAISS index (with its ids and chunk hashes) so a restart skips training
        and adding. Written to a temporary file and renamed: a crash never leaves half a file."""
        path = self._snapshot_path()
        if path is None:
            return False
        with self._write_lock:
            with self._lock:
                data = self._vectors.to_bytes()
                ids = np.fromiter(self._chunk_hash.keys(), np.int64, len(self._chunk_hash))
                hashes = np.fromiter((_hash64(h) for h in self._chunk_hash.values()), np.int64, len(ids))
                kind = self._vectors.kind
            tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
            np.savez(
                tmp,
                index=np.frombuffer(data, np.uint8),
                ids=ids,
                hashes=hashes,
                meta=np.array([self.model, kind, str(self._trained_count or len(ids))]),
            )
            os.replace(tmp, path)
            self._dirty = False
        return True

    def _read_snapshot(self, count: int) -> tuple[VectorIndex, np.ndarray, np.ndarray] | None:
        path = self._snapshot_path()
        if path is None or not path.exists():
            return None
        try:
            with np.load(path) as data:
                model, kind, trained = (str(x) for x in data["meta"])
                if model != self.model or kind != self.spec.resolve(count):
                    log.info("vector snapshot is for %s/%s; rebuilding", model, kind)
                    return None
                if kind == "ivf" and count > 4 * int(trained):
                    log.info("IVF index trained on %s vectors now holds %d; retraining", trained, count)
                    return None
                index = VectorIndex.from_bytes(data["index"].tobytes(), nprobe=self.spec.nprobe)
                self._trained_count = int(trained)
                return index, data["ids"], data["hashes"]
        except Exception:
            log.warning("vector snapshot %s unreadable; rebuilding", path, exc_info=True)
            return None
