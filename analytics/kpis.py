"""Contact-center KPIs over a period, and the per-cluster report.

- First-contact resolution: a call is resolved at first contact when the same customer does not
  call again about the same issue (``analytics.issues``) within ``fcr_days``. A call can only be
  judged ``fcr_days`` after it ended, so FCR covers the period that ends ``fcr_days`` ago
  (``fcr_window``, ``fcr_eligible`` calls).
- AHT: mean call duration (talk time from the stored records; wrap-up is not in them).
- Service level: answered within ``service_level_s`` / answered, for calls with a routing wait
  (routing keeps no durable record of abandoned calls, so they cannot be counted).
- Repeat rate: calls that repeat an issue the same customer called about within the repeat
  lookback / calls with a known customer.
- QA: distribution and standard deviation of ``qa_scorecards.overall_score`` (0-100) when
  the QA package's table exists.
"""

from __future__ import annotations

import sqlite3
from datetime import tzinfo
from typing import Any

import numpy as np

from analytics.clustering import ClusterModel
from analytics.config import DAY_S, AnalyticsConfig
from analytics.emerging import day_label, day_starts
from analytics.issues import issue_keys, next_gap, previous_gap
from analytics.store import Frame, table_exists

QA_BINS = np.arange(0, 101, 10)


def _mean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    return round(float(values.mean()), 4) if values.size else None


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def call_flags(frame: Frame, config: AnalyticsConfig) -> dict[str, np.ndarray]:
    keys = issue_keys(frame, True, max(config.repeats.lookback_days, config.kpis.fcr_days))
    known = (frame.customer >= 0) & (keys >= 0)
    return {
        "keys": keys,
        "known": known,
        "repeat": known & (previous_gap(frame, keys) <= config.repeats.lookback_days * DAY_S),
        "recontact": known & (next_gap(frame, keys) <= config.kpis.fcr_days * DAY_S),
    }


def qa_scores(conn: sqlite3.Connection, since: float, until: float) -> np.ndarray | None:
    if not table_exists(conn, "qa_scorecards"):
        return None
    rows = conn.execute(
        "SELECT overall_score FROM qa_scorecards WHERE ended_at >= ? AND ended_at < ?", (since, until)
    ).fetchall()
    return np.asarray([float(r[0]) for r in rows], dtype=np.float64)


def qa_summary(scores: np.ndarray | None) -> dict[str, Any] | None:
    if scores is None:
        return None
    hist, _ = np.histogram(scores, bins=QA_BINS)
    return {
        "scorecards": int(scores.size),
        "mean": _mean(scores),
        "std": round(float(scores.std(ddof=1)), 4) if scores.size > 1 else None,
        "p10": round(float(np.percentile(scores, 10)), 2) if scores.size else None,
        "median": round(float(np.median(scores)), 2) if scores.size else None,
        "p90": round(float(np.percentile(scores, 90)), 2) if scores.size else None,
        "histogram": [
            {"from": int(lo), "to": int(hi), "count": int(c)}
            for lo, hi, c in zip(QA_BINS[:-1], QA_BINS[1:], hist, strict=True)
        ],
    }


def kpis(
    frame: Frame,
    now: float,
    config: AnalyticsConfig,
    flags: dict[str, np.ndarray],
    qa: np.ndarray | None,
    tz: tzinfo | None,
    period_days: float | None = None,
) -> dict[str, Any]:
    period = (period_days or config.kpis.period_days) * DAY_S
    since = now - period
    in_period = (frame.ended_at >= since) & (frame.ended_at < now)
    # A call is judged once fcr_days have passed: FCR covers the latest period that can be judged.
    fcr_until = now - config.kpis.fcr_days * DAY_S
    judged = (frame.ended_at >= fcr_until - period) & (frame.ended_at < fcr_until) & flags["known"]
    resolved = judged & ~flags["recontact"]
    known_customer = in_period & flags["known"]
    waited = in_period & ~np.isnan(frame.wait_s)
    within = waited & (frame.wait_s <= config.kpis.service_level_s)
    out: dict[str, Any] = {
        "period": {"since": since, "until": now, "days": round(period / DAY_S, 3)},
        "calls": int(in_period.sum()),
        "aht_s": _mean(frame.duration[in_period].astype(np.float64)),
        "fcr": _ratio(float(resolved.sum()), float(judged.sum())),
        "fcr_eligible": int(judged.sum()),
        "fcr_window": {"since": fcr_until - period, "until": fcr_until},
        "repeat_rate": _ratio(float((known_customer & flags["repeat"]).sum()), float(known_customer.sum())),
        "service_level": _ratio(float(within.sum()), float(waited.sum())),
        "service_level_threshold_s": config.kpis.service_level_s,
        "service_level_calls": int(waited.sum()),
        "avg_sentiment": _mean(frame.sentiment[in_period].astype(np.float64)),
        "cancellation_share": _ratio(float((in_period & frame.cancellation).sum()), float(in_period.sum())),
        "customers": int(np.unique(frame.customer[in_period & (frame.customer >= 0)]).size),
        "qa": qa_summary(qa),
    }
    out["daily"] = daily_series(frame, now, config, flags, tz, int(np.ceil(period / DAY_S)))
    return out


def daily_series(
    frame: Frame,
    now: float,
    config: AnalyticsConfig,
    flags: dict[str, np.ndarray],
    tz: tzinfo | None,
    days: int,
) -> list[dict[str, Any]]:
    starts = day_starts(now, max(days - 1, 0), tz)
    edges = np.asarray([*starts, now])
    inside = (frame.ended_at >= edges[0]) & (frame.ended_at < now)
    day = np.searchsorted(edges, frame.ended_at, side="right") - 1
    n = len(starts)

    def per_day(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        m = mask & inside
        return np.bincount(day[m], weights=None if weights is None else weights[m], minlength=n)[:n]

    calls = per_day(np.ones(len(frame), bool)).astype(np.float64)
    duration = per_day(np.ones(len(frame), bool), frame.duration.astype(np.float64))
    has_s = ~np.isnan(frame.sentiment)
    s_n = per_day(has_s)
    s_sum = per_day(has_s, np.nan_to_num(frame.sentiment.astype(np.float64)))
    fcr_cut = now - config.kpis.fcr_days * DAY_S
    judged = flags["known"] & (frame.ended_at <= fcr_cut)
    j_n = per_day(judged)
    j_ok = per_day(judged & ~flags["recontact"])
    k_n = per_day(flags["known"])
    r_n = per_day(flags["known"] & flags["repeat"])
    waited = ~np.isnan(frame.wait_s)
    w_n = per_day(waited)
    w_ok = per_day(waited & (frame.wait_s <= config.kpis.service_level_s))
    out = []
    for i, start in enumerate(starts):
        out.append(
            {
                "day": day_label(start + 1, tz),
                "calls": int(calls[i]),
                "aht_s": round(duration[i] / calls[i], 1) if calls[i] else None,
                "fcr": _ratio(j_ok[i], j_n[i]),
                "repeat_rate": _ratio(r_n[i], k_n[i]),
                "service_level": _ratio(w_ok[i], w_n[i]),
                "avg_sentiment": _ratio(s_sum[i], s_n[i]),
            }
        )
    return out


def cluster_report(
    frame: Frame,
    now: float,
    since: float,
    model: ClusterModel | None,
    flags: dict[str, np.ndarray],
    limit: int,
) -> dict[str, Any]:
    """Seed parity per cluster: size, top terms, sample summaries, AHT, average sentiment, share."""
    inside = (frame.ended_at >= since) & (frame.ended_at < now)
    total = int(inside.sum())
    cluster = frame.cluster[inside]
    ids, counts = np.unique(cluster, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    rows = []
    week = now - 7 * DAY_S
    for i in order:
        cid = int(ids[i])
        if cid < 0:
            continue
        member = inside & (frame.cluster == cid)
        recent = member & (frame.ended_at >= week)
        info = model.info(cid) if model is not None else {"cluster_id": cid, "label": str(cid)}
        rows.append(
            {
                **info,
                "size": int(counts[i]),
                "share": round(counts[i] / total, 4) if total else 0.0,
                "aht_s": _mean(frame.duration[member].astype(np.float64)),
                "avg_sentiment": _mean(frame.sentiment[member].astype(np.float64)),
                "repeat_rate": _ratio(
                    float((member & flags["repeat"]).sum()), float((member & flags["known"]).sum())
                ),
                "share_last_7d": _ratio(
                    float(recent.sum()), float((inside & (frame.ended_at >= week)).sum())
                ),
            }
        )
        if len(rows) == limit:
            break
    unclustered = int((cluster < 0).sum())
    return {
        "method": model.method if model is not None else None,
        "fitted_at": model.fitted_at if model is not None else None,
        "fit": model.stats if model is not None else None,
        "calls": total,
        "clusters": int((ids >= 0).sum()),
        "unclustered": unclustered,
        "unclustered_share": round(unclustered / total, 4) if total else 0.0,
        "top": rows,
    }
