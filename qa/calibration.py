"""Agreement between the scorer and human reviewers, and the per-agent offsets it implies.

- ``calibrate_scores``: the seed's output (offset = mean(human - AI), std of the deltas,
  sample size, Pearson r);
- Cohen's kappa (scikit-learn; unweighted, linear, quadratic) on criterion pass/fail and on
  ordinal score bands;
- intraclass correlation, the six Shrout & Fleiss (1979) forms, from a two-way ANOVA.

Offsets are computed against the raw (uncalibrated) AI scores, so re-calibrating never
compounds an earlier offset.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import pearsonr
from sklearn.metrics import cohen_kappa_score

from qa.rubric import Rubric
from qa.scorecard import Scorecard
from qa.store import GLOBAL_AGENT

MIN_AGENT_SAMPLES = 3  # fewer calibrated calls than this: the agent gets the global offset
_TRUE = {"1", "pass", "passed", "yes", "y", "true", "t", "met"}
_FALSE = {"0", "fail", "failed", "no", "n", "false", "f", "not met"}


class CalibrationError(ValueError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return _r(pearsonr(a, b).statistic)


def calibrate_scores(ai_scores: Sequence[float], human_scores: Sequence[float]) -> dict[str, Any]:
    """The seed's calibration: how far (and how consistently) the AI sits from the humans."""
    if len(ai_scores) != len(human_scores):
        raise CalibrationError("ai_scores and human_scores differ in length")
    if not ai_scores:
        return {"offset": 0.0, "std": None, "sample_size": 0, "pearson": None}
    deltas = np.asarray(human_scores, dtype=float) - np.asarray(ai_scores, dtype=float)
    return {
        "offset": _r(float(deltas.mean()), 2),
        "std": _r(float(deltas.std(ddof=1)), 2) if len(deltas) > 1 else None,
        "sample_size": len(deltas),
        "pearson": pearson(list(ai_scores), list(human_scores)),
    }


def kappa(a: Sequence[Any], b: Sequence[Any], labels: Sequence[Any] | None = None) -> dict[str, Any]:
    """Cohen's kappa, unweighted and with linear and quadratic weights (ordinal labels)."""
    out: dict[str, Any] = {
        "n": len(a),
        "agreement": None,
        "unweighted": None,
        "linear": None,
        "quadratic": None,
    }
    if not a:
        return out
    out["agreement"] = _r(sum(1 for x, y in zip(a, b, strict=True) if x == y) / len(a))
    if len(set(a) | set(b)) < 2:
        return out  # one label only: kappa is undefined
    for name, weights in (("unweighted", None), ("linear", "linear"), ("quadratic", "quadratic")):
        out[name] = _r(cohen_kappa_score(a, b, labels=labels, weights=weights))
    return out


def icc(ratings: np.ndarray | Sequence[Sequence[float]]) -> dict[str, float | None]:
    """Shrout & Fleiss ICCs of an n targets x k judges matrix (no missing cells)."""
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise CalibrationError("ICC needs at least 2 targets rated by at least 2 judges")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    ss_error = ss_total - ss_rows - ss_cols
    bms = ss_rows / (n - 1)  # between targets
    wms = (ss_cols + ss_error) / (n * (k - 1))  # within targets
    jms = ss_cols / (k - 1)  # between judges
    ems = ss_error / ((n - 1) * (k - 1))  # residual

    def ratio(num: float, den: float) -> float | None:
        return _r(num / den) if den else None

    return {
        "ICC1": ratio(bms - wms, bms + (k - 1) * wms),
        "ICC2": ratio(bms - ems, bms + (k - 1) * ems + k * (jms - ems) / n),
        "ICC3": ratio(bms - ems, bms + (k - 1) * ems),
        "ICC1k": ratio(bms - wms, bms),
        "ICC2k": ratio(bms - ems, bms + (jms - ems) / n),
        "ICC3k": ratio(bms - ems, bms),
    }


def band(score: float, cuts: Sequence[float]) -> int:
    return sum(1 for cut in cuts if score >= cut)


# ---------------------------------------------------------------- human scores


@dataclass
class HumanRow:
    call_id: str
    agent_id: str
    overall_score: float
    categories: dict[str, float] = field(default_factory=dict)
    criteria: dict[str, bool] = field(default_factory=dict)


def read_human_scores(text: str, rubric: Rubric) -> list[HumanRow]:
    """Parse the reviewers' CSV: call_id,agent_id,overall_score plus optional columns named
    after rubric categories (0-100) and criteria (pass/fail, yes/no, 1/0)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in ("call_id", "agent_id", "overall_score") if c not in columns]
    if missing:
        raise CalibrationError(
            f"the CSV needs columns call_id,agent_id,overall_score; missing {missing}", missing[0]
        )
    categories = {c.id for c in rubric.categories}
    criteria = set(rubric.criterion_ids())
    unknown = [
        c for c in columns if c not in categories | criteria | {"call_id", "agent_id", "overall_score"}
    ]
    rows: list[HumanRow] = []
    seen: set[str] = set()
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        call_id = row.get("call_id", "")
        if not call_id:
            raise CalibrationError(f"line {line}: empty call_id", "call_id")
        if call_id in seen:
            raise CalibrationError(f"line {line}: call {call_id} appears twice", "call_id")
        seen.add(call_id)
        human = HumanRow(
            call_id, row.get("agent_id", ""), _score(row["overall_score"], line, "overall_score")
        )
        if not human.agent_id:
            raise CalibrationError(f"line {line}: empty agent_id", "agent_id")
        for name in categories & row.keys():
            if row[name] != "":
                human.categories[name] = _score(row[name], line, name)
        for name in criteria & row.keys():
            if row[name] != "":
                human.criteria[name] = _passfail(row[name], line, name, rubric.pass_mark)
        rows.append(human)
    if not rows:
        raise CalibrationError("the CSV has no rows")
    if unknown:
        # Columns we do not know are most likely typos of a category or criterion id.
        raise CalibrationError(
            f"unknown columns {unknown}: use rubric category ids {sorted(categories)} or criterion ids",
            unknown[0],
        )
    return rows


def _score(value: str, line: int, name: str) -> float:
    try:
        score = float(value)
    except ValueError:
        raise CalibrationError(f"line {line}: {name} must be a number 0-100, not {value!r}", name) from None
    if not 0 <= score <= 100 or not math.isfinite(score):
        raise CalibrationError(f"line {line}: {name} must be between 0 and 100", name)
    return score


def _passfail(value: str, line: int, name: str, pass_mark: float) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    try:
        number = float(value)
    except ValueError:
        raise CalibrationError(
            f"line {line}: {name} must be pass/fail, yes/no or 0..1, not {value!r}", name
        ) from None
    if not 0 <= number <= 1:
        raise CalibrationError(f"line {line}: {name} must be pass/fail, yes/no or 0..1", name)
    return number >= pass_mark


# ---------------------------------------------------------------- the report


def calibrate(
    rows: list[HumanRow],
    cards: dict[str, Scorecard],
    rubric: Rubric,
    *,
    min_agent_samples: int = MIN_AGENT_SAMPLES,
) -> dict[str, Any]:
    """Compare human rows with the AI scorecards of the same calls."""
    matched = [(row, cards[row.call_id]) for row in rows if row.call_id in cards]
    unmatched = [row.call_id for row in rows if row.call_id not in cards]
    ai = [card.raw_overall_score for _, card in matched]
    human = [row.overall_score for row, _ in matched]
    overall = calibrate_scores(ai, human)
    if len(matched) >= 2:
        overall["icc"] = icc(np.column_stack([ai, human]))
    else:
        overall["icc"] = None
    overall["kappa_bands"] = kappa(
        [band(s, rubric.bands) for s in ai],
        [band(s, rubric.bands) for s in human],
        labels=list(range(len(rubric.bands) + 1)),
    )
    overall["mean_absolute_error"] = (
        _r(float(np.mean(np.abs(np.subtract(human, ai)))), 2) if matched else None
    )

    by_agent: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row, card in matched:
        by_agent[row.agent_id].append((card.raw_overall_score, row.overall_score))
    agents = {}
    offsets = {GLOBAL_AGENT: {**overall_offset(overall)}} if matched else {}
    for agent, pairs in sorted(by_agent.items()):
        stats = calibrate_scores([a for a, _ in pairs], [h for _, h in pairs])
        stats["applied_offset"] = (
            stats["offset"] if stats["sample_size"] >= min_agent_samples else overall["offset"]
        )
        agents[agent] = stats
        if stats["sample_size"] >= min_agent_samples:
            offsets[agent] = overall_offset(stats)

    categories = {}
    for category in rubric.categories:
        pairs = [
            (card.category_scores.get(category.id), row.categories[category.id])
            for row, card in matched
            if category.id in row.categories and card.category_scores.get(category.id) is not None
        ]
        if not pairs:
            continue
        a, h = [p[0] for p in pairs], [p[1] for p in pairs]
        stats = calibrate_scores(a, h)
        stats["icc"] = icc(np.column_stack([a, h])) if len(pairs) >= 2 else None
        stats["kappa_pass_fail"] = kappa(
            [x >= rubric.category_pass_mark for x in a], [x >= rubric.category_pass_mark for x in h]
        )
        categories[category.id] = stats

    criteria = {}
    for criterion_id in rubric.criterion_ids():
        pairs = []
        for row, card in matched:
            result = next((c for c in card.criteria if c.id == criterion_id), None)
            if criterion_id in row.criteria and result is not None and result.passed is not None:
                pairs.append((result.passed, row.criteria[criterion_id]))
        if pairs:
            criteria[criterion_id] = kappa(
                [int(a) for a, _ in pairs], [int(h) for _, h in pairs], labels=[0, 1]
            )

    return {
        "sample_size": len(matched),
        "unmatched_calls": unmatched,
        "overall": overall,
        "agents": agents,
        "categories": categories,
        "criteria": criteria,
        "offsets": offsets,
        "min_agent_samples": min_agent_samples,
    }


def overall_offset(stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "offset": stats["offset"] or 0.0,
        "std": stats.get("std"),
        "sample_size": stats["sample_size"],
        "pearson": stats.get("pearson"),
    }


async def calibrate_stored(
    rows: list[HumanRow],
    store: Any,
    calls: Any,
    rubric: Rubric,
    *,
    scorer: Any = None,
    apply: bool = True,
    min_agent_samples: int = MIN_AGENT_SAMPLES,
) -> dict[str, Any]:
    """Calibrate against the stored scorecards. Calls reviewed by humans but not scored yet
    are scored now (when ``scorer`` is given and the call is stored); with ``apply`` the
    offsets replace the stored ones and apply to every later scorecard."""
    from qa.scorecard import with_offset

    cards = await store.get_many([row.call_id for row in rows])
    scored_now = []
    if scorer is not None:
        for row in rows:
            if row.call_id in cards:
                continue
            record = await calls.get_call(row.call_id)
            if record is None:
                continue
            card = await scorer.score(record)
            card = with_offset(card, await store.offset_for(card.agent_id))
            await store.save(card)
            cards[row.call_id] = card
            scored_now.append(row.call_id)
    report = calibrate(rows, cards, rubric, min_agent_samples=min_agent_samples)
    report["scored_now"] = scored_now
    report["applied"] = bool(apply and report["sample_size"])
    if report["applied"]:
        await store.save_offsets(report["offsets"])
    return report
