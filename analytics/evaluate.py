"""Clustering quality on labelled data: BANKING77's 77 intents as ground-truth clusters.

Parameters are chosen on a 3,000-text split of the training set (``GRID``); the figures are on
the 3,080-text test set. Noise points (DBSCAN's -1) count as singleton clusters, and the share
of texts that landed in a cluster is reported beside ARI and NMI.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from analytics.clustering import TfidfSpace, fit_labels
from analytics.config import ClusteringConfig, EmbeddingClustering, TfidfClustering

GRID: dict[str, list[Any]] = {
    "tfidf": [
        TfidfClustering(eps=e, min_samples=m) for e in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8) for m in (2, 3, 5)
    ],
    "embedding": [EmbeddingClustering(distance_threshold=t) for t in (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)],
    # sklearn's HDBSCAN on the unit vectors (euclidean is monotone in cosine there), for comparison.
    "hdbscan": [3, 5, 10],
}
DEV_SIZE = 3000


def read(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def score(truth: list[str], labels: np.ndarray) -> dict[str, float]:
    labels = labels.copy()
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    return {
        "ari": round(float(adjusted_rand_score(truth, labels)), 4),
        "nmi": round(float(normalized_mutual_info_score(truth, labels)), 4),
        "clusters": int(np.unique(labels[~noise]).size),
        "clustered": round(float(1 - noise.mean()), 4),
    }


def cluster(method: str, texts: list[str], vectors: np.ndarray, params: Any) -> np.ndarray:
    if method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        return HDBSCAN(min_cluster_size=int(params), copy=True).fit_predict(vectors).astype(np.int64)
    if method == "tfidf":
        config = ClusteringConfig(method="tfidf", tfidf=params)
        matrix: Any = TfidfSpace.fit(texts, config.tfidf.max_features).transform(texts)
    else:
        config = ClusteringConfig(method="embedding", embedding=params)
        matrix = vectors
    return fit_labels(matrix, method, config)


def evaluate_banking77(data: Path, embedder: Any, seed: int = 0) -> dict[str, Any]:
    test_texts, test_truth = read(data / "test.csv")
    train_texts, train_truth = read(data / "train.csv")
    pick = np.random.default_rng(seed).choice(len(train_texts), DEV_SIZE, replace=False)
    dev_texts = [train_texts[i] for i in pick]
    dev_truth = [train_truth[i] for i in pick]
    started = time.perf_counter()
    dev_vectors = embedder.encode(dev_texts)
    test_vectors = embedder.encode(test_texts)
    embed_s = time.perf_counter() - started
    methods = []
    dev_grid = []
    for method, grid in GRID.items():
        best, best_ari = grid[0], -1.0
        for params in grid:
            result = score(dev_truth, cluster(method, dev_texts, dev_vectors, params))
            shown = params if isinstance(params, int) else params.model_dump()
            dev_grid.append({"method": method, "params": shown, **result})
            if result["ari"] > best_ari:
                best, best_ari = params, result["ari"]
        started = time.perf_counter()
        labels = cluster(method, test_texts, test_vectors, best)
        seconds = time.perf_counter() - started
        if method == "tfidf":
            name = f"tfidf-dbscan eps={best.eps} min_samples={best.min_samples} (the seed)"
        elif method == "hdbscan":
            name = f"embedding-hdbscan min_cluster_size={best}"
        else:
            name = f"embedding-agglomerative {best.linkage} t={best.distance_threshold} (default)"
        methods.append({"method": name, **score(test_truth, labels), "seconds": round(seconds, 2)})
    return {
        "texts": len(test_texts),
        "intents": len(set(test_truth)),
        "embedder": getattr(embedder, "name", "?"),
        "embed_seconds": round(embed_s, 1),
        "methods": methods,
        "dev_grid": dev_grid,
    }
