"""Queueing math for staffing: Erlang B, Erlang C (M/M/n) and Erlang A (M/M/n+M), exact and
numerically stable at any size.

The textbook Erlang C sums ``A**k / k!``, which overflows a float above ~170 Erlangs. Here the
Erlang-B blocking probability comes from the Poisson identity ``B(n, a) = pmf(n) / cdf(n)`` evaluated
with log-gamma and the regularised incomplete gamma function (O(1) per call, exact to ~1e-13 relative),
falling back to the stable forward recursion ``B(k) = a B(k-1) / (k + a B(k-1))`` in the one regime
where the cdf underflows (n far below a). Staffing searches start at ``floor(a) + 1`` and step with
the same recursion, so 8,000 Erlangs costs a few dozen float operations, not 8,000 factorials.

Erlang A adds exponential patience (mean ``patience_seconds``). With ``x = n mu / theta`` and
``y = lambda / theta`` every measure is closed form in ``A(x, y) = x e^y y^-x gamma(x, y)``
(Mandelbaum & Zeltyn; the service-level term is derived in docs/wfm.md), computed in log space.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy import integrate, special

from wfm.errors import WfmInputError

# Below this the regularised gamma value is too close to underflow to trust its log.
_TINY = 1e-280
# Staffing searches never go beyond this many agents above the load (guards a target of 0.999999...).
_MAX_EXTRA_AGENTS = 1_000_000


# ---------------------------------------------------------------- inputs


def offered_load(calls: float, aht_seconds: float, interval_seconds: float) -> float:
    """Traffic intensity in Erlangs: calls per interval x AHT / interval length."""
    check_volume(calls)
    if calls == 0:
        return 0.0
    check_aht(aht_seconds)
    if not interval_seconds > 0:
        raise WfmInputError("interval length must be > 0 seconds", field="interval_seconds")
    return calls * aht_seconds / interval_seconds


def check_volume(calls: float, field: str = "calls") -> None:
    if not math.isfinite(calls) or calls < 0:
        raise WfmInputError(f"call volume must be a finite number >= 0, got {calls}", field=field)


def check_aht(aht_seconds: float, field: str = "aht_seconds") -> None:
    if not math.isfinite(aht_seconds) or aht_seconds <= 0:
        raise WfmInputError(
            f"average handle time must be > 0 seconds when calls are offered, got {aht_seconds}", field=field
        )


def check_shrinkage(shrinkage: float, field: str = "shrinkage") -> None:
    if not math.isfinite(shrinkage) or not 0 <= shrinkage < 1:
        raise WfmInputError(f"shrinkage must be in [0, 1), got {shrinkage}", field=field)


@dataclass(frozen=True)
class ServiceTarget:
    """What "enough agents" means. Any combination; all given constraints must hold.

    ``service_level`` of calls answered within ``answer_seconds`` (80/20 by default), or an
    average speed of answer ``asa_seconds``; ``max_occupancy`` caps agent utilisation;
    ``max_abandon`` (Erlang A only) caps the fraction of callers who hang up waiting.
    """

    service_level: float | None = 0.8
    answer_seconds: float = 20.0
    asa_seconds: float | None = None
    max_occupancy: float | None = None
    max_abandon: float | None = None

    def __post_init__(self) -> None:
        if self.service_level is not None and not 0 < self.service_level < 1:
            raise WfmInputError(
                f"service level target must be strictly between 0 and 1, got {self.service_level}",
                field="service_level",
            )
        if not math.isfinite(self.answer_seconds) or self.answer_seconds < 0:
            raise WfmInputError(
                f"answer time must be >= 0 seconds, got {self.answer_seconds}", field="answer_seconds"
            )
        if self.asa_seconds is not None and not (math.isfinite(self.asa_seconds) and self.asa_seconds > 0):
            raise WfmInputError(
                f"ASA target must be > 0 seconds, got {self.asa_seconds}", field="asa_seconds"
            )
        if self.max_occupancy is not None and not 0 < self.max_occupancy <= 1:
            raise WfmInputError(
                f"maximum occupancy must be in (0, 1], got {self.max_occupancy}", field="max_occupancy"
            )
        if self.max_abandon is not None and not 0 < self.max_abandon < 1:
            raise WfmInputError(
                f"abandonment cap must be strictly between 0 and 1, got {self.max_abandon}",
                field="max_abandon",
            )
        if self.service_level is None and self.asa_seconds is None and self.max_abandon is None:
            raise WfmInputError(
                "give a service level, an ASA or an abandonment target", field="service_level"
            )


# ---------------------------------------------------------------- Erlang B / C


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of M/M/n/n with ``load`` Erlangs offered to ``agents`` servers."""
    if agents < 0:
        raise WfmInputError(f"agents must be >= 0, got {agents}", field="agents")
    if load <= 0:
        return 0.0 if agents > 0 else 1.0
    if agents == 0:
        return 1.0
    # P(Poisson(load) <= agents) is the regularised upper incomplete gamma Q(agents + 1, load).
    cdf = special.gammaincc(agents + 1, load)
    if cdf > _TINY:
        log_pmf = agents * math.log(load) - load - special.gammaln(agents + 1)
        return min(1.0, math.exp(log_pmf - math.log(cdf)))
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


def _next_erlang_b(blocking: float, agents: int, load: float) -> float:
    """B(agents) from B(agents - 1): the stable forward recursion."""
    return load * blocking / (agents + load * blocking)


def _erlang_c_from_b(blocking: float, agents: int, load: float) -> float:
    if agents <= load:
        return 1.0
    rho = load / agents
    return blocking / (1.0 - rho * (1.0 - blocking))


def erlang_c(agents: int, load: float) -> float:
    """Probability that a call waits (M/M/n); 1 when the queue is unstable (agents <= load)."""
    if load <= 0:
        return 0.0
    if agents <= load:
        return 1.0
    return _erlang_c_from_b(erlang_b(agents, load), agents, load)


@dataclass(frozen=True)
class QueueMetrics:
    """Steady-state performance of one interval with ``agents`` on the phones.

    ``asa_seconds`` is the mean wait of answered calls; ``mean_wait_seconds`` the mean time in
    queue over all callers (including those who abandon). Both are ``inf`` for an unstable
    Erlang C queue (agents <= load).
    """

    model: str
    agents: int
    load_erlangs: float
    service_level: float
    prob_wait: float
    asa_seconds: float
    occupancy: float
    prob_abandon: float = 0.0
    mean_wait_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }


def _c_metrics(agents: int, load: float, prob_wait: float, aht: float, answer_seconds: float) -> QueueMetrics:
    if load <= 0:
        return QueueMetrics("erlang_c", agents, 0.0, 1.0, 0.0, 0.0, 0.0)
    if agents <= load:
        return QueueMetrics("erlang_c", agents, load, 0.0, 1.0, math.inf, 1.0, 0.0, math.inf)
    excess = agents - load
    service_level = max(0.0, 1.0 - prob_wait * math.exp(-excess * answer_seconds / aht))
    asa = prob_wait * aht / excess
    return QueueMetrics("erlang_c", agents, load, service_level, prob_wait, asa, load / agents, 0.0, asa)


def erlang_c_metrics(
    agents: int, calls: float, aht_seconds: float, interval_seconds: float, answer_seconds: float = 20.0
) -> QueueMetrics:
    """Service level, P(wait), ASA and occupancy of ``agents`` answering ``calls`` in one interval."""
    load = offered_load(calls, aht_seconds, interval_seconds)
    if agents < 0:
        raise WfmInputError(f"agents must be >= 0, got {agents}", field="agents")
    return _c_metrics(agents, load, erlang_c(agents, load), aht_seconds, answer_seconds)


@dataclass(frozen=True)
class Staffing:
    """Agents needed on the phones, headcount to schedule after shrinkage, and why."""

    agents: int
    scheduled: int
    binding: str
    metrics: QueueMetrics

    def as_dict(self) -> dict[str, Any]:
        return {
            "agents": self.agents,
            "scheduled": self.scheduled,
            "binding": self.binding,
            **{k: v for k, v in self.metrics.as_dict().items() if k != "agents"},
        }


def scheduled_headcount(agents: int, shrinkage: float) -> int:
    """Headcount to schedule so that ``agents`` remain after shrinkage (breaks, absence, training)."""
    check_shrinkage(shrinkage)
    return math.ceil(agents / (1.0 - shrinkage) - 1e-9)


def _occupancy_floor(load: float, max_occupancy: float | None) -> int:
    if max_occupancy is None or load <= 0:
        return 0
    return math.ceil(load / max_occupancy - 1e-9)


def erlang_c_staffing(
    calls: float,
    aht_seconds: float,
    interval_seconds: float,
    target: ServiceTarget | None = None,
    shrinkage: float = 0.0,
) -> Staffing:
    """Fewest agents meeting ``target`` under Erlang C; zero volume needs zero agents."""
    target = target or ServiceTarget()
    check_shrinkage(shrinkage)
    if target.max_abandon is not None:
        raise WfmInputError(
            "an abandonment cap needs the Erlang A model: give a mean patience", field="max_abandon"
        )
    load = offered_load(calls, aht_seconds, interval_seconds)
    if load == 0:
        return Staffing(0, 0, "zero_volume", _c_metrics(0, 0.0, 0.0, aht_seconds or 1.0, 0.0))

    agents = math.floor(load) + 1
    blocking = erlang_b(agents, load)
    limit = agents + _MAX_EXTRA_AGENTS
    while True:
        metrics = _c_metrics(
            agents, load, _erlang_c_from_b(blocking, agents, load), aht_seconds, target.answer_seconds
        )
        sl_ok = target.service_level is None or metrics.service_level >= target.service_level - 1e-12
        asa_ok = target.asa_seconds is None or metrics.asa_seconds <= target.asa_seconds + 1e-12
        if sl_ok and asa_ok:
            break
        if agents >= limit:
            raise WfmInputError("target cannot be met with a finite number of agents", field="service_level")
        agents += 1
        blocking = _next_erlang_b(blocking, agents, load)
    binding = "service_level" if target.service_level is not None else "asa"
    if target.service_level is not None and target.asa_seconds is not None:
        # Whichever constraint still failed one agent earlier is the binding one.
        previous = erlang_c_metrics(agents - 1, calls, aht_seconds, interval_seconds, target.answer_seconds)
        binding = "asa" if previous.service_level >= target.service_level else "service_level"
    occupancy_agents = _occupancy_floor(load, target.max_occupancy)
    if occupancy_agents > agents:
        agents, binding = occupancy_agents, "max_occupancy"
        metrics = erlang_c_metrics(agents, calls, aht_seconds, interval_seconds, target.answer_seconds)
    return Staffing(agents, scheduled_headcount(agents, shrinkage), binding, metrics)


# ---------------------------------------------------------------- Erlang A


def _log_lower_gamma(s: float, z: float) -> float:
    """log of the unregularised lower incomplete gamma function, without underflow."""
    if z <= 0:
        return -math.inf
    regularised = special.gammainc(s, z)
    if regularised > _TINY:
        return math.log(regularised) + special.gammaln(s)
    # z far below s: the series z^s e^-z sum_j z^j / (s (s+1) ... (s+j)) converges fast.
    log_sum, log_term, j = 0.0, 0.0, 0
    while True:
        j += 1
        log_term += math.log(z) - math.log(s + j)
        if log_term < log_sum - 40:
            break
        log_sum = log_sum + math.log1p(math.exp(log_term - log_sum))
    return s * math.log(z) - z - math.log(s) + log_sum


def _log_a(x: float, y: float) -> float:
    """log A(x, y) = log(x e^y y^-x gamma(x, y)) = log sum_j y^j / ((x+1)...(x+j))."""
    if y <= 0:
        return 0.0
    return math.log(x) + y - x * math.log(y) + _log_lower_gamma(x, y)


def _log_a_shifted(x: float, y: float) -> float:
    """log sum_j y^j / ((x+2)...(x+j+1)): the same series one step on (served-by-t term)."""
    if y <= 0:
        return 0.0
    return math.log(x + 1) + y - (x + 1) * math.log(y) + _log_lower_gamma(x + 1, y)


def _check_patience(patience_seconds: float) -> None:
    if not math.isfinite(patience_seconds) or patience_seconds <= 0:
        raise WfmInputError(
            f"mean patience must be > 0 seconds, got {patience_seconds}", field="patience_seconds"
        )


def erlang_a_metrics(
    agents: int,
    calls: float,
    aht_seconds: float,
    interval_seconds: float,
    patience_seconds: float,
    answer_seconds: float = 20.0,
) -> QueueMetrics:
    """M/M/n+M: callers abandon after an exponential patience with mean ``patience_seconds``.

    ``service_level`` is the fraction of *all* offered calls answered within ``answer_seconds``
    (a caller who abandons counts as not answered).
    """
    _check_patience(patience_seconds)
    load = offered_load(calls, aht_seconds, interval_seconds)
    if agents < 0:
        raise WfmInputError(f"agents must be >= 0, got {agents}", field="agents")
    if load == 0:
        return QueueMetrics("erlang_a", agents, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    if agents == 0:
        return QueueMetrics("erlang_a", 0, load, 0.0, 1.0, math.inf, 0.0, 1.0, patience_seconds)

    theta, mu = 1.0 / patience_seconds, 1.0 / aht_seconds
    lam = calls / interval_seconds
    x, y = agents * mu / theta, lam / theta
    log_a = _log_a(x, y)
    blocking = erlang_b(agents, load)
    if blocking <= 0:
        prob_wait = 0.0
    else:
        # P(W > 0) = A B / (1 + (A - 1) B), rearranged so a huge A cannot overflow.
        log_ratio = math.log1p(-blocking) - log_a - math.log(blocking) if blocking < 1 else -math.inf
        prob_wait = 1.0 / (1.0 + math.exp(min(log_ratio, 700.0)))
    served_if_wait = x / (x + 1) * math.exp(_log_a_shifted(x, y) - log_a)
    abandon_if_wait = min(1.0, max(0.0, 1.0 - served_if_wait))
    v0 = math.exp(-theta * answer_seconds)
    late_if_wait = (
        x
        / (x + 1)
        * math.exp(-(x + 1) * theta * answer_seconds + y * (1 - v0) + _log_a_shifted(x, y * v0) - log_a)
    )
    answered_in_time_if_wait = max(0.0, served_if_wait - late_if_wait)
    service_level = min(1.0, (1 - prob_wait) + prob_wait * answered_in_time_if_wait)
    prob_abandon = prob_wait * abandon_if_wait
    mean_wait = prob_abandon / theta
    asa = _answered_mean_wait(agents * mu, lam, theta, log_a) * prob_wait / max(1e-300, 1 - prob_abandon)
    occupancy = min(1.0, load * (1 - prob_abandon) / agents)
    return QueueMetrics(
        "erlang_a", agents, load, service_level, prob_wait, asa, occupancy, prob_abandon, mean_wait
    )


def _answered_mean_wait(service_rate: float, lam: float, theta: float, log_a: float) -> float:
    """E[wait; answered | wait > 0]: integral of s times the answered-at-s density."""
    y = lam / theta

    def log_density(s: float) -> float:
        return math.log(service_rate) - (theta + service_rate) * s + y * -math.expm1(-theta * s) - log_a

    peak = math.log(lam / (theta + service_rate)) / theta if lam > theta + service_rate else 0.0
    width = 1.0 / (theta + service_rate)
    upper = peak + 80 * width + 10 / theta * (peak > 0)
    value, _ = integrate.quad(
        lambda s: s * math.exp(log_density(s)), 0.0, upper, points=[peak] if peak > 0 else None, limit=200
    )
    return value


def erlang_a_staffing(
    calls: float,
    aht_seconds: float,
    interval_seconds: float,
    patience_seconds: float,
    target: ServiceTarget | None = None,
    shrinkage: float = 0.0,
) -> Staffing:
    """Fewest agents meeting every given target (service level, ASA, abandonment cap, occupancy)
    under Erlang A. All measures improve monotonically with agents, so a galloping search plus
    bisection finds the minimum in O(log n) evaluations."""
    target = target or ServiceTarget()
    check_shrinkage(shrinkage)
    _check_patience(patience_seconds)
    load = offered_load(calls, aht_seconds, interval_seconds)
    if load == 0:
        return Staffing(0, 0, "zero_volume", QueueMetrics("erlang_a", 0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0))

    def failing(agents: int) -> list[str]:
        m = erlang_a_metrics(
            agents, calls, aht_seconds, interval_seconds, patience_seconds, target.answer_seconds
        )
        fails = []
        if target.service_level is not None and m.service_level < target.service_level - 1e-12:
            fails.append("service_level")
        if target.asa_seconds is not None and m.asa_seconds > target.asa_seconds + 1e-12:
            fails.append("asa")
        if target.max_abandon is not None and m.prob_abandon > target.max_abandon + 1e-12:
            fails.append("abandon")
        return fails

    low, high = 0, max(1, math.ceil(load))
    while failing(high):
        low, high = high, high * 2
        if high > load + _MAX_EXTRA_AGENTS:
            raise WfmInputError("target cannot be met with a finite number of agents", field="service_level")
    while high - low > 1:
        middle = (low + high) // 2
        if failing(middle):
            low = middle
        else:
            high = middle
    agents = high
    binding = (failing(agents - 1) or ["service_level"])[0] if agents > 0 else "service_level"
    occupancy_agents = _occupancy_floor(load, target.max_occupancy)
    if occupancy_agents > agents:
        agents, binding = occupancy_agents, "max_occupancy"
    metrics = erlang_a_metrics(
        agents, calls, aht_seconds, interval_seconds, patience_seconds, target.answer_seconds
    )
    return Staffing(agents, scheduled_headcount(agents, shrinkage), binding, metrics)


def staffing(
    calls: float,
    aht_seconds: float,
    interval_seconds: float,
    target: ServiceTarget | None = None,
    shrinkage: float = 0.0,
    patience_seconds: float | None = None,
) -> Staffing:
    """Erlang A when a mean patience is given, Erlang C otherwise."""
    if patience_seconds is None:
        return erlang_c_staffing(calls, aht_seconds, interval_seconds, target, shrinkage)
    return erlang_a_staffing(calls, aht_seconds, interval_seconds, patience_seconds, target, shrinkage)
