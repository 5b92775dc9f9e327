"""Discrete-event simulation of a contact center: this router against the classic ACD
strategies (longest-idle agent, round robin) on identical arrivals.

The model (every number is a ``SimModel`` field; docs/routing.md states them):

- arrivals: Poisson at ``calls_per_hour`` for ``hours``; after that the queue drains;
- callers: language, product, issue category, tier, CLV, IVR sentiment, repeat caller with a
  previous agent, patience ~ exponential (abandon when it runs out before an answer);
- agents: every agent speaks English, some also Spanish / French; trained on 2-3 products,
  1-2 specializations, skill 1-5, CSAT correlated with skill;
- handle time = base(category) x skill factor x (untrained product) x (specialization) x
  (same agent as last time) x (negative caller, softened by a senior agent) x log-normal
  noise; a timed wrap-up follows every call;
- first-contact resolution = base(category) + skill + specialization - untrained product +
  continuity - (negative caller with a non-senior agent), drawn once per call.

Common random numbers: each call carries its own noise and its own uniform draws for
resolution and callback acceptance, so the strategies differ only by their decisions.
Baselines are classic ACDs with one FIFO queue per language (language is a hard filter for
them too); only the router offers callbacks (it is one of its features).
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routing.config import RoutingConfig
from routing.engine import RoutingEngine
from routing.model import AgentProfile, AgentRecord, AgentStatus, CallerProfile, CallRecord, CallState

SL_THRESHOLD_S = 20.0
TIERS = ("standard", "silver", "gold", "platinum")
STRATEGIES = ("router", "longest_idle", "round_robin")


@dataclass(frozen=True)
class SimModel:
    caller_languages: dict[str, float] = field(default_factory=lambda: {"en": 0.82, "es": 0.15, "fr": 0.03})
    agent_extra_languages: dict[str, float] = field(default_factory=lambda: {"es": 0.22, "fr": 0.05})
    products: dict[str, float] = field(
        default_factory=lambda: {"mobile": 0.40, "broadband": 0.30, "tv": 0.20, "home_phone": 0.10}
    )
    categories: dict[str, float] = field(
        default_factory=lambda: {
            "billing": 0.30,
            "technical": 0.27,
            "sales": 0.14,
            "cancellation": 0.10,
            "complaint": 0.08,
            "outage": 0.07,
            "fraud": 0.04,
        }  # fmt: skip
    )
    base_handle_s: dict[str, float] = field(
        default_factory=lambda: {
            "billing": 300,
            "technical": 420,
            "sales": 360,
            "cancellation": 420,
            "complaint": 480,
            "outage": 240,
            "fraud": 540,
        }  # fmt: skip
    )
    base_fcr: dict[str, float] = field(
        default_factory=lambda: {
            "billing": 0.78,
            "technical": 0.66,
            "sales": 0.85,
            "cancellation": 0.72,
            "complaint": 0.60,
            "outage": 0.80,
            "fraud": 0.70,
        }  # fmt: skip
    )
    tiers: dict[str, float] = field(
        default_factory=lambda: {"standard": 0.60, "silver": 0.25, "gold": 0.12, "platinum": 0.03}
    )
    clv_median: dict[str, float] = field(
        default_factory=lambda: {"standard": 600, "silver": 2_500, "gold": 9_000, "platinum": 30_000}
    )
    negative_share: float = 0.10  # IVR sentiment below -0.5
    repeat_share: float = 0.12
    patience_mean_s: float = 180.0
    callback_accept: float = 0.6
    wrap_up_s: float = 30.0
    skill_shares: tuple[float, ...] = (0.08, 0.22, 0.38, 0.22, 0.10)
    # handle time multipliers
    skill_slope: float = 0.10  # x (1.25 - slope * skill): skill 1 -> 1.15, 5 -> 0.75
    untrained_product: float = 1.15
    specialization_match: float = 0.85
    continuity: float = 0.85
    negative_caller: float = 1.40
    senior_on_negative: float = 0.85
    noise_sigma: float = 0.45
    # first-contact resolution effects (probability points)
    fcr_per_skill: float = 0.03
    fcr_specialization: float = 0.08
    fcr_untrained_product: float = -0.12
    fcr_continuity: float = 0.05
    fcr_negative_non_senior: float = -0.10


@dataclass
class SimCall:
    index: int
    arrival: float
    profile: CallerProfile
    patience: float
    noise: float
    fcr_draw: float
    callback_draw: float
    # outcome (per strategy run)
    answered_at: float | None = None
    abandoned_at: float | None = None
    agent: int = -1
    resolved: bool = False
    handle_s: float = 0.0
    callback: bool = False


@dataclass(frozen=True)
class SimAgent:
    index: int
    profile: AgentProfile
    senior: bool


def _choice(rng: np.random.Generator, table: dict[str, float]) -> str:
    keys = list(table)
    p = np.array([table[k] for k in keys])
    return str(keys[int(rng.choice(len(keys), p=p / p.sum()))])


def make_agents(n: int, model: SimModel, config: RoutingConfig, rng: np.random.Generator) -> list[SimAgent]:
    agents = []
    products, categories = list(model.products), list(model.categories)
    pw = np.array([model.products[p] for p in products])
    cw = np.array([model.categories[c] for c in categories])
    for i in range(n):
        languages = ["en"] + [
            lang for lang, share in model.agent_extra_languages.items() if rng.random() < share
        ]
        k = 3 if rng.random() < 0.2 else 2
        trained = list(rng.choice(products, size=k, replace=False, p=pw / pw.sum()))
        s = 2 if rng.random() < 0.4 else 1
        specs = list(rng.choice(categories, size=s, replace=False, p=cw / cw.sum()))
        skill = int(rng.choice(5, p=np.array(model.skill_shares) / sum(model.skill_shares))) + 1
        csat = float(np.clip(3.4 + 0.3 * (skill - 1) + rng.normal(0, 0.25), 1.0, 5.0))
        aht = 360.0 * (1.25 - model.skill_slope * skill)
        profile = AgentProfile(
            agent_id=f"agent-{i:03d}", languages=languages, products=[str(p) for p in trained],
            specializations=[str(c) for c in specs], skill_level=skill, csat=round(csat, 2), avg_handle_time=aht,
        )  # fmt: skip
        esc = config.escalation
        agents.append(SimAgent(i, profile, skill >= esc.min_skill and profile.csat >= esc.min_csat))
    return agents


def make_calls(
    calls_per_hour: float, hours: float, agents: list[SimAgent], model: SimModel, rng: np.random.Generator
) -> list[SimCall]:
    calls = []
    t = 0.0
    horizon = hours * 3600
    rate = calls_per_hour / 3600
    by_language: dict[str, list[str]] = {}
    for a in agents:
        for lang in a.profile.languages:
            by_language.setdefault(lang, []).append(a.profile.agent_id)
    for index in itertools.count():
        t += float(rng.exponential(1 / rate))
        if t >= horizon:
            break
        language = _choice(rng, model.caller_languages)
        tier = _choice(rng, model.tiers)
        negative = rng.random() < model.negative_share
        sentiment = (
            float(rng.uniform(-1.0, -0.51)) if negative else float(np.clip(rng.normal(0.1, 0.3), -0.5, 1))
        )
        repeat = rng.random() < model.repeat_share
        previous = str(rng.choice(by_language[language])) if repeat and by_language.get(language) else None
        profile = CallerProfile(
            call_id=f"sim-{index}", language=language, product=_choice(rng, model.products),
            issue_category=_choice(rng, model.categories), tier=tier,
            clv=float(model.clv_median[tier] * math.exp(rng.normal(0, 0.6))), ivr_sentiment=sentiment,
            repeat_caller=repeat, previous_agent_id=previous,
        )  # fmt: skip
        calls.append(
            SimCall(
                index,
                t,
                profile,
                float(rng.exponential(model.patience_mean_s)),
                float(rng.normal()),
                float(rng.random()),
                float(rng.random()),
            )  # fmt: skip
        )
    return calls


def outcome(call: SimCall, agent: SimAgent, model: SimModel, config: RoutingConfig) -> tuple[float, bool]:
    """(handle seconds, resolved on first contact) for this caller with this agent."""
    p, a = call.profile, agent.profile
    negative = p.ivr_sentiment < config.escalation.sentiment_below
    trained = p.product in a.products
    special = p.issue_category in a.specializations
    continuity = p.previous_agent_id == a.agent_id
    mean = model.base_handle_s[p.issue_category or "billing"] * (1.25 - model.skill_slope * a.skill_level)
    if not trained:
        mean *= model.untrained_product
    if special:
        mean *= model.specialization_match
    if continuity:
        mean *= model.continuity
    if negative:
        mean *= model.negative_caller * (model.senior_on_negative if agent.senior else 1.0)
    sigma = model.noise_sigma
    handle = mean * math.exp(sigma * call.noise - sigma * sigma / 2)
    fcr = model.base_fcr[p.issue_category or "billing"] + model.fcr_per_skill * (a.skill_level - 3)
    fcr += model.fcr_specialization if special else 0.0
    fcr += 0.0 if trained else model.fcr_untrained_product
    fcr += model.fcr_continuity if continuity else 0.0
    fcr += model.fcr_negative_non_senior if negative and not agent.senior else 0.0
    return handle, call.fcr_draw < min(0.98, max(0.05, fcr))


# -- the event loop ---------------------------------------------------------------------------------

ARRIVE, ABANDON, END, FREE, WAKE = range(5)


class _Sim:
    def __init__(
        self, agents: list[SimAgent], calls: list[SimCall], model: SimModel, config: RoutingConfig
    ) -> None:
        self.agents, self.calls, self.model, self.config = agents, calls, model, config
        self.events: list[tuple[float, int, int, int, int]] = []
        self.counter = itertools.count()
        self.busy_s = 0.0
        self.horizon = calls[-1].arrival if calls else 0.0
        self.free_since = [0.0] * len(agents)
        self.is_free = [True] * len(agents)

    def push(self, t: float, kind: int, a: int = -1, b: int = -1) -> None:
        heapq.heappush(self.events, (t, next(self.counter), kind, a, b))

    def start_call(self, call: SimCall, agent: SimAgent, now: float) -> None:
        handle, resolved = outcome(call, agent, self.model, self.config)
        call.answered_at, call.agent, call.resolved, call.handle_s = now, agent.index, resolved, handle
        self.is_free[agent.index] = False
        end = now + handle
        self.busy_s += max(0.0, min(end + self.model.wrap_up_s, self.horizon) - min(now, self.horizon))
        self.push(end, END, agent.index, call.index)

    def run(self) -> None:
        for call in self.calls:
            self.push(call.arrival, ARRIVE, call.index)
            self.push(call.arrival + call.patience, ABANDON, call.index)
        while self.events:
            now, _, kind, a, b = heapq.heappop(self.events)
            if kind == ARRIVE:
                self.on_arrive(self.calls[a], now)
            elif kind == ABANDON:
                call = self.calls[a]
                if call.answered_at is None and call.abandoned_at is None and not call.callback:
                    call.abandoned_at = now
                    self.on_abandon(call, now)
            elif kind == END:
                self.push(now + self.model.wrap_up_s, FREE, a)
                self.on_end(self.agents[a], now)
            elif kind == FREE:
                self.is_free[a] = True
                self.free_since[a] = now
                self.on_free(self.agents[a], now)
            else:
                self.on_wake(now)

    def on_arrive(self, call: SimCall, now: float) -> None: ...
    def on_abandon(self, call: SimCall, now: float) -> None: ...
    def on_end(self, agent: SimAgent, now: float) -> None: ...
    def on_free(self, agent: SimAgent, now: float) -> None: ...
    def on_wake(self, now: float) -> None: ...


class _ClassicACD(_Sim):
    """FIFO queue per language; the agent is the longest idle or the next in a fixed rotation."""

    def __init__(self, *args: Any, rotation: bool) -> None:
        super().__init__(*args)
        self.rotation = rotation
        self.next_in_rotation = 0
        self.waiting: list[SimCall] = []  # arrival order

    def _pick_agent(self, call: SimCall) -> SimAgent | None:
        language = call.profile.language
        free = [a for a in self.agents if self.is_free[a.index] and language in a.profile.languages]
        if not free:
            return None
        if self.rotation:
            n = len(self.agents)
            chosen = min(free, key=lambda a: (a.index - self.next_in_rotation) % n)
            self.next_in_rotation = (chosen.index + 1) % n
            return chosen
        return min(free, key=lambda a: self.free_since[a.index])

    def on_arrive(self, call: SimCall, now: float) -> None:
        agent = self._pick_agent(call)
        if agent is None:
            self.waiting.append(call)
        else:
            self.start_call(call, agent, now)

    def on_abandon(self, call: SimCall, now: float) -> None:
        self.waiting.remove(call)

    def on_free(self, agent: SimAgent, now: float) -> None:
        for call in self.waiting:
            if call.profile.language in agent.profile.languages:
                self.waiting.remove(call)
                self.start_call(call, agent, now)
                return


class _RouterSim(_Sim):
    """This router's engine, fed the same events; the wake-ups it asks for become events."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.engine = RoutingEngine(self.config)
        self.records: dict[int, AgentRecord] = {}
        for agent in self.agents:
            record = AgentRecord(profile=agent.profile, status=AgentStatus.AVAILABLE, version=1)
            self.records[agent.index] = record
            self.engine.apply_agent(record)
        self.call_records: dict[int, CallRecord] = {}
        self.scheduled_wake = math.inf
        self.seq = itertools.count()

    def _set_agent(self, index: int, **update: Any) -> None:
        record = self.records[index]
        record = record.model_copy(update={**update, "version": record.version + 1})
        self.records[index] = record
        self.engine.apply_agent(record)

    def _set_call(self, call: SimCall, **update: Any) -> None:
        record = self.call_records[call.index]
        record = record.model_copy(update={**update, "version": record.version + 1})
        self.call_records[call.index] = record
        self.engine.apply_call(record)

    def dispatch(self, now: float) -> None:
        for call_id in self.engine.due_callback_offers(now):
            call = self.calls[int(call_id.removeprefix("sim-"))]
            accepted = call.callback_draw < self.model.callback_accept
            call.callback = accepted
            self._set_call(call, callback_offered=True, callback=accepted)
        for proposal in self.engine.propose(now):
            call = self.calls[int(proposal.call_id.removeprefix("sim-"))]
            agent = self.agents[int(proposal.agent_id.removeprefix("agent-"))]
            self._set_agent(
                agent.index, status=AgentStatus.ON_CALL, call_id=proposal.call_id, status_since=now
            )
            self._set_call(call, state=CallState.ASSIGNED, agent_id=proposal.agent_id, assigned_at=now)
            self.start_call(call, agent, now)
        wake = self.engine.next_wakeup(now)
        if wake is not None and wake < self.scheduled_wake:
            self.scheduled_wake = wake
            self.push(wake, WAKE)

    def on_arrive(self, call: SimCall, now: float) -> None:
        record = CallRecord(
            profile=call.profile, enqueued_at=now, wait_start=now, seq=next(self.seq), version=1
        )
        self.call_records[call.index] = record
        self.engine.apply_call(record)
        self.dispatch(now)

    def on_abandon(self, call: SimCall, now: float) -> None:
        self._set_call(call, state=CallState.ABANDONED, ended_at=now)

    def on_end(self, agent: SimAgent, now: float) -> None:
        self._set_agent(
            agent.index, status=AgentStatus.WRAP_UP, call_id=None, wrap_until=now + self.model.wrap_up_s,
            status_since=now,
        )  # fmt: skip

    def on_free(self, agent: SimAgent, now: float) -> None:
        self.dispatch(now)

    def on_wake(self, now: float) -> None:
        if now >= self.scheduled_wake:
            self.scheduled_wake = math.inf
        self.dispatch(now)


# -- results ---------------------------------------------------------------------------------------


@dataclass
class Result:
    strategy: str
    offered: int
    answered: int
    abandoned: int
    service_level: float
    avg_wait_s: float
    p95_wait_s: float
    abandonment: float
    fcr: float
    aht_s: float
    occupancy: float
    callbacks: int
    escalated_to_senior: float
    wait_by_tier: dict[str, dict[str, float]]
    waits: list[float] = field(repr=False, default_factory=list)

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "waits"}


def summarise(strategy: str, sim: _Sim) -> Result:
    calls = sim.calls
    answered = [c for c in calls if c.answered_at is not None]
    abandoned = [c for c in calls if c.abandoned_at is not None]
    waits = np.array([c.answered_at - c.arrival for c in answered]) if answered else np.zeros(0)  # type: ignore[operator]
    offered = len(answered) + len(abandoned)
    within = int((waits <= SL_THRESHOLD_S).sum())
    by_tier = {}
    for tier in TIERS:
        w = np.array([c.answered_at - c.arrival for c in answered if c.profile.tier == tier])  # type: ignore[operator]
        by_tier[tier] = {
            "avg": float(w.mean()) if w.size else 0.0,
            "p95": float(np.percentile(w, 95)) if w.size else 0.0,
        }
    negative = [c for c in answered if c.profile.ivr_sentiment < sim.config.escalation.sentiment_below]
    return Result(
        strategy=strategy,
        offered=offered,
        answered=len(answered),
        abandoned=len(abandoned),
        service_level=within / offered if offered else 1.0,
        avg_wait_s=float(waits.mean()) if waits.size else 0.0,
        p95_wait_s=float(np.percentile(waits, 95)) if waits.size else 0.0,
        abandonment=len(abandoned) / offered if offered else 0.0,
        fcr=sum(c.resolved for c in answered) / len(answered) if answered else 0.0,
        aht_s=float(np.mean([c.handle_s for c in answered])) if answered else 0.0,
        occupancy=sim.busy_s / (len(sim.agents) * sim.horizon) if sim.horizon else 0.0,
        callbacks=sum(c.callback for c in calls),
        escalated_to_senior=(
            sum(sim.agents[c.agent].senior for c in negative) / len(negative) if negative else 0.0
        ),
        wait_by_tier=by_tier,
        waits=waits.tolist(),
    )


def simulate(
    agents: int,
    calls_per_hour: float,
    hours: float,
    *,
    seed: int = 0,
    config: RoutingConfig | None = None,
    model: SimModel | None = None,
    strategies: tuple[str, ...] = STRATEGIES,
) -> list[Result]:
    config = config or RoutingConfig()
    model = model or SimModel()
    rng = np.random.default_rng(seed)
    pool = make_agents(agents, model, config, rng)
    arrivals = make_calls(calls_per_hour, hours, pool, model, rng)
    results = []
    for strategy in strategies:
        calls = [
            SimCall(c.index, c.arrival, c.profile, c.patience, c.noise, c.fcr_draw, c.callback_draw)
            for c in arrivals
        ]
        sim: _Sim
        if strategy == "router":
            sim = _RouterSim(pool, calls, model, config)
        elif strategy in ("longest_idle", "round_robin"):
            sim = _ClassicACD(pool, calls, model, config, rotation=strategy == "round_robin")
        else:
            raise ValueError(f"unknown strategy {strategy!r}")
        sim.run()
        results.append(summarise(strategy, sim))
    return results


def table(results: list[Result]) -> str:
    """The comparison as a Markdown table (and a second one for wait by tier)."""
    head = (
        "| strategy | service level (80/20) | avg wait | p95 wait | abandoned | FCR | avg handle | "
        "occupancy | callbacks | escalated -> senior |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = "".join(
        f"| {r.strategy} | {r.service_level:.1%} | {r.avg_wait_s:.1f} s | {r.p95_wait_s:.1f} s | "
        f"{r.abandonment:.1%} | {r.fcr:.1%} | {r.aht_s:.0f} s | {r.occupancy:.1%} | {r.callbacks} | "
        f"{r.escalated_to_senior:.0%} |\n"
        for r in results
    )
    tier_head = (
        "| strategy | "
        + " | ".join(f"{t} avg / p95" for t in TIERS)
        + " |\n|---"
        + "|---" * len(TIERS)
        + "|\n"
    )
    tier_rows = "".join(
        f"| {r.strategy} | "
        + " | ".join(f"{r.wait_by_tier[t]['avg']:.1f} / {r.wait_by_tier[t]['p95']:.1f} s" for t in TIERS)
        + " |\n"
        for r in results
    )
    return head + rows + "\nWait by tier (answered calls):\n\n" + tier_head + tier_rows


def plot(results: list[Result], path: str) -> None:
    """Wait distribution, headline rates and wait by tier, one PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("--plot needs matplotlib: pip install 'callassist[plot]'") from exc
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for r in results:
        waits = np.sort(np.array(r.waits))
        if waits.size:
            axes[0].plot(waits, np.arange(1, waits.size + 1) / waits.size, label=r.strategy)
    axes[0].axvline(SL_THRESHOLD_S, color="grey", linestyle=":")
    axes[0].set_xscale("symlog", linthresh=1.0)
    axes[0].set(xlim=(0, None), xlabel="wait (s)", ylabel="share of answered calls", title="Wait CDF")
    axes[0].legend()
    names = [r.strategy for r in results]
    x = np.arange(len(names))
    for offset, (label, values) in zip(
        (-0.25, 0, 0.25),
        (
            ("service level", [r.service_level for r in results]),
            ("FCR", [r.fcr for r in results]),
            ("abandoned", [r.abandonment for r in results]),
        ),
        strict=True,
    ):
        axes[1].bar(x + offset, values, width=0.25, label=label)
    axes[1].set(xticks=x, xticklabels=names, ylim=(0, 1.2), title="Rates")
    axes[1].legend(loc="upper center", ncol=3, fontsize="small")
    for i, r in enumerate(results):
        axes[2].bar(
            np.arange(len(TIERS)) + (i - 1) * 0.25,
            [r.wait_by_tier[t]["avg"] for t in TIERS],
            width=0.25,
            label=r.strategy,
        )
    axes[2].set(xticks=np.arange(len(TIERS)), xticklabels=TIERS, ylabel="avg wait (s)", title="Wait by tier")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
