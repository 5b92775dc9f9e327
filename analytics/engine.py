"""The analytics core: synchronous, on one SQLite connection, no event loop.

``Analytics.run(conn, now)`` loads the window, refits the clusters when due, reassigns the
calls, and computes KPIs, the cluster report, repeat groups, churn scores and emerging issues
into a ``Snapshot``. The server runs it on its own database thread; the benchmark and the CLI
call it directly. Rendering (names, call ids) reads the database again only for the rows an
answer shows.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytics import churn as churn_mod
from analytics import clustering, customers, emerging, kpis, repeats
from analytics import store as st
from analytics.config import DAY_S, AnalyticsConfig
from analytics.issues import issue_keys
from analytics.records import CallFacts
from analytics.store import Frame, Names

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """Everything one analysis run computed, as arrays; rendered on request."""

    now: float
    frame: Frame
    model: clustering.ClusterModel | None
    flags: dict[str, np.ndarray]
    clv_by_call: np.ndarray
    profile_keys: np.ndarray
    profile_clv: np.ndarray
    profile_renewal: np.ndarray
    churn: churn_mod.ChurnScores
    repeat_groups: repeats.RepeatGroups
    emerging: list[emerging.EmergingIssue]
    qa: np.ndarray | None
    refit: bool
    timings: dict[str, float] = field(default_factory=dict)


class SqlNameBook:
    """Names for rendering, read through ``conn`` (only the keys an answer shows)."""

    def __init__(self, conn: sqlite3.Connection, names: Names, model: clustering.ClusterModel | None) -> None:
        self.conn = conn
        self.book = names
        self.model = model

    def name(self, key: int) -> str | None:
        if key < 0:
            return None
        return self.book.lookup(self.conn, [key]).get(key)

    def names(self, keys: Any) -> dict[int, str]:
        return self.book.lookup(self.conn, [int(k) for k in keys])

    def cluster(self, cluster_id: int) -> dict[str, Any]:
        info = self.model.info(cluster_id) if self.model is not None else {"cluster_id": cluster_id}
        return {k: info[k] for k in ("cluster_id", "label") if k in info}

    def call_ids(self, rows: Any) -> dict[int, str]:
        return st.call_ids_for(self.conn, [int(r) for r in rows])


class Analytics:
    def __init__(self, config: AnalyticsConfig | None = None) -> None:
        self.config = config or AnalyticsConfig()
        self.names = Names()
        self.model: clustering.ClusterModel | None = None
        self.model_loaded = False
        self.assigned_upto = 0  # rows up to here have been assigned by the current model

    # ------------------------------------------------------------------ model

    def load_model(self, conn: sqlite3.Connection) -> clustering.ClusterModel | None:
        if not self.model_loaded:
            model = clustering.load_model(conn)
            self.model = (
                model if model is not None and model.method == self.config.clustering.method else None
            )
            self.model_loaded = True
        return self.model

    def assign(self, facts: Sequence[CallFacts], vectors: np.ndarray | None) -> np.ndarray:
        """Cluster ids for new calls with the current model (-1 without one)."""
        model = self.model
        cfg = self.config.clustering
        if model is None or not facts:
            return np.full(len(facts), clustering.UNCLUSTERED, np.int64)
        if model.method == "tfidf" and model.space is not None:
            return model.assign(model.space.transform([f.summary for f in facts]), cfg.assign_min_similarity)
        if vectors is None or vectors.shape[1] != model.centroids.shape[1]:
            return np.full(len(facts), clustering.UNCLUSTERED, np.int64)
        return model.assign(vectors, cfg.assign_min_similarity)

    def ingest(self, conn: sqlite3.Connection, facts: Sequence[CallFacts], vectors: np.ndarray | None) -> int:
        self.load_model(conn)
        return st.insert_calls(conn, self.names, facts, vectors, self.assign(facts, vectors).tolist())

    def sample(self, frame: Frame, now: float, has: np.ndarray, seed: int = 0) -> np.ndarray:
        """Positions of the fit sample: recent calls over-represented so new issues are seen."""
        cfg = self.config.clustering
        rng = np.random.default_rng(seed)
        candidates = np.flatnonzero(has)
        if candidates.size <= cfg.fit_sample:
            return candidates
        recent = candidates[frame.ended_at[candidates] >= now - DAY_S]
        older = candidates[frame.ended_at[candidates] < now - DAY_S]
        n_recent = min(recent.size, int(cfg.fit_sample * cfg.recent_share))
        chosen = [rng.choice(recent, n_recent, replace=False)] if n_recent else []
        n_older = min(older.size, cfg.fit_sample - n_recent)
        if n_older:
            chosen.append(rng.choice(older, n_older, replace=False))
        rest = cfg.fit_sample - n_recent - n_older
        if rest > 0 and recent.size > n_recent:  # little history: fill from the recent calls
            left = np.setdiff1d(recent, chosen[0] if n_recent else np.zeros(0, np.int64))
            chosen.append(rng.choice(left, min(rest, left.size), replace=False))
        return np.sort(np.concatenate(chosen))

    def fit(self, conn: sqlite3.Connection, frame: Frame, now: float) -> clustering.ClusterModel | None:
        cfg = self.config.clustering
        method = cfg.method
        window = frame.ended_at >= now - self.config.window_days * DAY_S
        if method == "embedding":
            dim = st.vector_dim(conn)
            if dim is None:
                return None
            # Sample among calls with vectors: read the sample's vectors only.
            picked = self.sample(frame, now, window)
            positions, vectors = st.vectors_for(conn, frame.row[picked], dim)
            if vectors.shape[0] < cfg.min_cluster_size:
                return None
            rows = frame.row[picked][positions]
            texts_by_row = st.summaries_for(conn, rows.tolist())
            texts = [texts_by_row.get(int(r), "") for r in rows]
            matrix: Any = vectors
            space = None
        else:
            picked = self.sample(frame, now, window)
            texts_by_row = st.summaries_for(conn, frame.row[picked].tolist())
            texts = [texts_by_row.get(int(r), "") for r in frame.row[picked]]
            if sum(1 for t in texts if t.strip()) < cfg.min_cluster_size:
                return None
            space = clustering.TfidfSpace.fit(texts, cfg.tfidf.max_features)
            matrix = space.transform(texts)
        model = clustering.fit_model(
            method,
            matrix,
            texts,
            cfg,
            self.model,
            next_id=clustering.next_cluster_id(conn),
            space=space,
            now=now,
        )
        clustering.save_model(conn, model)
        self.model = model
        self.model_loaded = True
        return model

    def reassign(self, conn: sqlite3.Connection, frame: Frame) -> int:
        """Assign every call of the frame with the current model; store what changed."""
        model = self.model
        if model is None:
            return 0
        min_sim = self.config.clustering.assign_min_similarity
        new = np.full(len(frame), clustering.UNCLUSTERED, np.int64)
        if model.method == "tfidf" and model.space is not None:
            for positions, texts in st.iter_summaries(conn, frame.row):
                new[positions] = model.assign(model.space.transform(texts), min_sim)
        else:
            dim = int(model.centroids.shape[1])
            for positions, vectors in st.iter_vectors(conn, frame.row, dim):
                new[positions] = model.assign(vectors, min_sim)
        changed = np.flatnonzero(new != frame.cluster)
        if changed.size:
            st.set_clusters(conn, frame.row[changed], new[changed])
            frame.cluster[changed] = new[changed]
        return int(changed.size)

    def refit_due(self, frame: Frame, now: float) -> bool:
        model = self.model
        if model is None:
            return True
        if now - model.fitted_at >= self.config.clustering.refit_hours * 3600:
            return True
        return emerging.unclustered_jump(frame, now, self.config.emerging, self.config.tz)

    # ------------------------------------------------------------------ the run

    def run(
        self, conn: sqlite3.Connection, now: float | None = None, *, refit: bool | None = None
    ) -> Snapshot:
        now = time.time() if now is None else now
        cfg = self.config
        timings: dict[str, float] = {}
        started = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal started
            timings[name] = round(time.perf_counter() - started, 3)
            started = time.perf_counter()

        self.load_model(conn)
        frame = st.load_frame(conn, now - cfg.window_days * DAY_S, now)
        lap("load_s")
        refitted = False
        if refit if refit is not None else self.refit_due(frame, now):
            refitted = self.fit(conn, frame, now) is not None
            lap("fit_s")
            self.reassign(conn, frame)
            lap("assign_s")
        elif self.model is not None:
            # Calls ingested while the model was being (re)fitted, or by another process before it
            # had one: assign them once.
            stale = (frame.cluster < 0) & (frame.row > self.assigned_upto)
            if stale.any():
                part = frame.take(stale)
                self.reassign(conn, part)
                frame.cluster[stale] = part.cluster
                lap("assign_s")
        if len(frame):
            self.assigned_upto = max(self.assigned_upto, int(frame.row.max()))
        keys_all = np.unique(frame.customer[frame.customer >= 0])
        profile_clv, profile_renewal = customers.profile_columns(conn, keys_all)
        clv_by_call = _clv_by_call(frame, keys_all, profile_clv)
        lap("profiles_s")
        flags = kpis.call_flags(frame, cfg)
        lap("issues_s")
        groups = repeats.find_groups(
            frame, now, cfg.repeats, clv_by_call, keys=issue_keys(frame, cfg.repeats.same_issue)
        )
        lap("repeats_s")
        scores = churn_mod.score_customers(
            frame, now, cfg.churn, cfg.repeats, profile_clv, profile_renewal, keys_all, keys=flags["keys"]
        )
        lap("churn_s")
        issues = emerging.detect(frame, now, cfg.emerging, cfg.tz)
        lap("emerging_s")
        qa = kpis.qa_scores(conn, now - cfg.kpis.period_days * DAY_S, now)
        lap("qa_s")
        return Snapshot(
            now=now,
            frame=frame,
            model=self.model,
            flags=flags,
            clv_by_call=clv_by_call,
            profile_keys=keys_all,
            profile_clv=profile_clv,
            profile_renewal=profile_renewal,
            churn=scores,
            repeat_groups=groups,
            emerging=issues,
            qa=qa,
            refit=refitted,
            timings=timings,
        )

    # ------------------------------------------------------------------ answers

    def book(self, conn: sqlite3.Connection, snapshot: Snapshot) -> SqlNameBook:
        return SqlNameBook(conn, self.names, snapshot.model)

    def kpis(self, snapshot: Snapshot, period_days: float | None = None) -> dict[str, Any]:
        cfg = self.config
        out = kpis.kpis(snapshot.frame, snapshot.now, cfg, snapshot.flags, snapshot.qa, cfg.tz, period_days)
        since = snapshot.now - (period_days or cfg.kpis.period_days) * DAY_S
        report = kpis.cluster_report(
            snapshot.frame, snapshot.now, since, snapshot.model, snapshot.flags, cfg.kpis.top_clusters
        )
        out["top_clusters"] = report["top"]
        out["unclustered_share"] = report["unclustered_share"]
        out["churn"] = self.churn_summary(snapshot)
        out["computed_at"] = snapshot.now
        return out

    def clusters(
        self, snapshot: Snapshot, period_days: float | None = None, limit: int = 50
    ) -> dict[str, Any]:
        since = snapshot.now - (period_days or self.config.kpis.period_days) * DAY_S
        return kpis.cluster_report(snapshot.frame, snapshot.now, since, snapshot.model, snapshot.flags, limit)

    def repeats(
        self,
        conn: sqlite3.Connection,
        snapshot: Snapshot,
        *,
        lookback_days: float | None = None,
        threshold: int | None = None,
        same_issue: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        cfg = self.config.repeats
        changed = {
            k: v
            for k, v in {
                "lookback_days": lookback_days,
                "threshold": threshold,
                "same_issue": same_issue,
            }.items()
            if v is not None
        }
        config = cfg.model_copy(update=changed)
        groups = (
            snapshot.repeat_groups
            if not changed
            else repeats.find_groups(snapshot.frame, snapshot.now, config, snapshot.clv_by_call)
        )
        mixed = repeats.mixed_issue_groups(snapshot.frame, snapshot.now, config, snapshot.clv_by_call)
        return {
            "lookback_days": config.lookback_days,
            "threshold": config.threshold,
            "grouped_by": "issue" if config.same_issue else "category",
            "groups": len(groups.members),
            "calls": groups.total_calls,
            "seed_category_groups": mixed["category_groups"],
            "category_groups_mixing_issues": mixed["mixed_issue_groups"],
            "repeat_callers": repeats.render(
                groups, snapshot.frame, self.book(conn, snapshot), limit, offset
            ),
        }

    def churn_summary(self, snapshot: Snapshot) -> dict[str, Any]:
        urgency = snapshot.churn.urgency(self.config.churn)
        return {
            "customers_scored": len(snapshot.churn),
            "high": int((urgency == "high").sum()),
            "medium": int((urgency == "medium").sum()),
            "low": int((urgency == "low").sum()),
            "histogram": np.histogram(snapshot.churn.score, bins=np.linspace(0, 1, 11))[0].tolist(),
        }

    def churn(
        self,
        conn: sqlite3.Connection,
        snapshot: Snapshot,
        *,
        min_score: float = 0.0,
        urgency: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        scores = snapshot.churn
        cfg = self.config.churn
        levels = scores.urgency(cfg)
        mask = scores.score >= min_score
        if urgency is not None:
            mask &= levels == urgency
        index = np.flatnonzero(mask)
        index = index[np.lexsort((-np.nan_to_num(scores.clv[index]), -scores.score[index]))]
        page = index[offset : offset + limit]
        names = self.names.lookup(conn, scores.customer[page].tolist())
        return {
            **self.churn_summary(snapshot),
            "matching": int(index.size),
            "customers": [
                {"customer_id": names.get(int(scores.customer[i])), **churn_mod.explain(scores, int(i), cfg)}
                for i in page
            ],
        }

    def customer_churn(
        self, conn: sqlite3.Connection, snapshot: Snapshot, customer_id: str
    ) -> dict[str, Any] | None:
        key = self.names.key_of(conn, "customer", customer_id)
        scores = snapshot.churn
        if key is not None:
            hit = np.flatnonzero(scores.customer == key)
            if hit.size:
                return {
                    "customer_id": customer_id,
                    **churn_mod.explain(scores, int(hit[0]), self.config.churn),
                }
        return None

    def explain(self, snapshot: Snapshot, index: int) -> dict[str, Any]:
        return churn_mod.explain(snapshot.churn, index, self.config.churn)

    def retention_candidates(self, snapshot: Snapshot) -> list[tuple[int, float, float]]:
        """(customer key, score, CLV) of customers at or above the high threshold worth the floor."""
        scores = snapshot.churn
        floor = self.config.retention.clv_floor
        clv = np.nan_to_num(scores.clv, nan=0.0)
        hit = np.flatnonzero((scores.score >= self.config.churn.high) & (clv >= floor))
        hit = hit[np.argsort(-clv[hit], kind="stable")]
        return [(int(scores.customer[i]), float(scores.score[i]), float(clv[i])) for i in hit]


def _clv_by_call(frame: Frame, keys: np.ndarray, profile_clv: np.ndarray) -> np.ndarray:
    """Per call: the customer's profile CLV, else the CLV the call's record carried."""
    out = frame.clv.astype(np.float64).copy()
    if keys.size:
        at = np.searchsorted(keys, frame.customer)
        ok = (frame.customer >= 0) & (at < keys.size)
        ok[ok] &= keys[at[ok]] == frame.customer[ok]
        known = np.full(len(frame), np.nan)
        known[ok] = profile_clv[at[ok]]
        out = np.where(np.isnan(known), out, known)
    return out
