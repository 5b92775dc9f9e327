"""Churn propensity from call patterns: the seed's five factors, each with its value shown.

| factor | value | strength in [0, 1] |
|---|---|---|
| call-frequency acceleration | calls/day in the last ``recent_days`` / calls/day in the ``baseline_days`` before (a customer with no earlier calls counts as one) | (ratio - 1) / (``acceleration_full`` - 1), 0 below ``min_recent_calls`` recent calls |
| negative sentiment | mean customer sentiment of the calls in ``window_days`` | mean / ``sentiment_full`` (0 when not negative) |
| unresolved repeats | calls in ``window_days`` that repeat an issue the customer called about within the repeat lookback | repeats / ``repeats_full`` |
| cancellation intent | calls in ``window_days`` with cancellation intent | 1 if any |
| renewal soon | days until the contract renewal date | 1 within ``renewal_days`` |

score = sum(weight x strength) / sum(weights); urgency high at 0.7, medium at 0.4 (the seed's).
Everything is computed for every customer at once with ``np.bincount``; the explanation is built
only for the customers a caller asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.config import DAY_S, ChurnConfig, RepeatConfig
from analytics.issues import issue_keys, previous_gap
from analytics.store import Frame

FACTORS = (
    "call_acceleration",
    "negative_sentiment",
    "unresolved_repeats",
    "cancellation_intent",
    "renewal_soon",
)

ACTIONS = {
    "high": "Immediate retention call from a retention specialist: own the open issue end to end and "
    "make a retention offer matched to the customer's value.",
    "medium": "Proactive outreach within 48 hours: follow up on the open issue and confirm it is fixed.",
    "low": "No outreach: keep monitoring.",
}
FACTOR_ACTIONS = {
    "call_acceleration": "Find out why contacts are rising: review the last calls for a problem nobody closed.",
    "negative_sentiment": "Apologise for the recent experience; consider a goodwill credit.",
    "unresolved_repeats": "Escalate the repeated issue to a case owner with a fix date; stop the customer having to call again.",
    "cancellation_intent": "Present the retention offers the customer qualifies for before the cancellation goes through.",
    "renewal_soon": "Offer the renewal deal now, before the renewal date.",
}


@dataclass
class ChurnScores:
    """Per active customer (``customer`` = name keys), every factor's value and strength."""

    customer: np.ndarray
    score: np.ndarray
    values: dict[str, np.ndarray]
    strengths: dict[str, np.ndarray]
    calls: np.ndarray
    clv: np.ndarray
    last_call: np.ndarray

    def __len__(self) -> int:
        return int(self.customer.size)

    def urgency(self, config: ChurnConfig) -> np.ndarray:
        return np.where(
            self.score >= config.high, "high", np.where(self.score >= config.medium, "medium", "low")
        )


def score_customers(
    frame: Frame,
    now: float,
    config: ChurnConfig,
    repeats: RepeatConfig,
    profile_clv: np.ndarray,
    profile_renewal: np.ndarray,
    profile_keys: np.ndarray,
    *,
    keys: np.ndarray | None = None,
) -> ChurnScores:
    """Scores of every customer with a call in the last ``window_days`` before ``now``.
    ``profile_*`` are aligned arrays (customer key -> CLV, renewal unix time; NaN unknown)."""
    seen = (frame.customer >= 0) & (frame.ended_at < now)
    keys = issue_keys(frame, repeats.same_issue, repeats.lookback_days) if keys is None else keys
    t = frame.ended_at
    window = seen & (t >= now - config.window_days * DAY_S)
    active = np.unique(frame.customer[window])
    n = active.size
    if n == 0:
        empty = np.zeros(0)
        return ChurnScores(
            customer=active,
            score=empty,
            values=dict.fromkeys((*FACTORS, "recent_calls", "baseline_calls"), empty),
            strengths=dict.fromkeys(FACTORS, empty),
            calls=empty,
            clv=empty,
            last_call=empty,
        )
    code = np.searchsorted(active, frame.customer)
    code = np.where(seen & (code < n) & (active[np.minimum(code, max(n - 1, 0))] == frame.customer), code, -1)
    known = code >= 0

    def count(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        m = mask & known
        return np.bincount(code[m], weights=None if weights is None else weights[m], minlength=n)

    recent_mask = t >= now - config.recent_days * DAY_S
    base_mask = (t < now - config.recent_days * DAY_S) & (
        t >= now - (config.recent_days + config.baseline_days) * DAY_S
    )
    recent = count(recent_mask).astype(np.float64)
    baseline = count(base_mask).astype(np.float64)
    ratio = (recent / config.recent_days) / (np.maximum(baseline, 1.0) / config.baseline_days)
    accel = np.clip((ratio - 1.0) / (config.acceleration_full - 1.0), 0.0, 1.0)
    accel[recent < config.min_recent_calls] = 0.0

    in_window = t >= now - config.window_days * DAY_S
    has_sentiment = ~np.isnan(frame.sentiment)
    sentiment_n = count(in_window & has_sentiment)
    sentiment_sum = count(in_window & has_sentiment, np.nan_to_num(frame.sentiment.astype(np.float64)))
    mean_sentiment = np.divide(sentiment_sum, sentiment_n, out=np.full(n, np.nan), where=sentiment_n > 0)
    negative = np.clip(np.nan_to_num(mean_sentiment, nan=0.0) / config.sentiment_full, 0.0, 1.0)

    repeat_call = previous_gap(frame, keys) <= repeats.lookback_days * DAY_S
    unresolved = count(in_window & repeat_call).astype(np.float64)
    repeats_strength = np.clip(unresolved / config.repeats_full, 0.0, 1.0)

    cancellations = count(in_window & frame.cancellation).astype(np.float64)
    cancel_strength = (cancellations > 0).astype(np.float64)

    clv, renewal = _profile_for(active, profile_keys, profile_clv, profile_renewal)
    last_clv = _last_value(frame.clv, code, known & ~np.isnan(frame.clv), t, n)
    clv = np.where(np.isnan(clv), last_clv, clv)
    days_to_renewal = (renewal - now) / DAY_S
    renewal_strength = ((days_to_renewal >= 0) & (days_to_renewal <= config.renewal_days)).astype(np.float64)

    strengths = {
        "call_acceleration": accel,
        "negative_sentiment": negative,
        "unresolved_repeats": repeats_strength,
        "cancellation_intent": cancel_strength,
        "renewal_soon": renewal_strength,
    }
    weights = config.weights.model_dump()
    total = sum(weights.values()) or 1.0
    score = sum(weights[f] * strengths[f] for f in FACTORS) / total
    last_call = np.full(n, -np.inf)
    np.maximum.at(last_call, code[known], t[known])
    return ChurnScores(
        customer=active,
        score=np.round(score, 6),
        values={
            "call_acceleration": np.round(ratio, 3),
            "recent_calls": recent,
            "baseline_calls": baseline,
            "negative_sentiment": mean_sentiment,
            "unresolved_repeats": unresolved,
            "cancellation_intent": cancellations,
            "renewal_soon": days_to_renewal,
        },
        strengths=strengths,
        calls=count(in_window),
        clv=clv,
        last_call=last_call,
    )


def _profile_for(
    active: np.ndarray, keys: np.ndarray, clv: np.ndarray, renewal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    out_clv = np.full(active.size, np.nan)
    out_renewal = np.full(active.size, np.nan)
    if keys.size == 0 or active.size == 0:
        return out_clv, out_renewal
    order = np.argsort(keys)
    at = np.searchsorted(keys[order], active)
    ok = (at < keys.size) & (keys[order][np.minimum(at, keys.size - 1)] == active)
    out_clv[ok] = clv[order][at[ok]]
    out_renewal[ok] = renewal[order][at[ok]]
    return out_clv, out_renewal


def _last_value(values: np.ndarray, code: np.ndarray, mask: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    """The value of each customer's latest call where ``mask`` holds (NaN if none)."""
    out = np.full(n, np.nan)
    index = np.flatnonzero(mask)
    if index.size:
        order = index[np.argsort(t[index], kind="stable")]
        out[code[order]] = values[order]  # later calls overwrite earlier ones
    return out


def explain(scores: ChurnScores, i: int, config: ChurnConfig) -> dict[str, Any]:
    """One customer's score with every factor's value, strength, weight and contribution."""
    weights = config.weights.model_dump()
    total = sum(weights.values()) or 1.0
    v = scores.values
    details = {
        "call_acceleration": {
            "value": _num(v["call_acceleration"][i], 2),
            "detail": f"{int(v['recent_calls'][i])} calls in the last {config.recent_days:g} days vs "
            f"{int(v['baseline_calls'][i])} in the {config.baseline_days:g} days before",
        },
        "negative_sentiment": {
            "value": _num(v["negative_sentiment"][i], 3),
            "detail": f"mean customer sentiment over {config.window_days:g} days (-1..1)",
        },
        "unresolved_repeats": {
            "value": int(v["unresolved_repeats"][i]),
            "detail": f"calls in {config.window_days:g} days repeating an issue the customer had already called about",
        },
        "cancellation_intent": {
            "value": int(v["cancellation_intent"][i]),
            "detail": f"calls in {config.window_days:g} days with cancellation intent",
        },
        "renewal_soon": {
            "value": _num(v["renewal_soon"][i], 1),
            "detail": "days until the renewal date"
            if not np.isnan(v["renewal_soon"][i])
            else "renewal date unknown",
        },
    }
    factors = []
    for name in FACTORS:
        strength = float(scores.strengths[name][i])
        factors.append(
            {
                "factor": name,
                **details[name],
                "strength": round(strength, 4),
                "weight": weights[name],
                "contribution": round(weights[name] * strength / total, 4),
            }
        )
    score = float(scores.score[i])
    urgency = "high" if score >= config.high else "medium" if score >= config.medium else "low"
    actions = [ACTIONS[urgency]]
    if urgency != "low":
        ranked = sorted((f for f in factors if f["strength"] > 0), key=lambda f: -f["contribution"])
        actions += [FACTOR_ACTIONS[f["factor"]] for f in ranked]
    return {
        "score": round(score, 4),
        "urgency": urgency,
        "factors": factors,
        "recommended_actions": actions,
        "calls_in_window": int(scores.calls[i]),
        "clv": _num(scores.clv[i], 2),
        "last_call": _num(scores.last_call[i], 3),
    }


def _num(value: float, digits: int = 4) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)
