"""Repeat callers (seed parity, plus the same-issue check).

The seed: a customer who called ``threshold`` times or more about one issue category within
the last ``lookback_days`` is a repeat caller; each group lists first and last call, the
agents involved, the resolutions attempted and the customer's CLV, highest CLV first.

Beyond the seed, the group key is the issue (semantic cluster, else intent), so two calls under
one category label about different problems are not a repeat; the answer also says how many of
the seed's category groups were about more than one issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from analytics.config import DAY_S, RepeatConfig
from analytics.issues import NO_ISSUE, group_order, issue_keys
from analytics.store import Frame


class NameBook(Protocol):
    def name(self, key: int) -> str | None: ...

    def names(self, keys: Any) -> dict[int, str]: ...

    def cluster(self, cluster_id: int) -> dict[str, Any]: ...

    def call_ids(self, rows: Any) -> dict[int, str]: ...


@dataclass
class RepeatGroups:
    """Groups as index arrays into the frame (``members[i]`` = the calls of group i)."""

    customer: np.ndarray
    key: np.ndarray
    calls: np.ndarray
    clv: np.ndarray
    members: list[np.ndarray]
    total_calls: int


def find_groups(
    frame: Frame,
    now: float,
    config: RepeatConfig,
    clv_by_call: np.ndarray,
    *,
    same_issue: bool | None = None,
    keys: np.ndarray | None = None,
) -> RepeatGroups:
    same = config.same_issue if same_issue is None else same_issue
    keys = issue_keys(frame, same, config.lookback_days) if keys is None else keys
    inside = (
        (frame.ended_at >= now - config.lookback_days * DAY_S)
        & (frame.ended_at < now)
        & (frame.customer >= 0)
        & (keys != NO_ISSUE)
    )
    index = np.flatnonzero(inside)
    sub = frame.take(inside)
    order = group_order(sub, keys[inside])
    c, k = sub.customer[order], keys[inside][order]
    boundary = np.ones(order.size, dtype=bool)
    boundary[1:] = (c[1:] != c[:-1]) | (k[1:] != k[:-1])
    starts = np.flatnonzero(boundary)
    counts = np.diff(np.append(starts, order.size))
    chosen = np.flatnonzero(counts >= config.threshold)
    members = [index[order[starts[g] : starts[g] + counts[g]]] for g in chosen]
    # CLV: the customer's profile (or the latest CLV a call carried), 0 if unknown.
    clv = np.asarray([np.nan_to_num(clv_by_call[m[-1]], nan=0.0) for m in members], dtype=np.float64)
    calls = counts[chosen]
    rank = np.lexsort((-calls, -clv)) if chosen.size else np.zeros(0, dtype=np.int64)
    return RepeatGroups(
        customer=c[starts[chosen]][rank] if chosen.size else np.zeros(0, np.int64),
        key=k[starts[chosen]][rank] if chosen.size else np.zeros(0, np.int64),
        calls=calls[rank],
        clv=clv[rank],
        members=[members[i] for i in rank],
        total_calls=int(calls.sum()),
    )


def mixed_issue_groups(
    frame: Frame, now: float, config: RepeatConfig, clv_by_call: np.ndarray
) -> dict[str, int]:
    """The seed's category groups, and how many of them mix different issues."""
    by_category = find_groups(frame, now, config, clv_by_call, same_issue=False)
    issue = issue_keys(frame, True, config.lookback_days)
    mixed = sum(1 for m in by_category.members if np.unique(issue[m]).size > 1)
    return {"category_groups": len(by_category.members), "mixed_issue_groups": mixed}


def _mode(values: np.ndarray) -> int:
    values = values[values >= 0]
    if values.size == 0:
        return -1
    ids, counts = np.unique(values, return_counts=True)
    return int(ids[np.argmax(counts)])


def render(
    groups: RepeatGroups, frame: Frame, book: NameBook, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    out = []
    window = slice(offset, offset + limit)
    members = groups.members[window]
    rows = np.concatenate([frame.row[m] for m in members]) if members else np.zeros(0, np.int64)
    call_ids = book.call_ids(rows)
    for customer, calls, clv, member in zip(
        groups.customer[window],
        groups.calls[window],
        groups.clv[window],
        members,
        strict=True,
    ):
        agents = list(dict.fromkeys(book.name(int(a)) for a in frame.agent[member]))
        resolutions = [book.name(int(r)) for r in frame.resolution[member] if r >= 0]
        categories = [book.name(int(c)) for c in frame.category[member] if c >= 0]
        category = max(set(categories), key=categories.count) if categories else None
        cluster = _mode(frame.cluster[member])
        article = _mode(frame.resolution[member])
        issue = book.cluster(cluster) if cluster >= 0 else {"cluster_id": None, "label": category}
        out.append(
            {
                "customer_id": book.name(int(customer)),
                "issue": {**issue, "article": book.name(article) if article >= 0 else None},
                "category": category,
                "calls": int(calls),
                "first_call": float(frame.ended_at[member[0]]),
                "last_call": float(frame.ended_at[member[-1]]),
                "agents": [a for a in agents if a],
                "resolutions_attempted": list(dict.fromkeys(r for r in resolutions if r)),
                "clv": round(float(clv), 2),
                "call_ids": [call_ids.get(int(r)) for r in frame.row[member]],
            }
        )
    return out
