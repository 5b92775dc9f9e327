"""Issue clustering of call summaries: fit on a sample, assign every call to its nearest cluster.

Two methods, one shape:

- ``embedding`` (default): the summaries' sentence embeddings (the server's own model),
  agglomerative clustering (average linkage, cosine distance, a distance threshold instead of
  a cluster count). On BANKING77 it scores ARI 0.48 / NMI 0.81 against TF-IDF + DBSCAN's
  0.12 / 0.70 (docs/analytics.md, ``bench/clustering_eval.py``).
- ``tfidf`` (the seed): TF-IDF over 1-2 grams and DBSCAN with cosine distance.

Agglomerative clustering and DBSCAN cost O(n^2) memory, so a model is fitted on a sample (a
few thousand calls, with recent calls over-represented so new issues are seen) and every call is
then assigned to the nearest centroid when it is close enough (cosine), else it stays unclustered
(-1). Refitted clusters keep the id of the old cluster whose centroid they match, so reports and
alerts keep referring to the same issue across refits.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist
from sklearn.cluster import DBSCAN
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from analytics.config import ClusteringConfig
from analytics.records import FILLERS

# Contractions that say nothing about an issue (negations like "can't" and "won't" do, and stay).
CONTRACTIONS = frozenset(
    [
        "i'm",
        "i've",
        "i'd",
        "i'll",
        "it's",
        "that's",
        "what's",
        "why's",
        "how's",
        "there's",
        "here's",
        "you're",
        "you've",
        "we're",
        "we've",
        "they're",
        "they've",
        "let's",
        "haven't",
        "hasn't",
        "gonna",
        "wanna",
    ]
)
STOP_WORDS = sorted(
    set(TfidfVectorizer(stop_words="english").get_stop_words() or ()) | FILLERS | CONTRACTIONS
)
TOKENS = r"(?u)\b[a-zA-Z][a-zA-Z0-9']+\b"
UNCLUSTERED = -1


# --------------------------------------------------------------------------------- text space (TF-IDF)


@dataclass
class TfidfSpace:
    """A fitted TF-IDF space that can be stored as JSON and rebuilt exactly."""

    vocabulary: dict[str, int]
    idf: np.ndarray

    @classmethod
    def fit(cls, texts: Sequence[str], max_features: int) -> TfidfSpace:
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2),
            stop_words=STOP_WORDS,
            token_pattern=TOKENS,
            sublinear_tf=True,
            max_features=max_features,
        )
        vectorizer.fit(texts)
        return cls(
            {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}, vectorizer.idf_.astype(np.float32)
        )

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        counts = CountVectorizer(
            ngram_range=(1, 2), stop_words=STOP_WORDS, token_pattern=TOKENS, vocabulary=self.vocabulary
        ).transform(texts)
        counts = counts.astype(np.float32)
        counts.data = np.log1p(counts.data)  # sublinear tf, as when fitted
        weighted = counts.multiply(self.idf[None, :]).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.csr_matrix(sparse.diags(1.0 / norms) @ weighted)

    def to_json(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary, "idf": self.idf.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TfidfSpace:
        return cls(
            {str(k): int(v) for k, v in data["vocabulary"].items()}, np.asarray(data["idf"], np.float32)
        )


# ------------------------------------------------------------------------------------------ fitting


def fit_labels(matrix: Any, method: str, config: ClusteringConfig) -> np.ndarray:
    """Cluster labels of a sample (-1: noise, DBSCAN only)."""
    n = matrix.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    if method == "embedding":
        e = config.embedding
        # SciPy directly on the condensed distances: the same tree and cut as sklearn's
        # AgglomerativeClustering(distance_threshold=...) with less peak memory (+137 MB
        # instead of +189 MB for 5,000 calls).
        distances = pdist(np.asarray(matrix, dtype=np.float64), "cosine")
        tree = linkage(distances, method=e.linkage)
        del distances
        return (fcluster(tree, t=e.distance_threshold, criterion="distance") - 1).astype(np.int64)
    t = config.tfidf
    return DBSCAN(eps=t.eps, min_samples=t.min_samples, metric="cosine").fit_predict(matrix).astype(np.int64)


def centroids_of(matrix: Any, labels: np.ndarray, min_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept labels, unit centroids, sizes) of clusters with at least ``min_size`` members."""
    kept = [k for k in np.unique(labels) if k >= 0 and int((labels == k).sum()) >= min_size]
    if not kept:
        dim = matrix.shape[1]
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32), np.zeros(0, np.int64)
    rows = []
    for k in kept:
        member = matrix[labels == k]
        mean = np.asarray(member.mean(axis=0)).ravel()
        rows.append(mean / (np.linalg.norm(mean) or 1.0))
    sizes = np.asarray([int((labels == k).sum()) for k in kept])
    return np.asarray(kept, np.int64), np.asarray(rows, np.float32), sizes


def nearest(matrix: Any, centroids: np.ndarray, min_similarity: float) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest centroid or -1, cosine similarity) per row of ``matrix``."""
    n = matrix.shape[0]
    if centroids.shape[0] == 0 or n == 0:
        return np.full(n, UNCLUSTERED, np.int64), np.zeros(n, np.float32)
    sims = matrix @ centroids.T
    sims = np.asarray(sims.todense() if sparse.issparse(sims) else sims, dtype=np.float32)
    best = sims.argmax(axis=1)
    score = sims[np.arange(n), best]
    return np.where(score >= min_similarity, best, UNCLUSTERED).astype(np.int64), score


def top_terms(
    texts_by_cluster: Sequence[Sequence[str]], n_terms: int, min_coverage: float = 0.2
) -> list[list[str]]:
    """Each cluster's characteristic terms (1-2 grams): said in at least ``min_coverage`` of its
    calls, ranked by coverage x lift over the other clusters (a class-based TF-IDF that rewards
    what most members say, not a word one member happened to use)."""
    texts = [t for texts in texts_by_cluster for t in texts]
    if not any(t.strip() for t in texts):
        return [[] for _ in texts_by_cluster]
    vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words=STOP_WORDS, token_pattern=TOKENS, binary=True)
    try:
        matrix = vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # only stop words
        return [[] for _ in texts_by_cluster]
    vocabulary = vectorizer.get_feature_names_out()
    overall = np.asarray(matrix.mean(axis=0)).ravel()
    bigram = np.asarray([" " in str(v) for v in vocabulary])
    out = []
    start = 0
    for texts in texts_by_cluster:
        size = len(texts)
        rows = matrix[start : start + size]
        start += size
        if size == 0:
            out.append([])
            continue
        coverage = np.asarray(rows.mean(axis=0)).ravel()
        lift = np.log1p(np.divide(coverage, overall, out=np.zeros_like(coverage), where=overall > 0))
        score = coverage * lift * np.where(bigram, 1.2, 1.0)
        floor = max(min_coverage, 2 / size if size >= 2 else 0.0)
        terms: list[str] = []
        for i in np.argsort(-score):
            if coverage[i] < floor or score[i] <= 0:
                break
            term = str(vocabulary[i])
            words = set(term.split())
            # A bigram makes its own words redundant ("direct debit" covers "debit"), and a bigram
            # of words already listed adds nothing.
            if any(words <= set(t.split()) or (" " in term and set(t.split()) <= words) for t in terms):
                continue
            terms.append(term)
            if len(terms) == n_terms:
                break
        out.append(terms)
    return out


# ------------------------------------------------------------------------------------------- model


@dataclass
class ClusterModel:
    method: str
    ids: np.ndarray
    centroids: np.ndarray
    labels: list[str]
    terms: list[list[str]]
    samples: list[list[str]]
    fitted_sizes: np.ndarray
    fitted_at: float
    space: TfidfSpace | None = None
    version: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ids.size)

    def index_of(self, cluster_id: int) -> int | None:
        hit = np.flatnonzero(self.ids == cluster_id)
        return int(hit[0]) if hit.size else None

    def assign(self, matrix: Any, min_similarity: float) -> np.ndarray:
        """Cluster ids (or -1) for rows in this model's space."""
        index, _ = nearest(matrix, self.centroids, min_similarity)
        return np.where(index >= 0, self.ids[np.maximum(index, 0)], UNCLUSTERED).astype(np.int64)

    def info(self, cluster_id: int) -> dict[str, Any]:
        i = self.index_of(cluster_id)
        if i is None:
            return {"cluster_id": int(cluster_id), "label": "unclustered", "top_terms": [], "samples": []}
        return {
            "cluster_id": int(cluster_id),
            "label": self.labels[i],
            "top_terms": self.terms[i],
            "samples": self.samples[i],
        }


def label_of(terms: Sequence[str]) -> str:
    return " / ".join(terms[:3]) if terms else "(no terms)"


def fit_model(
    method: str,
    matrix: Any,
    texts: Sequence[str],
    config: ClusteringConfig,
    previous: ClusterModel | None,
    *,
    next_id: int,
    space: TfidfSpace | None = None,
    now: float | None = None,
) -> ClusterModel:
    """Cluster a sample and describe the clusters; ids follow ``previous`` where centroids match."""
    started = time.perf_counter()
    labels = fit_labels(matrix, method, config)
    kept, centroids, sizes = centroids_of(matrix, labels, config.min_cluster_size)
    order = np.argsort(-sizes, kind="stable")
    kept, centroids, sizes = kept[order], centroids[order], sizes[order]
    members = [np.flatnonzero(labels == k) for k in kept]
    texts_by_cluster = [[texts[i] for i in m] for m in members]
    terms = top_terms(texts_by_cluster, config.top_terms)
    samples = []
    for m, cluster_centroid in zip(members, centroids, strict=True):
        # The most typical members first (closest to the centroid), then distinct ones.
        sims = np.asarray(matrix[m] @ cluster_centroid).ravel()
        picked: list[str] = []
        for i in m[np.argsort(-sims)]:
            if texts[i] not in picked:
                picked.append(texts[i])
            if len(picked) == config.samples:
                break
        samples.append(picked)
    ids = match_ids(centroids, previous, config.match_similarity, next_id)
    return ClusterModel(
        method=method,
        ids=ids,
        centroids=centroids,
        labels=[label_of(t) for t in terms],
        terms=terms,
        samples=samples,
        fitted_sizes=sizes,
        fitted_at=time.time() if now is None else now,
        space=space,
        stats={
            "sample": int(matrix.shape[0]),
            "clusters": int(kept.size),
            "noise_share": round(float((labels < 0).mean()), 4) if labels.size else 0.0,
            "in_small_clusters": int(
                sum(1 for k in np.unique(labels) if k >= 0 and k not in set(kept.tolist()))
            ),
            "fit_seconds": round(time.perf_counter() - started, 3),
        },
    )


def match_ids(
    centroids: np.ndarray, previous: ClusterModel | None, threshold: float, next_id: int
) -> np.ndarray:
    """One-to-one: each new centroid takes the id of the most similar old one above ``threshold``
    (best pairs first); the rest get fresh ids from ``next_id``."""
    ids = np.full(centroids.shape[0], -1, np.int64)
    if (
        previous is not None
        and len(previous)
        and centroids.shape[0]
        and previous.centroids.shape[1] == centroids.shape[1]
    ):
        sims = centroids @ previous.centroids.T
        taken_new: set[int] = set()
        taken_old: set[int] = set()
        for flat in np.argsort(-sims, axis=None):
            i, j = divmod(int(flat), sims.shape[1])
            if sims[i, j] < threshold:
                break
            if i in taken_new or j in taken_old:
                continue
            ids[i] = previous.ids[j]
            taken_new.add(i)
            taken_old.add(j)
    for i in np.flatnonzero(ids < 0):
        ids[i] = next_id
        next_id += 1
    return ids


# ------------------------------------------------------------------------------------------ storage


def save_model(conn: sqlite3.Connection, model: ClusterModel) -> None:
    """Replace the active clusters with ``model``'s (old ids that were not matched go inactive)."""
    now = time.time()
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE analytics_clusters SET active = 0 WHERE active = 1")
        for i, cluster_id in enumerate(model.ids.tolist()):
            conn.execute(
                "INSERT INTO analytics_clusters (cluster_id, method, centroid, label, terms, samples, fitted_size,"
                " created_at, updated_at, active) VALUES (?,?,?,?,?,?,?,?,?,1)"
                " ON CONFLICT(cluster_id) DO UPDATE SET method = excluded.method, centroid = excluded.centroid,"
                " label = excluded.label, terms = excluded.terms, samples = excluded.samples,"
                " fitted_size = excluded.fitted_size, updated_at = excluded.updated_at, active = 1",
                (
                    int(cluster_id),
                    model.method,
                    model.centroids[i].astype(np.float32).tobytes(),
                    model.labels[i],
                    json.dumps(model.terms[i]),
                    json.dumps(model.samples[i]),
                    int(model.fitted_sizes[i]),
                    now,
                    now,
                ),
            )
        meta = {
            "method": model.method,
            "fitted_at": model.fitted_at,
            "stats": model.stats,
            "space": model.space.to_json() if model.space is not None else None,
        }
        version = int(
            conn.execute("SELECT COALESCE(MAX(cluster_id), 0) FROM analytics_clusters").fetchone()[0]
        )
        conn.execute(
            "INSERT INTO analytics_state (key, value) VALUES ('cluster_model', ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (json.dumps({**meta, "version": int(model.fitted_at * 1000), "max_id": version}),),
        )


def load_model(conn: sqlite3.Connection) -> ClusterModel | None:
    row = conn.execute("SELECT value FROM analytics_state WHERE key = 'cluster_model'").fetchone()
    if row is None:
        return None
    meta = json.loads(row[0])
    rows = conn.execute(
        "SELECT cluster_id, centroid, label, terms, samples, fitted_size FROM analytics_clusters"
        " WHERE active = 1 AND method = ? ORDER BY fitted_size DESC, cluster_id",
        (meta["method"],),
    ).fetchall()
    if not rows:
        return None
    centroids = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    return ClusterModel(
        method=meta["method"],
        ids=np.asarray([r[0] for r in rows], np.int64),
        centroids=centroids,
        labels=[r[2] for r in rows],
        terms=[json.loads(r[3]) for r in rows],
        samples=[json.loads(r[4]) for r in rows],
        fitted_sizes=np.asarray([r[5] for r in rows], np.int64),
        fitted_at=float(meta["fitted_at"]),
        space=TfidfSpace.from_json(meta["space"]) if meta.get("space") else None,
        version=int(meta.get("version", 0)),
        stats=meta.get("stats", {}),
    )


def next_cluster_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(cluster_id), 0) FROM analytics_clusters").fetchone()[0]) + 1
