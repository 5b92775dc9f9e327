"""Emerging issues: a cluster whose share of today's calls jumps against its trailing baseline.

For each cluster (and, as a second lens, each top knowledge article): today's share p (calls so far today), the mean daily share p0 over the last
``baseline_days`` days. It is an emerging issue when all of these hold:

- at least ``min_calls`` calls of it today (a handful of calls proves nothing);
- p >= ``ratio`` x max(p0, ``share_floor``) (it at least doubled, by default);
- p - p0 >= ``min_increase`` (a jump from 0.1% to 0.3% is not worth a supervisor's attention);
- z = (p - p0') / sqrt(p0' (1 - p0') (1/n_today + 1/n_baseline)) >= ``z`` with p0' = max(p0,
  floor): the jump is not the noise of a small day or of a small baseline (two-proportion z).

The test runs on the calls so far today and, separately, on the last ``recent_hours`` of them
(an outage starting at 14:00 is not diluted by the morning's calls), so an analysis run every
hour flags an outage within hours of its start, not at the end of the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import numpy as np

from analytics.config import EmergingConfig
from analytics.store import Frame


@dataclass(frozen=True)
class EmergingIssue:
    basis: str  # "cluster" (semantic cluster of the summaries) or "article" (top KB article)
    group_id: int  # cluster id, or the article's name key
    article: int  # the article most shown on today's calls of the group (name key, -1 none)
    day: str
    calls_today: int
    total_today: int
    share: float
    baseline_share: float
    ratio: float
    z: float
    daily_shares: list[float]

    @property
    def cluster_id(self) -> int | None:
        return self.group_id if self.basis == "cluster" else None

    def payload(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "cluster_id": self.cluster_id,
            "day": self.day,
            "calls_today": self.calls_today,
            "total_today": self.total_today,
            "share": round(self.share, 4),
            "baseline_share": round(self.baseline_share, 4),
            "ratio": round(self.ratio, 2) if np.isfinite(self.ratio) else None,
            "z": round(self.z, 2),
            "daily_shares": [round(s, 4) for s in self.daily_shares],
        }


def _midnight(day: date, tz: tzinfo | None) -> float:
    # tz None: naive local time, whose .timestamp() follows the machine's DST rules.
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def local_day(ts: float, tz: tzinfo | None) -> date:
    return datetime.fromtimestamp(ts, tz).date()


def day_start(ts: float, tz: tzinfo | None) -> float:
    """Unix time of the local midnight that starts the day of ``ts``."""
    return _midnight(local_day(ts, tz), tz)


def day_label(ts: float, tz: tzinfo | None) -> str:
    return local_day(ts, tz).isoformat()


def day_starts(now: float, days: int, tz: tzinfo | None) -> list[float]:
    """Midnights of the ``days`` days before today, then today's (oldest first)."""
    today = local_day(now, tz)
    return [_midnight(today - timedelta(days=back), tz) for back in range(days, -1, -1)]


def detect(frame: Frame, now: float, config: EmergingConfig, tz: tzinfo | None) -> list[EmergingIssue]:
    """Clusters (and top knowledge articles) whose share of today's calls (up to ``now``) jumped.
    The article view is a second lens on the same calls: one outage is often told in several
    ways (several clusters), but retrieval maps most of them to the one outage article."""
    found = jumps(frame, frame.cluster, now, config, tz, "cluster")
    found += jumps(frame, frame.resolution, now, config, tz, "article")
    return sorted(found, key=lambda e: -e.z)


def jumps(
    frame: Frame, groups: np.ndarray, now: float, config: EmergingConfig, tz: tzinfo | None, basis: str
) -> list[EmergingIssue]:
    starts = day_starts(now, config.baseline_days, tz)
    edges = np.asarray([*starts, now])
    inside = (frame.ended_at >= edges[0]) & (frame.ended_at < now)
    t = frame.ended_at[inside]
    group = groups[inside]
    article = frame.resolution[inside]
    if t.size == 0:
        return []
    day = np.searchsorted(edges, t, side="right") - 1  # 0..baseline_days (today)
    ids = np.unique(group[group >= 0])
    if ids.size == 0:
        return []
    gi = np.searchsorted(ids, group)
    ok = group >= 0
    n_days = len(starts)
    counts = np.zeros((ids.size, n_days))
    np.add.at(counts, (gi[ok], day[ok]), 1)
    totals = np.bincount(day, minlength=n_days).astype(np.float64)
    shares = np.divide(counts, totals[None, :], out=np.zeros_like(counts), where=totals[None, :] > 0)
    base_days = totals[:-1] > 0
    n_today = totals[-1]
    if n_today == 0 or not base_days.any():
        return []
    p0 = shares[:, :-1][:, base_days].mean(axis=1)
    p0_floor = np.clip(p0, config.share_floor, 1 - config.share_floor)

    n_base = float(totals[:-1].sum())

    def test(n: np.ndarray, total: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = n / total if total else np.zeros_like(n)
        # Two-proportion z: the baseline is an estimate too (a small center's week is noisy).
        z = (p - p0_floor) / np.sqrt(p0_floor * (1 - p0_floor) * (1 / max(total, 1.0) + 1 / n_base))
        hit = (
            (n >= config.min_calls)
            & (p >= config.ratio * p0_floor)
            & (p - p0 >= config.min_increase)
            & (z >= config.z)
        )
        return hit, p, z

    today = day == n_days - 1
    hit, p, z = test(counts[:, -1], n_today)
    if config.recent_hours > 0:
        # The last few hours alone: an outage at 14:00 is not diluted by the morning's calls.
        recent = today & (t >= now - config.recent_hours * 3600)
        n_recent = np.bincount(gi[recent & ok], minlength=ids.size).astype(np.float64)
        hit_r, p_r, z_r = test(n_recent, float(recent.sum()))
        better = hit_r & (~hit | (z_r > z))
        hit |= hit_r
        p = np.where(better, p_r, p)
        z = np.where(better, z_r, z)
    label = day_label(now, tz)
    out = []
    for i in np.flatnonzero(hit):
        shown = article[today & ok & (gi == i)]
        shown = shown[shown >= 0]
        if shown.size:
            values, counts_shown = np.unique(shown, return_counts=True)
            main = int(values[np.argmax(counts_shown)])
        else:
            main = -1
        out.append(
            EmergingIssue(
                basis=basis,
                group_id=int(ids[i]),
                article=main,
                day=label,
                calls_today=int(counts[i, -1]),
                total_today=int(n_today),
                share=float(p[i]),
                baseline_share=float(p0[i]),
                ratio=float(p[i] / p0[i]) if p0[i] > 0 else float("inf"),
                z=float(z[i]),
                daily_shares=[float(s) for s in shares[i]],
            )
        )
    return out


def unclustered_jump(frame: Frame, now: float, config: EmergingConfig, tz: tzinfo | None) -> bool:
    """Today's calls that no cluster claims jumped: a new issue the model has not seen; refit."""
    starts = day_starts(now, config.baseline_days, tz)
    today = (frame.ended_at >= starts[-1]) & (frame.ended_at < now)
    before = (frame.ended_at >= starts[0]) & (frame.ended_at < starts[-1])
    if today.sum() < config.min_calls or before.sum() == 0:
        return False
    p = float((frame.cluster[today] < 0).mean())
    p0 = float((frame.cluster[before] < 0).mean())
    return (frame.cluster[today] < 0).sum() >= config.min_calls and p >= max(
        config.ratio * p0, p0 + config.min_increase
    )
