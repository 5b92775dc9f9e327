"""Retrieval evaluation: recall@1, recall@3 and MRR of a labelled query set."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kb_index.articles import ArticleError
from kb_index.index import KnowledgeIndex, SearchMode

MODES: tuple[SearchMode, ...] = ("dense", "lexical", "hybrid")
MRR_DEPTH = 10


@dataclass(frozen=True, slots=True)
class LabelledQuery:
    query: str
    article_id: str


@dataclass
class EvalResult:
    mode: str
    queries: int
    recall_at_1: float
    recall_at_3: float
    mrr: float
    misses: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (query, gold, top-3)

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "queries": self.queries,
            "recall@1": round(self.recall_at_1, 4),
            "recall@3": round(self.recall_at_3, 4),
            "mrr": round(self.mrr, 4),
        }


def read_queries(path: Path) -> list[LabelledQuery]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"query", "article_id"} - set(reader.fieldnames or ())
        if missing:
            raise ArticleError(f"{path}: needs columns query,article_id; missing {sorted(missing)}")
        rows = [
            LabelledQuery(r["query"].strip(), r["article_id"].strip())
            for r in reader
            if r["query"].strip() and r["article_id"].strip()
        ]
    if not rows:
        raise ArticleError(f"{path}: no labelled queries")
    return rows


def evaluate(
    index: KnowledgeIndex, queries: Sequence[LabelledQuery], modes: Sequence[SearchMode] = MODES
) -> list[EvalResult]:
    """Rank articles for every query in each mode (no score floor: ranking quality only)."""
    unknown = sorted({q.article_id for q in queries} - {s.article.id for s in index.list_articles()})
    if unknown:
        raise ArticleError(f"gold article ids not in the knowledge base: {', '.join(unknown[:10])}")
    texts = [q.query for q in queries]
    vectors = index._embed(texts)
    results: list[EvalResult] = []
    for mode in modes:
        ranked = index.search(vectors, texts, k=MRR_DEPTH, min_score=-1.0, mode=mode)
        hits1 = hits3 = 0
        reciprocal = 0.0
        misses: list[tuple[str, str, list[str]]] = []
        for query, hits in zip(queries, ranked, strict=True):
            ids = [h.id for h in hits]
            rank = ids.index(query.article_id) + 1 if query.article_id in ids else None
            hits1 += rank == 1
            hits3 += rank is not None and rank <= 3
            reciprocal += 1.0 / rank if rank else 0.0
            if rank is None or rank > 3:
                misses.append((query.query, query.article_id, ids[:3]))
        n = len(queries)
        results.append(EvalResult(mode, n, hits1 / n, hits3 / n, reciprocal / n, misses))
    return results
