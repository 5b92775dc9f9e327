"""Dense FAISS index over knowledge-base chunks, searched one hit per article."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from kb_index.articles import Article
from kb_index.chunking import Chunk, chunk_article

EmbedFn = Callable[[Sequence[str]], np.ndarray]

SNIPPET_CHARS = 240


@dataclass(frozen=True, slots=True)
class ArticleHit:
    id: str
    title: str
    snippet: str
    score: float
    url: str | None = None
    anchor: str | None = None
    chunk_id: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "snippet": self.snippet,
            "score": round(self.score, 4),
            "url": self.url,
            "anchor": self.anchor,
        }


def snippet_of(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > limit // 2 else limit] + "…"


class KnowledgeIndex:
    """Immutable once built: a new build is swapped in whole, so searches never see a half update."""

    def __init__(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, articles: Sequence[Article] = ()
    ) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("chunks and vectors differ in length")
        self.chunks = list(chunks)
        self.articles = {a.id: a for a in articles}
        self.dim = int(vectors.shape[1]) if len(vectors) else 0
        self._index = faiss.IndexFlatIP(self.dim or 1)
        if len(vectors):
            self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    @classmethod
    def build(cls, articles: Sequence[Article], embed: EmbedFn) -> KnowledgeIndex:
        chunks = [chunk for article in articles for chunk in chunk_article(article)]
        vectors = embed([c.embedding_text for c in chunks]) if chunks else np.zeros((0, 0), np.float32)
        return cls(chunks, vectors, articles)

    def __len__(self) -> int:
        return len(self.chunks)

    def search(
        self,
        vectors: np.ndarray,
        texts: Sequence[str] | None = None,
        *,
        k: int = 3,
        min_score: float = 0.0,
    ) -> list[list[ArticleHit]]:
        """Best chunk per article, top ``k`` articles per query vector (rows L2-normalised)."""
        del texts  # lexical fusion arrives with hybrid search; the signature is stable already
        if not self.chunks:
            return [[] for _ in range(len(vectors))]
        depth = min(len(self.chunks), max(k * 8, 16))
        scores, ids = self._index.search(np.ascontiguousarray(vectors, dtype=np.float32), depth)
        results: list[list[ArticleHit]] = []
        for row_scores, row_ids in zip(scores, ids, strict=True):
            hits: list[ArticleHit] = []
            seen: set[str] = set()
            for score, idx in zip(row_scores, row_ids, strict=True):
                if idx < 0 or score < min_score:
                    continue
                chunk = self.chunks[idx]
                if chunk.article_id in seen:
                    continue
                seen.add(chunk.article_id)
                hits.append(
                    ArticleHit(
                        id=chunk.article_id,
                        title=chunk.title,
                        snippet=snippet_of(chunk.text),
                        score=float(score),
                        url=chunk.url,
                        anchor=chunk.anchor,
                        chunk_id=chunk.id,
                    )
                )
                if len(hits) == k:
                    break
            results.append(hits)
        return results
