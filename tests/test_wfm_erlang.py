"""Erlang B/C/A: the published example, exactness at any size, pyworkforce parity, brute force."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.linalg import expm

from wfm.erlang import (
    ServiceTarget,
    erlang_a_metrics,
    erlang_a_staffing,
    erlang_b,
    erlang_c,
    erlang_c_metrics,
    erlang_c_staffing,
    scheduled_headcount,
)
from wfm.errors import WfmInputError


def recursive_erlang_b(agents: int, load: float) -> float:
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


def test_published_example() -> None:
    """100 calls/30 min, AHT 180 s, 80/20 -> 14 agents, SL 0.8884, P(wait) 0.1741, ASA 7.84 s, occ 71.4%."""
    result = erlang_c_staffing(100, 180, 1800, ServiceTarget(service_level=0.8, answer_seconds=20))
    m = result.metrics
    assert result.agents == 14 and result.binding == "service_level"
    assert round(m.service_level, 4) == 0.8884
    assert round(m.prob_wait, 4) == 0.1741
    assert round(m.asa_seconds, 2) == 7.84
    assert round(m.occupancy, 3) == 0.714


def test_published_example_occupancy_and_shrinkage() -> None:
    """With an 85% occupancy cap and 30% shrinkage the example schedules 20 agents."""
    target = ServiceTarget(service_level=0.8, answer_seconds=20, max_occupancy=0.85)
    result = erlang_c_staffing(100, 180, 1800, target, shrinkage=0.3)
    assert (result.agents, result.scheduled) == (14, 20)


def test_eight_thousand_erlangs() -> None:
    """60,000 calls/30 min at AHT 240 s (8,000 Erlangs), 80/20 -> 8,017 agents, no overflow."""
    result = erlang_c_staffing(60_000, 240, 1800, ServiceTarget(0.8, 20))
    assert result.agents == 8017
    assert result.metrics.service_level >= 0.8
    assert erlang_c_metrics(8016, 60_000, 240, 1800, 20).service_level < 0.8


@pytest.mark.parametrize("load", [0.5, 7.3, 170.0, 171.5, 999.9, 4321.0, 10_000.0, 12_345.6])
def test_erlang_b_matches_the_recursion(load: float) -> None:
    """The O(1) gamma-function Erlang B equals the stable recursion below, at and above the load."""
    for agents in {1, max(1, int(load * 0.5)), int(load), int(load) + 1, int(load * 1.1) + 5}:
        assert erlang_b(agents, load) == pytest.approx(recursive_erlang_b(agents, load), rel=1e-9, abs=1e-300)


def test_erlang_c_is_finite_and_monotone_at_ten_thousand_erlangs() -> None:
    """P(wait) falls strictly as agents are added at 10,000 Erlangs and never leaves [0, 1]."""
    values = [erlang_c(n, 10_000.0) for n in range(10_001, 10_400, 7)]
    assert all(0 <= v <= 1 for v in values)
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert erlang_c(10_000, 10_000.0) == 1.0


def test_asa_target() -> None:
    """An ASA target gives the fewest agents whose ASA is within it."""
    target = ServiceTarget(service_level=None, asa_seconds=15)
    result = erlang_c_staffing(300, 240, 1800, target)
    assert result.binding == "asa" and result.metrics.asa_seconds <= 15
    assert erlang_c_metrics(result.agents - 1, 300, 240, 1800).asa_seconds > 15


def test_max_occupancy_binds_on_large_loads() -> None:
    """At large loads the occupancy cap, not the service level, sets the number."""
    result = erlang_c_staffing(6000, 240, 1800, ServiceTarget(0.8, 20, max_occupancy=0.85))
    assert result.binding == "max_occupancy" and result.agents == math.ceil(800 / 0.85)


def test_zero_volume_needs_zero_agents() -> None:
    """No calls, no agents (even with shrinkage), under Erlang C and Erlang A."""
    assert erlang_c_staffing(0, 180, 1800, shrinkage=0.3).scheduled == 0
    assert erlang_a_staffing(0, 180, 1800, 60, ServiceTarget(0.8, 20, max_abandon=0.05)).agents == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"calls": -1}, "calls"),
        ({"aht_seconds": 0}, "aht_seconds"),
        ({"calls": float("nan")}, "calls"),
        ({"shrinkage": 1.0}, "shrinkage"),
    ],
)
def test_bad_inputs_name_the_field(kwargs: dict[str, float], field: str) -> None:
    """Negative volume, AHT 0, NaN and shrinkage 100% are rejected with the field named."""
    args = {"calls": 100, "aht_seconds": 180, "interval_seconds": 1800, **kwargs}
    with pytest.raises(WfmInputError) as info:
        erlang_c_staffing(**args)
    assert info.value.field == field


@pytest.mark.parametrize("level", [0.0, 1.0, -0.2, 1.5])
def test_service_level_target_outside_zero_one(level: float) -> None:
    """Service-level targets must lie strictly between 0 and 1."""
    with pytest.raises(WfmInputError, match="strictly between 0 and 1") as info:
        ServiceTarget(service_level=level)
    assert info.value.field == "service_level"


def test_abandonment_cap_needs_erlang_a() -> None:
    """An abandonment cap under Erlang C is an error, not silently ignored."""
    with pytest.raises(WfmInputError, match="Erlang A"):
        erlang_c_staffing(100, 180, 1800, ServiceTarget(0.8, 20, max_abandon=0.05))


def test_scheduled_headcount() -> None:
    """Scheduled = ceil(agents / (1 - shrinkage)), exact at round numbers."""
    assert scheduled_headcount(14, 0.3) == 20
    assert scheduled_headcount(7, 0.3) == 10
    assert scheduled_headcount(0, 0.3) == 0


# ---------------------------------------------------------------- pyworkforce parity

GRID = [(calls, aht) for calls in (8, 60, 100, 250, 640, 1500, 4000) for aht in (150, 300)]


@pytest.mark.parametrize(("calls", "aht"), GRID)
@pytest.mark.parametrize("level", [0.8, 0.9])
def test_matches_pyworkforce(calls: int, aht: int, level: float) -> None:
    """Agents, service level, P(wait), occupancy and scheduled positions equal pyworkforce's ErlangC."""
    from pyworkforce.queuing import ErlangC

    reference = ErlangC(transactions=calls, aht=aht / 60, asa=20 / 60, interval=30, shrinkage=0.3)
    expected = reference.required_positions(service_level=level, max_occupancy=0.85)
    ours = erlang_c_staffing(calls, aht, 1800, ServiceTarget(level, 20, max_occupancy=0.85), shrinkage=0.3)
    assert ours.agents == expected["raw_positions"]
    exact = math.ceil(Fraction(ours.agents) / Fraction(7, 10))
    assert ours.scheduled == exact
    # pyworkforce's float ceil(21 / 0.7) = ceil(30.000000000000004) = 31 over-schedules by one.
    assert expected["positions"] in (exact, exact + 1)
    assert ours.metrics.service_level == pytest.approx(expected["service_level"], abs=1e-9)
    assert ours.metrics.prob_wait == pytest.approx(expected["waiting_probability"], abs=1e-9)
    assert ours.metrics.occupancy == pytest.approx(expected["occupancy"], abs=1e-12)


# ---------------------------------------------------------------- Erlang A


def brute_force_erlang_a(
    agents: int, lam: float, mu: float, theta: float, t: float, cap: int = 250
) -> dict[str, float]:
    """Truncated birth-death chain + a per-caller absorbing chain solved with a matrix exponential."""
    size = agents + cap
    q = np.zeros((size, size))
    for j in range(size):
        if j + 1 < size:
            q[j, j + 1] = lam
        if j > 0:
            q[j, j - 1] = min(j, agents) * mu + max(0, j - agents) * theta
        q[j, j] = -q[j].sum()
    a = np.vstack([q.T, np.ones(size)])
    pi = np.linalg.lstsq(a, np.r_[np.zeros(size), 1.0], rcond=None)[0]
    prob_wait = pi[agents:].sum()
    queue = sum(pi[j] * (j - agents) for j in range(agents, size))
    # A tagged caller with k ahead: states k..0 waiting, then served or abandoned (absorbing).
    served, abandoned = cap + 1, cap + 2
    g = np.zeros((cap + 3, cap + 3))
    for k in range(cap + 1):
        g[k, k - 1 if k > 0 else served] += agents * mu + k * theta
        g[k, abandoned] += theta
        g[k, k] = -(agents * mu + (k + 1) * theta)
    by_t = expm(g * t)[: cap + 1, served]
    answered = pi[:agents].sum() + sum(pi[agents + k] * by_t[k] for k in range(cap))
    return {"prob_wait": prob_wait, "prob_abandon": theta * queue / lam, "service_level": answered}


@pytest.mark.parametrize(
    ("agents", "calls", "aht", "patience"),
    [(5, 120, 120, 60), (8, 200, 150, 200), (4, 150, 180, 90), (12, 200, 180, 30)],
)
def test_erlang_a_matches_brute_force(agents: int, calls: float, aht: float, patience: float) -> None:
    """Closed-form Erlang A equals the numerically solved chain (including overloaded cases)."""
    ours = erlang_a_metrics(agents, calls, aht, 1800, patience, answer_seconds=20)
    truth = brute_force_erlang_a(agents, calls / 1800, 1 / aht, 1 / patience, 20)
    assert ours.prob_wait == pytest.approx(truth["prob_wait"], abs=1e-8)
    assert ours.prob_abandon == pytest.approx(truth["prob_abandon"], abs=1e-8)
    assert ours.service_level == pytest.approx(truth["service_level"], abs=1e-8)
    assert ours.mean_wait_seconds == pytest.approx(ours.prob_abandon * patience)


def test_erlang_a_tends_to_erlang_c_with_infinite_patience() -> None:
    """With very patient callers Erlang A reproduces the Erlang C example."""
    a = erlang_a_metrics(14, 100, 180, 1800, patience_seconds=1e9, answer_seconds=20)
    c = erlang_c_metrics(14, 100, 180, 1800, 20)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-6)
    assert a.prob_wait == pytest.approx(c.prob_wait, abs=1e-6)
    assert a.asa_seconds == pytest.approx(c.asa_seconds, rel=1e-4)


def test_erlang_a_staffing_meets_service_level_and_abandon_cap() -> None:
    """Staffing under Erlang A is the fewest agents meeting both the SL and the abandonment cap."""
    target = ServiceTarget(0.8, 20, max_abandon=0.01)
    result = erlang_a_staffing(100, 180, 1800, 120, target)
    m = result.metrics
    assert m.service_level >= 0.8 and m.prob_abandon <= 0.01
    before = erlang_a_metrics(result.agents - 1, 100, 180, 1800, 120, 20)
    assert before.service_level < 0.8 or before.prob_abandon > 0.01
    assert result.binding == "abandon"


def test_erlang_a_at_large_scale_and_overload() -> None:
    """8,000 Erlangs with impatient callers: stable numbers, fewer agents than Erlang C needs."""
    result = erlang_a_staffing(60_000, 240, 1800, 120, ServiceTarget(0.8, 20, max_abandon=0.02))
    assert 7_000 < result.agents < 8_017 and result.metrics.prob_abandon <= 0.02
    overloaded = erlang_a_metrics(5_000, 60_000, 240, 1800, 120)
    assert overloaded.prob_abandon == pytest.approx(1 - 5_000 / 8_000, abs=1e-6)
    assert math.isfinite(overloaded.asa_seconds)
