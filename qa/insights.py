"""Across calls: coaching patterns per agent x issue category x rubric category, and score
distributions per agent and team."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from qa.rubric import Rubric
from qa.scorecard import Evidence, Scorecard

HISTOGRAM_EDGES = list(range(0, 101, 10))


def coaching_patterns(
    cards: Sequence[Scorecard], rubric: Rubric, *, min_calls: int = 2, examples: int = 3
) -> list[dict[str, Any]]:
    """Where one agent keeps losing points: e.g. empathy on billing disputes, with example
    calls and the moment that decided each (for empathy, when the customer turned negative)."""
    names = {c.id: c.name for c in rubric.categories}
    weights = rubric.weights
    groups: dict[tuple[str, str], list[Scorecard]] = defaultdict(list)
    for card in cards:
        for category, score in card.category_scores.items():
            if score is not None and category in names:
                groups[(card.primary_intent or "unknown", category)].append(card)
    patterns = []
    for (intent, category), group in groups.items():
        scores = [card.category_scores[category] or 0.0 for card in group]
        low = [card for card in group if (card.category_scores[category] or 0.0) < rubric.category_pass_mark]
        if len(low) < min_calls or len(low) / len(group) < 0.5:
            continue
        missed = Counter(
            item.criterion
            for card in low
            for item in card.coaching_opportunities
            if item.category == category
        )
        mean = float(np.mean(scores))
        low.sort(key=lambda card: card.category_scores[category] or 0.0)
        patterns.append(
            {
                "issue_category": intent,
                "rubric_category": category,
                "message": (
                    f"loses {names[category].lower()} points on {intent.replace('_', ' ')} calls: "
                    f"{len(low)} of {len(group)} calls below {rubric.category_pass_mark:g} (mean {mean:.0f})"
                ),
                "calls": len(group),
                "calls_below": len(low),
                "mean_score": round(mean, 1),
                "points_lost_per_call": round(weights[category] * (100 - mean), 2),
                "missed_criteria": [{"criterion": c, "calls": n} for c, n in missed.most_common()],
                "tips": _tips(rubric, [c for c, _ in missed.most_common(2)]),
                "examples": [_example(card, category) for card in low[:examples]],
            }
        )
    patterns.sort(key=lambda p: (-p["points_lost_per_call"] * p["calls_below"], p["issue_category"]))
    return patterns


def _tips(rubric: Rubric, criteria: list[str]) -> list[str]:
    by_id = {crit.id: crit for _, crit in rubric.criteria()}
    return [by_id[c].coaching for c in criteria if c in by_id and by_id[c].coaching]


def _example(card: Scorecard, category: str) -> dict[str, Any]:
    failed = [item for item in card.coaching_opportunities if item.category == category]
    moment: Evidence | None = None
    reply: Evidence | None = None
    if category == "empathy" and card.turned_negative is not None:
        moment = card.turned_negative
        empathy = next((c for c in card.criteria if c.id == "acknowledges_feelings"), None)
        if empathy:
            reply = next(
                (e for e in empathy.evidence if e.speaker == "agent" and e.index > moment.index), None
            )
    elif failed and failed[0].evidence:
        moment = failed[0].evidence[0]
    return {
        "call_id": card.call_id,
        "ended_at": card.ended_at,
        "score": card.category_scores.get(category),
        "missed": [item.criterion for item in failed],
        "moment": moment.model_dump() if moment else None,
        "agent_reply": reply.model_dump() if reply else None,
    }


def distribution(scores: Iterable[float], bands: Sequence[float]) -> dict[str, Any]:
    values = np.asarray(list(scores), dtype=float)
    if values.size == 0:
        return {"calls": 0}
    histogram, _ = np.histogram(values, bins=HISTOGRAM_EDGES)
    band_counts = np.bincount(
        np.searchsorted(np.asarray(bands), values, side="right"), minlength=len(bands) + 1
    )
    return {
        "calls": int(values.size),
        "mean": round(float(values.mean()), 1),
        "std": round(float(values.std(ddof=1)), 1) if values.size > 1 else None,
        "p10": round(float(np.percentile(values, 10)), 1),
        "median": round(float(np.median(values)), 1),
        "p90": round(float(np.percentile(values, 90)), 1),
        "min": round(float(values.min()), 1),
        "max": round(float(values.max()), 1),
        "histogram": {
            f"{lo}-{lo + 10}": int(n) for lo, n in zip(HISTOGRAM_EDGES[:-1], histogram, strict=True)
        },
        "bands": [int(n) for n in band_counts],
    }


def distributions(rows: Sequence[tuple[str, str | None, float]], bands: Sequence[float]) -> dict[str, Any]:
    by_agent: dict[str, list[float]] = defaultdict(list)
    by_team: dict[str, list[float]] = defaultdict(list)
    for agent, team, score in rows:
        by_agent[agent].append(score)
        by_team[team or "(no team)"].append(score)
    return {
        "bands": {"cuts": list(bands)},
        "all": distribution((s for _, _, s in rows), bands),
        "teams": {team: distribution(scores, bands) for team, scores in sorted(by_team.items())},
        "agents": {agent: distribution(scores, bands) for agent, scores in sorted(by_agent.items())},
    }
