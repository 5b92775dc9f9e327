"""The seed's two scores, factor by factor, with each factor's value, weight and contribution.

These scalar functions are the reference: the vectorised engine (``routing.engine``) must
agree with them to the last digit (a test checks it), and explanations are built from them.
"""

from __future__ import annotations

from typing import Any

from routing.config import RoutingConfig
from routing.model import AgentProfile, CallerProfile

Factors = dict[str, dict[str, Any]]


def _factor(raw: Any, value: float, weight: float) -> dict[str, Any]:
    return {"raw": raw, "value": round(value, 6), "weight": weight, "contribution": round(value * weight, 6)}


def escalated(caller: CallerProfile, config: RoutingConfig) -> bool:
    return caller.ivr_sentiment < config.escalation.sentiment_below


def _static_terms(caller: CallerProfile, config: RoutingConfig) -> dict[str, tuple[Any, float, float]]:
    w = config.priority
    severity = config.severity.get(caller.issue_category or "", config.default_severity)
    return {
        "clv": (caller.clv, min(caller.clv, config.clv_cap) / config.clv_cap, w.clv),
        "tier": (caller.tier, config.tiers.get(caller.tier, 0.0), w.tier),
        "severity": (caller.issue_category, severity, w.severity),
        "sentiment": (caller.ivr_sentiment, max(0.0, -caller.ivr_sentiment), w.sentiment),
        "repeat": (caller.repeat_caller, 1.0 if caller.repeat_caller else 0.0, w.repeat),
    }


def static_priority_factors(caller: CallerProfile, config: RoutingConfig) -> Factors:
    """The part of queue priority that does not change while the caller waits."""
    return {name: _factor(*terms) for name, terms in _static_terms(caller, config).items()}


def static_priority(caller: CallerProfile, config: RoutingConfig) -> float:
    return sum(value * weight for _, value, weight in _static_terms(caller, config).values())


def wait_terms(wait_s: float, config: RoutingConfig) -> tuple[float, float]:
    """(the seed's capped wait value in [0, 1], the aging score that never stops growing)."""
    wait_s = max(0.0, wait_s)
    return min(wait_s, config.wait_cap_s) / config.wait_cap_s, config.aging_rate * wait_s


def priority_factors(caller: CallerProfile, wait_s: float, config: RoutingConfig) -> Factors:
    factors = static_priority_factors(caller, config)
    wait_value, aging = wait_terms(wait_s, config)
    factors = {"wait": _factor(round(wait_s, 3), wait_value, config.priority.wait), **factors}
    factors["aging"] = {
        "raw": round(max(0.0, wait_s), 3),
        "value": round(aging, 6),
        "weight": 1.0,
        "contribution": round(aging, 6),
        "rate_per_s": round(config.aging_rate, 9),
    }
    return factors


def priority(caller: CallerProfile, wait_s: float, config: RoutingConfig) -> float:
    wait_value, aging = wait_terms(wait_s, config)
    return static_priority(caller, config) + config.priority.wait * wait_value + aging


def _match_terms(
    caller: CallerProfile, agent: AgentProfile, config: RoutingConfig
) -> dict[str, tuple[Any, float, float]]:
    w = config.match
    product = caller.product is not None and caller.product in agent.products
    special = caller.issue_category is not None and caller.issue_category in agent.specializations
    continuity = caller.previous_agent_id is not None and caller.previous_agent_id == agent.agent_id
    return {
        "product": (caller.product, 1.0 if product else 0.0, w.product),
        "specialization": (caller.issue_category, 1.0 if special else 0.0, w.specialization),
        "skill": (agent.skill_level, agent.skill_level / 5, w.skill),
        "csat": (agent.csat, agent.csat / 5, w.csat),
        "continuity": (caller.previous_agent_id, 1.0 if continuity else 0.0, w.continuity),
    }


def match_factors(caller: CallerProfile, agent: AgentProfile, config: RoutingConfig) -> Factors:
    return {name: _factor(*terms) for name, terms in _match_terms(caller, agent, config).items()}


def match(caller: CallerProfile, agent: AgentProfile, config: RoutingConfig) -> float:
    return sum(value * weight for _, value, weight in _match_terms(caller, agent, config).values())


def total(factors: Factors) -> float:
    return sum(f["contribution"] for f in factors.values())


def why(
    winner: Factors, runner_up: Factors | None, winner_name: str, runner_name: str | None, margin: float
) -> str:
    """One sentence: which factors put the winner ahead of the runner-up."""
    if runner_up is None:
        return f"{winner_name} was the only eligible candidate"
    gains = sorted(
        (
            (winner[k]["contribution"] - runner_up[k]["contribution"], k)
            for k in winner
            if k in runner_up and winner[k]["contribution"] - runner_up[k]["contribution"] > 1e-9
        ),
        reverse=True,
    )
    if margin <= 1e-9:
        return f"{winner_name} tied with {runner_name} on score and won the tie-break"
    parts = ", ".join(f"{name} +{gain:.3f}" for gain, name in gains[:3]) or "overall score"
    return f"{winner_name} beat {runner_name} by {margin:.3f} on {parts}"
