"""A realistic synthetic call history (seeded), for demos, tests and benchmarks.

The issues are the demo knowledge base's articles (``server/demo/kb``): each article is one
fine-grained issue, its customer phrasings (``questions``) are what callers say, its prefix
gives the category (the demo's intents). On top of that:

- arrivals: weekday and time-of-day profiles (Mon busiest, Sun quietest; peaks at 10:00 and 14:00);
- customers with skewed activity, tiers, log-normal CLV by tier, renewal dates, products;
- unresolved calls come back: each issue has a probability of not being fixed (worse with a
  junior agent, much worse for the 3% of customers on their way out); the customer calls again
  about the same issue after ~2.5 days, angrier, up to four times, and after repeated failures
  threatens to cancel;
- handle time log-normal by issue (longer for repeats), sentiment by issue, routing wait times
  that grow at busy hours;
- optional injected outages: for a few hours one issue's share of calls jumps.

``SyntheticHistory`` is columnar (numpy); it renders full stored call records (the shape
``CallSession.record()`` writes), ``CallFacts`` for direct ingestion, and customer profiles.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from analytics.customers import CustomerProfile
from analytics.records import CallFacts

DAY_S = 86_400.0
CATEGORY_OF_PREFIX = {
    "account": "general_question",
    "mobile": "general_question",
    "billing": "billing_inquiry",
    "broadband": "technical_support",
    "outage": "technical_support",
    "tv": "technical_support",
    "cancel": "cancellation",
    "complaints": "complaint",
    "plans": "upgrade_interest",
}
DEVICE_CATEGORY = {
    "devices-router-setup-reset": "technical_support",
    "devices-sim-esim-activation": "technical_support",
    "devices-lost-stolen-phone": "technical_support",
}
# category: (share of calls, P(unresolved), AHT seconds, mean sentiment)
CATEGORIES = {
    "billing_inquiry": (0.30, 0.16, 330.0, -0.15),
    "technical_support": (0.27, 0.26, 480.0, -0.20),
    "general_question": (0.15, 0.07, 240.0, 0.10),
    "upgrade_interest": (0.12, 0.06, 420.0, 0.25),
    "cancellation": (0.08, 0.20, 450.0, -0.30),
    "complaint": (0.08, 0.30, 540.0, -0.45),
}
WEEKDAY = np.array([1.15, 1.05, 1.0, 1.0, 0.95, 0.6, 0.4])  # Mon..Sun
HOURS = np.array(
    [
        0.1,
        0.05,
        0.05,
        0.05,
        0.05,
        0.1,
        0.3,
        0.8,
        1.6,
        2.2,
        2.4,
        2.2,
        1.8,
        2.0,
        2.3,
        2.1,
        1.8,
        1.5,
        1.1,
        0.8,
        0.6,
        0.4,
        0.25,
        0.15,
    ]
)
TIERS = ("standard", "silver", "gold", "platinum")
TIER_P = (0.60, 0.25, 0.12, 0.03)
TIER_CLV = (600.0, 2500.0, 9000.0, 30000.0)
PRODUCTS = ("broadband", "mobile", "tv")
PRODUCT_P = (0.45, 0.35, 0.20)
FIRST_NAMES = (
    "Sam",
    "Priya",
    "Tom",
    "Aisha",
    "Jordan",
    "Mei",
    "Luca",
    "Grace",
    "Omar",
    "Ella",
    "Ravi",
    "Zoe",
)
SURNAMES = ("Whitfield", "Okafor", "Nowak", "Patel", "Hughes", "Lomax", "Chen", "Murphy", "Silva", "Evans")
REPEAT_PHRASES = (
    "this is the second time i've had to call about this",
    "i was told last time it would be sorted and it still isn't",
    "nobody called me back like they promised",
    "i've already been through all this with someone last week",
    "it's still happening, nothing's changed since i last rang",
    "i keep getting passed around and nobody fixes it",
)
CANCEL_PHRASES = (
    "if this isn't fixed this time i'm going to cancel",
    "honestly i'm thinking of switching provider",
    "i want to leave, i've had enough of this",
    "how much would it cost to cancel my contract",
)
MOOD_PHRASES = (
    "i've been waiting ages to get through",
    "i'm really not happy about it",
    "it's been a nightmare to be honest",
)
KB_RECALL_AT_1 = 0.825  # hybrid retrieval on the demo KB's held-out spoken queries
CLOSINGS = ("ok thanks", "right, fine", "ok, cheers for that", "great, thank you")


@dataclass(frozen=True)
class Outage:
    """For ``hours`` from ``hour`` on day ``day`` (0 = the first day), calls about ``issue`` are
    ``share`` of all calls (extra calls on top of the normal ones)."""

    day: int
    hour: float = 9.0
    hours: float = 10.0
    share: float = 0.2
    issue: str = "outage-check-status"


@dataclass(frozen=True)
class Issue:
    id: str
    title: str
    category: str
    phrasings: tuple[str, ...]
    weight: float
    unresolved: float
    aht_s: float
    sentiment: float


def demo_kb_dir() -> Path:
    import server

    return Path(server.__file__).resolve().parent / "demo" / "kb"


def load_issues(kb_dir: Path | None = None, seed: int = 0) -> list[Issue]:
    """One issue per knowledge-base article that has customer phrasings."""
    from kb_index.articles import load_markdown_dir

    rng = np.random.default_rng(seed + 7919)
    articles = [a for a in load_markdown_dir(kb_dir or demo_kb_dir()) if a.questions]
    by_category: dict[str, list[Any]] = {}
    for article in sorted(articles, key=lambda a: a.id):
        category = DEVICE_CATEGORY.get(article.id) or CATEGORY_OF_PREFIX.get(article.id.split("-")[0])
        if category is None:
            category = "upgrade_interest" if article.id.startswith("devices") else "general_question"
        by_category.setdefault(category, []).append(article)
    issues = []
    for category, members in by_category.items():
        share, unresolved, aht, sentiment = CATEGORIES[category]
        within = rng.dirichlet(np.full(len(members), 2.0))  # some issues are more common than others
        for article, w in zip(members, within, strict=True):
            issues.append(
                Issue(
                    id=article.id,
                    title=article.title,
                    category=category,
                    phrasings=tuple(article.questions),
                    weight=float(share * w),
                    unresolved=float(np.clip(unresolved * rng.uniform(0.6, 1.4), 0.02, 0.6)),
                    aht_s=float(aht * rng.uniform(0.8, 1.2)),
                    sentiment=float(np.clip(sentiment + rng.normal(0, 0.08), -0.9, 0.6)),
                )
            )
    total = sum(i.weight for i in issues)
    return [Issue(**{**i.__dict__, "weight": i.weight / total}) for i in issues]


@dataclass
class SyntheticHistory:
    """Calls as columns, sorted by end time."""

    issues: list[Issue]
    start: float
    days: int
    seed: int
    ended_at: np.ndarray
    duration: np.ndarray
    customer: np.ndarray
    agent: np.ndarray
    issue: np.ndarray
    phrasing: np.ndarray
    followup: np.ndarray  # index into followups(); -1 none
    resolution: np.ndarray  # issue index whose article was tried
    depth: np.ndarray  # 0 first contact, k = k-th repeat
    sentiment: np.ndarray
    cancellation: np.ndarray
    wait_s: np.ndarray
    outage: np.ndarray  # injected outage call
    customer_tier: np.ndarray
    customer_clv: np.ndarray
    customer_renewal: np.ndarray
    customer_product: np.ndarray
    customer_at_risk: np.ndarray
    agent_skill: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ended_at.size)

    # ------------------------------------------------------------------ names and texts

    def call_id(self, i: int) -> str:
        return f"syn{self.seed}-{i:08d}"

    @staticmethod
    def customer_id(c: int) -> str:
        return f"cust-{c:07d}"

    @staticmethod
    def agent_id(a: int) -> str:
        return f"agent-{a + 1:03d}"

    @staticmethod
    def followups() -> tuple[str, ...]:
        return REPEAT_PHRASES + CANCEL_PHRASES + MOOD_PHRASES

    def summary_index(self) -> tuple[np.ndarray, list[str]]:
        """Per call, an index into the distinct summaries (the text clustering sees)."""
        offsets = np.cumsum([0] + [len(i.phrasings) for i in self.issues])
        phrase = offsets[self.issue] + self.phrasing
        n_follow = len(self.followups()) + 1
        combined = phrase * n_follow + (self.followup + 1)
        unique, inverse = np.unique(combined, return_inverse=True)
        phrasings = [p for i in self.issues for p in i.phrasings]
        follow = ("", *self.followups())
        texts = []
        for code in unique.tolist():
            p, f = divmod(int(code), n_follow)
            texts.append(phrasings[p] + (f" … {follow[f]}" if f else ""))
        return inverse.astype(np.int64), texts

    # ------------------------------------------------------------------ outputs

    def facts(self, batch: int = 50_000) -> Iterator[tuple[list[CallFacts], np.ndarray]]:
        """CallFacts in batches with each call's index into ``summary_index()``'s texts."""
        index, texts = self.summary_index()
        for start in range(0, len(self), batch):
            stop = min(start + batch, len(self))
            out = []
            for i in range(start, stop):
                issue = self.issues[int(self.issue[i])]
                c = int(self.customer[i])
                out.append(
                    CallFacts(
                        call_id=self.call_id(i),
                        customer_id=self.customer_id(c),
                        agent_id=self.agent_id(int(self.agent[i])),
                        team=None,
                        started_at=float(self.ended_at[i] - self.duration[i]),
                        ended_at=float(self.ended_at[i]),
                        duration=float(self.duration[i]),
                        category=issue.category,
                        sentiment=float(self.sentiment[i]),
                        sentiment_mean=float(self.sentiment[i]),
                        cancellation=bool(self.cancellation[i]),
                        resolution=self.issues[int(self.resolution[i])].title,
                        summary=texts[int(index[i])],
                        clv=float(self.customer_clv[c]),
                        wait_s=float(self.wait_s[i]),
                    )
                )
            yield out, index[start:stop]

    def profiles(self) -> list[CustomerProfile]:
        out = []
        for c in range(self.customer_tier.size):
            rng = np.random.default_rng(self.seed * 1_000_003 + c)
            out.append(
                CustomerProfile(
                    customer_id=self.customer_id(c),
                    name=f"{FIRST_NAMES[c % len(FIRST_NAMES)]} {SURNAMES[(c // 7) % len(SURNAMES)]}",
                    tier=TIERS[int(self.customer_tier[c])],
                    clv=round(float(self.customer_clv[c]), 2),
                    renewal_date=date.fromtimestamp(float(self.customer_renewal[c])),
                    product=PRODUCTS[int(self.customer_product[c])],
                    language="en",
                    phone=f"+44 7700 9{int(rng.integers(0, 100_000)):05d}",
                )
            )
        return out

    def record(self, i: int) -> dict[str, Any]:
        """The stored call record this call would have produced (``CallSession.record()`` shape)."""
        rng = np.random.default_rng(self.seed * 7_000_003 + i)
        issue = self.issues[int(self.issue[i])]
        tried = self.issues[int(self.resolution[i])]
        c, a = int(self.customer[i]), int(self.agent[i])
        duration = float(self.duration[i])
        ended = float(self.ended_at[i])
        started = ended - duration
        s = float(self.sentiment[i])
        agent_name = FIRST_NAMES[a % len(FIRST_NAMES)]
        customer_name = f"{FIRST_NAMES[c % len(FIRST_NAMES)]} {SURNAMES[(c // 7) % len(SURNAMES)]}"
        follow = self.followups()[int(self.followup[i])] if self.followup[i] >= 0 else None
        lines: list[tuple[str, str, float | None]] = [
            (
                "agent",
                f"Thank you for calling Northwind Connect, my name is {agent_name}, how can I help?",
                None,
            ),
            ("customer", issue.phrasings[int(self.phrasing[i])], s + 0.1),
            ("agent", "I can help with that. Can I take your full name and postcode please?", None),
            ("customer", f"it's {customer_name}, LS{c % 30 + 1} {c % 9 + 1}QT", s + 0.05),
            ("agent", "Thanks, that's verified. Let me have a look at that for you.", None),
        ]
        if follow:
            lines.append(("customer", follow, s - 0.1))
            lines.append(("agent", "I understand, and I'm sorry about that.", None))
        lines += [
            (
                "agent",
                f"So what I've done is follow our guide, {tried.title.lower()}, and that should sort it.",
                None,
            ),
            ("customer", CLOSINGS[int(rng.integers(0, len(CLOSINGS)))], s),
            (
                "agent",
                "Is there anything else I can help with today? Thanks for calling Northwind Connect.",
                None,
            ),
        ]
        step = duration / (len(lines) + 1)
        utterances, assists, series = [], [], []
        for n, (speaker, text, sentiment) in enumerate(lines):
            ts = round((n + 1) * step, 2)
            u: dict[str, Any] = {
                "index": n,
                "speaker": speaker,
                "text": text,
                "timestamp": ts,
                "utterance_id": f"u-{n}",
                "sentiment": None if sentiment is None else round(float(np.clip(sentiment, -1, 1)), 4),
            }
            if speaker == "customer":
                u["intent"] = issue.category
                u["articles"] = [tried.id]
                series.append({"timestamp": ts, "compound": u["sentiment"]})
                assists.append(
                    {
                        "type": "assist",
                        "call_id": self.call_id(i),
                        "utterance_id": u["utterance_id"],
                        "intent": issue.category,
                        "intent_confidence": 0.8,
                        "sentiment": u["sentiment"],
                        "knowledge_articles": [{"id": tried.id, "title": tried.title, "score": 0.6}],
                        "suggested_action": f"Use “{tried.title}”.",
                    }
                )
            utterances.append(u)
        return {
            "call_id": self.call_id(i),
            "agent_id": self.agent_id(a),
            "team": None,
            "customer": {
                "id": self.customer_id(c),
                "name": customer_name,
                "tier": TIERS[int(self.customer_tier[c])],
                "clv": round(float(self.customer_clv[c]), 2),
                "product": PRODUCTS[int(self.customer_product[c])],
                "language": "en",
            },
            "language": "en",
            "started_at": started,
            "ended_at": ended,
            "duration": round(duration, 3),
            "end_reason": "end",
            "primary_intent": issue.category,
            "intents": {issue.category: len(series)},
            "final_sentiment": series[-1]["compound"] if series else None,
            "sentiment_trend": "stable",
            "sentiment_series": series,
            "utterances": utterances,
            "assists": assists,
            "compliance_alerts": [],
            "disclosures": {},
            "holds": [],
            "supervisor_alerts": [],
            "wait_s": round(float(self.wait_s[i]), 1),
        }

    def records(self, indices: Sequence[int] | None = None) -> Iterator[dict[str, Any]]:
        for i in range(len(self)) if indices is None else indices:
            yield self.record(int(i))


def generate(
    *,
    days: int = 30,
    calls_per_day: int = 500,
    customers: int | None = None,
    agents: int | None = None,
    seed: int = 0,
    start: date | datetime | float | None = None,
    outages: Sequence[Outage] = (),
    issues: Sequence[Issue] | None = None,
    at_risk_share: float = 0.03,
) -> SyntheticHistory:
    """A seeded history of about ``calls_per_day`` calls a day (repeats included) over ``days``."""
    if days < 1 or calls_per_day < 1:
        raise ValueError("days and calls_per_day must be at least 1")
    rng = np.random.default_rng(seed)
    issues = list(issues) if issues is not None else load_issues(seed=seed)
    n_customers = customers or max(50, int(calls_per_day * days / 3.5))
    n_agents = agents or max(5, calls_per_day // 28)
    start_ts = _start(start, days)

    # Customers and agents.
    tier = rng.choice(len(TIERS), n_customers, p=TIER_P)
    clv = np.asarray(TIER_CLV)[tier] * rng.lognormal(0.0, 0.5, n_customers)
    renewal = start_ts + rng.uniform(0, 365, n_customers) * DAY_S
    product = rng.choice(len(PRODUCTS), n_customers, p=PRODUCT_P)
    at_risk = rng.random(n_customers) < at_risk_share
    activity = rng.lognormal(0.0, 1.0, n_customers)
    activity /= activity.sum()
    skill = rng.choice(5, n_agents, p=(0.08, 0.22, 0.38, 0.22, 0.10)) + 1

    weights = np.asarray([i.weight for i in issues])
    unresolved_p = np.asarray([i.unresolved for i in issues])
    # Expected repeats per first contact (geometric, capped at 4) sets the first-contact volume.
    expected = float(np.sum(weights * sum(unresolved_p**k for k in range(1, 5))))
    first_per_day = calls_per_day / (1 + expected * 1.05)

    hour_p = HOURS / HOURS.sum()
    day_index = np.arange(days)
    weekday = np.asarray([datetime.fromtimestamp(start_ts + d * DAY_S).weekday() for d in day_index])
    factor = WEEKDAY[weekday] / WEEKDAY.mean()
    per_day = rng.poisson(first_per_day * factor)
    n0 = int(per_day.sum())
    t = np.repeat(start_ts + day_index * DAY_S, per_day) + _time_of_day(rng, hour_p, n0)
    cols: dict[str, list[np.ndarray]] = {
        "t": [t],
        "customer": [rng.choice(n_customers, n0, p=activity)],
        "issue": [rng.choice(len(issues), n0, p=weights)],
        "depth": [np.zeros(n0, np.int64)],
        "outage": [np.zeros(n0, bool)],
    }
    # Injected outages: extra calls about one issue.
    for outage in outages:
        ids = [i.id for i in issues]
        if outage.issue not in ids:
            raise ValueError(f"unknown outage issue {outage.issue!r}")
        normal = (
            first_per_day
            * (1 + expected)
            * factor[min(outage.day, days - 1)]
            * float(hour_p[int(outage.hour) : int(outage.hour + outage.hours)].sum())
        )
        extra = rng.poisson(normal * outage.share / (1 - outage.share))
        ot = start_ts + outage.day * DAY_S + (outage.hour + rng.uniform(0, outage.hours, extra)) * 3600
        broadband = np.flatnonzero(product == 0)
        cols["t"].append(ot)
        cols["customer"].append(rng.choice(broadband if broadband.size else np.arange(n_customers), extra))
        cols["issue"].append(np.full(extra, ids.index(outage.issue)))
        cols["depth"].append(np.zeros(extra, np.int64))
        cols["outage"].append(np.ones(extra, bool))
    t = np.concatenate(cols["t"])
    customer = np.concatenate(cols["customer"])
    issue = np.concatenate(cols["issue"])
    depth = np.concatenate(cols["depth"])
    outage_flag = np.concatenate(cols["outage"])
    agent = rng.integers(0, n_agents, t.size)

    # Repeat chains: an unresolved call comes back (same customer, same issue), angrier.
    end_ts = start_ts + days * DAY_S
    generation = np.arange(t.size)
    unresolved = np.zeros(t.size, bool)
    for level in range(1, 5):
        parents = generation
        p = unresolved_p[issue[parents]] * (1.3 - 0.1 * skill[agent[parents]])
        p = np.where(at_risk[customer[parents]], np.maximum(p, 0.6), p)
        p = np.where(outage_flag[parents], 0.05, p)
        back = rng.random(parents.size) < np.clip(p, 0, 0.95)
        unresolved[parents[back]] = True
        parents = parents[back]
        delay = np.maximum(rng.exponential(2.5, parents.size), 0.1) * DAY_S
        day_of = np.floor((t[parents] + delay - start_ts) / DAY_S)
        child_t = start_ts + day_of * DAY_S + _time_of_day(rng, hour_p, parents.size)
        child_t = np.maximum(child_t, t[parents] + 3600)
        keep = child_t < end_ts
        parents, child_t = parents[keep], child_t[keep]
        first = t.size
        t = np.concatenate([t, child_t])
        customer = np.concatenate([customer, customer[parents]])
        issue = np.concatenate([issue, issue[parents]])
        depth = np.concatenate([depth, np.full(parents.size, level)])
        outage_flag = np.concatenate([outage_flag, outage_flag[parents]])
        agent = np.concatenate([agent, rng.integers(0, n_agents, parents.size)])
        unresolved = np.concatenate([unresolved, np.zeros(parents.size, bool)])
        generation = np.arange(first, t.size)

    n = t.size
    base = np.asarray([i.aht_s for i in issues])[issue]
    duration = base * (1.2 - 0.05 * skill[agent]) * (1.1**depth) * rng.lognormal(-0.08, 0.4, n)
    duration = np.clip(duration, 30, 3600)
    mood = np.asarray([i.sentiment for i in issues])[issue]
    sentiment = mood - 0.15 * depth - 0.15 * at_risk[customer] + rng.normal(0, 0.25, n)
    sentiment = np.clip(sentiment, -1, 1)
    category = np.asarray([i.category for i in issues])[issue]
    threat = (depth >= 2) & (rng.random(n) < 0.35) | (
        at_risk[customer] & (depth >= 1) & (rng.random(n) < 0.3)
    )
    cancellation = (category == "cancellation") | threat
    n_rep, n_can, n_mood = len(REPEAT_PHRASES), len(CANCEL_PHRASES), len(MOOD_PHRASES)
    followup = np.full(n, -1, np.int64)
    repeat_line = (depth >= 1) & (rng.random(n) < 0.7)
    followup[repeat_line] = rng.integers(0, n_rep, int(repeat_line.sum()))
    mood_line = (depth == 0) & (sentiment < -0.4) & (rng.random(n) < 0.3)
    followup[mood_line] = n_rep + n_can + rng.integers(0, n_mood, int(mood_line.sum()))
    followup[threat] = n_rep + rng.integers(0, n_can, int(threat.sum()))
    phrasing = (rng.random(n) * np.asarray([len(i.phrasings) for i in issues])[issue]).astype(np.int64)
    # The article on top of the agent's widget: retrieval finds the issue's own article as often
    # as the demo KB's measured recall@1 (docs/knowledge-base.md), else another in the category.
    resolution = issue.copy()
    by_category: dict[str, list[int]] = {}
    for k, item in enumerate(issues):
        by_category.setdefault(item.category, []).append(k)
    miss = rng.random(n) >= KB_RECALL_AT_1
    for k in np.flatnonzero(miss):
        others = [j for j in by_category[category[k]] if j != issue[k]]
        if others:
            resolution[k] = others[int(rng.integers(0, len(others)))]
    hour = ((t - start_ts) % DAY_S) / 3600
    busy = np.interp(hour, np.arange(24), HOURS / HOURS.max())
    wait_s = rng.exponential(8 + 30 * busy**2, n)

    order = np.argsort(t + duration, kind="stable")
    return SyntheticHistory(
        issues=list(issues),
        start=start_ts,
        days=days,
        seed=seed,
        ended_at=(t + duration)[order],
        duration=duration[order],
        customer=customer[order],
        agent=agent[order],
        issue=issue[order],
        phrasing=phrasing[order],
        followup=followup[order],
        resolution=resolution[order],
        depth=depth[order],
        sentiment=sentiment[order],
        cancellation=cancellation[order],
        wait_s=wait_s[order],
        outage=outage_flag[order],
        customer_tier=tier,
        customer_clv=clv,
        customer_renewal=renewal,
        customer_product=product,
        customer_at_risk=at_risk,
        agent_skill=skill,
        meta={
            "calls": n,
            "first_contacts": int((depth == 0).sum()),
            "repeats": int((depth > 0).sum()),
            "outage_calls": int(outage_flag.sum()),
            "customers": n_customers,
            "agents": n_agents,
            "at_risk_customers": int(at_risk.sum()),
        },
    )


def _start(start: date | datetime | float | None, days: int) -> float:
    if start is None:
        today = date.today()
        first = today - timedelta(days=days)
        return datetime(first.year, first.month, first.day).timestamp()
    if isinstance(start, datetime):
        return start.timestamp()
    if isinstance(start, date):
        return datetime(start.year, start.month, start.day).timestamp()
    return float(start)


def _time_of_day(rng: np.random.Generator, hour_p: np.ndarray, n: int) -> np.ndarray:
    hours = rng.choice(24, n, p=hour_p)
    return (hours + rng.random(n)) * 3600


def fingerprint(texts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:16]


def embed_texts(
    embedder: Any, texts: Sequence[str], cache_dir: Path | None = None, batch: int = 256
) -> np.ndarray:
    """Embeddings of ``texts`` (blocking), cached on disk by content when ``cache_dir`` is set."""
    path = None
    if cache_dir is not None:
        path = (
            Path(cache_dir)
            / f"analytics-summaries-{getattr(embedder, 'name', 'model').replace('/', '_')[-40:]}-{fingerprint(texts)}.npy"
        )
        path = path.with_name(path.name.replace(":", "_"))
        if path.exists():
            return np.load(path)
    parts = [embedder.encode(list(texts[i : i + batch])) for i in range(0, len(texts), batch)]
    vectors = np.concatenate(parts) if parts else np.zeros((0, getattr(embedder, "dim", 384)), np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


def expected_calls(days: int, calls_per_day: int) -> int:
    return int(math.ceil(days * calls_per_day))
