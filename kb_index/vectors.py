"""FAISS vector index with id mapping: exact (flat) for small collections, IVF above a size
threshold. Both accept single-article adds and removals without a rebuild.

IVF rather than HNSW because FAISS's HNSW cannot remove vectors, and a knowledge base that
changes daily needs removal. Not thread-safe by itself: ``KnowledgeIndex`` serialises access.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np

# One query at a time is the live pattern; FAISS's OpenMP threads spin on every call and made
# a 761-chunk flat search cost ~500 us instead of ~40 us on 2 cores, stealing CPU from the
# embedder. Bulk benchmarks may raise it (bench/kb_scale.py --threads).
faiss.omp_set_num_threads(int(os.environ.get("CALLASSIST_FAISS_THREADS", "1")))

IndexKind = Literal["flat", "ivf"]
TRAIN_POINTS_PER_LIST = 40  # FAISS warns below 39; more costs build time for little recall


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """What to build: ``kind='auto'`` means flat below ``ann_threshold`` chunks, IVF above."""

    kind: Literal["auto", "flat", "ivf"] = "auto"
    ann_threshold: int = 50_000
    nlist: int | None = None
    nprobe: int | None = None

    def resolve(self, count: int) -> IndexKind:
        if self.kind == "auto":
            return "ivf" if count >= self.ann_threshold else "flat"
        return self.kind


def default_nlist(count: int) -> int:
    """~4·sqrt(n) lists, as a power of two: 4096 at one million vectors."""
    return int(min(65_536, max(64, 2 ** round(math.log2(max(1, 4 * math.sqrt(count)))))))


def default_nprobe(nlist: int) -> int:
    """Lists probed per query: 1/32 of them (128 at nlist 4096), recall@10 ≥ 0.95 in bench/kb_scale.py."""
    return max(8, nlist // 32)


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _as_ids(ids: np.ndarray | list[int]) -> np.ndarray:
    return np.ascontiguousarray(ids, dtype=np.int64)


class VectorIndex:
    def __init__(self, index: faiss.Index, kind: IndexKind, nprobe: int | None = None) -> None:
        self._index = index
        self.kind = kind
        self.dim = int(index.d)
        self.nlist = int(faiss.extract_index_ivf(index).nlist) if kind == "ivf" else None
        self.nprobe = nprobe or (default_nprobe(self.nlist) if self.nlist else None)

    @classmethod
    def flat(cls, dim: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), "flat")

    @classmethod
    def ivf(cls, training: np.ndarray, *, nlist: int | None = None, nprobe: int | None = None) -> VectorIndex:
        """Train an IVF index on (a sample of) the vectors it will hold."""
        training = _as_matrix(training)
        count, dim = training.shape
        nlist = nlist or default_nlist(count)
        nlist = max(1, min(nlist, count // TRAIN_POINTS_PER_LIST or 1))
        sample = training
        limit = nlist * 64  # k-means cost grows with the sample; 64 points per list is plenty
        if count > limit:
            rng = np.random.default_rng(0)  # deterministic training for reproducible builds
            sample = training[rng.choice(count, limit, replace=False)]
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.min_points_per_centroid = 1  # small samples are fine; we sized nlist for them
        index.train(sample)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # O(1) removal by id
        return cls(index, "ivf", nprobe)

    @classmethod
    def build(cls, spec: IndexSpec, dim: int, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        kind = spec.resolve(len(ids))
        if kind == "ivf" and len(ids) >= TRAIN_POINTS_PER_LIST:
            index = cls.ivf(vectors, nlist=spec.nlist, nprobe=spec.nprobe)
        else:
            index = cls.flat(dim)
        if len(ids):
            index.add(ids, vectors)
        return index

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Add (or replace: FAISS ids are unique only if we remove first) vectors under ``ids``."""
        ids = _as_ids(ids)
        if len(ids):
            self.remove(ids)
            self._index.add_with_ids(_as_matrix(vectors), ids)

    def remove(self, ids: np.ndarray | list[int]) -> int:
        ids = _as_ids(ids)
        if not len(ids):
            return 0
        # IDSelectorArray lets IVF's hashtable direct map remove in O(ids) instead of scanning every list.
        return int(self._index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids))))

    def search(
        self, queries: np.ndarray, depth: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) per query row, best first; ids -1 pad short rows. ``allowed``: id filter."""
        queries = _as_matrix(queries)
        depth = max(1, min(depth, len(self)))
        selector = faiss.IDSelectorBatch(_as_ids(allowed)) if allowed is not None else None
        if self.kind == "ivf":
            params: faiss.SearchParameters = faiss.SearchParametersIVF(nprobe=self.nprobe or 1)
            if selector is not None:
                params.sel = selector
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        if len(self) == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        scores, ids = self._index.search(queries, depth, params=params)
        return scores, ids

    def reconstruct(self, ids: np.ndarray | list[int]) -> np.ndarray:
        return (
            np.vstack([self._index.reconstruct(int(i)) for i in ids])
            if len(ids)
            else np.zeros((0, self.dim), np.float32)
        )

    def to_bytes(self) -> bytes:
        return faiss.serialize_index(self._index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, nprobe: int | None = None) -> VectorIndex:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if isinstance(index, faiss.IndexIVF):
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
            return cls(index, "ivf", nprobe)
        return cls(index, "flat")
