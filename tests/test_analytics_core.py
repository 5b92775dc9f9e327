"""Analytics core, no server: summaries, storage, issues, repeats, churn, emerging issues, KPIs,
customer profiles, the ROI model and the synthetic history."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from analytics import customers, emerging, kpis, repeats, roi
from analytics import store as st
from analytics.churn import explain, score_customers
from analytics.clustering import ClusterModel, match_ids, top_terms
from analytics.config import DAY_S, AnalyticsConfig, ChurnConfig, EmergingConfig, RepeatConfig
from analytics.errors import InvalidInput
from analytics.issues import issue_keys, previous_gap
from analytics.records import CallFacts, facts_from_record, summarize
from analytics.synthetic import Outage, generate

DEMO_CALLS = Path(__file__).resolve().parent.parent / "server" / "demo" / "calls"
NOW = 1_750_000_000.0


def frame_of(calls: list[dict[str, Any]]) -> st.Frame:
    """A frame from dicts (t = seconds before NOW); unspecified columns get neutral values."""
    calls = sorted(calls, key=lambda c: -c["ago"])
    col = lambda name, default: np.asarray([c.get(name, default) for c in calls])  # noqa: E731
    return st.Frame(
        row=np.arange(1, len(calls) + 1, dtype=np.int64),
        ended_at=NOW - col("ago", 0).astype(np.float64),
        duration=col("duration", 300.0).astype(np.float32),
        customer=col("customer", -1).astype(np.int64),
        agent=col("agent", 1).astype(np.int64),
        category=col("category", 0).astype(np.int64),
        resolution=col("resolution", -1).astype(np.int64),
        cluster=col("cluster", -1).astype(np.int64),
        sentiment=col("sentiment", np.nan).astype(np.float32),
        cancellation=col("cancellation", False).astype(bool),
        wait_s=col("wait_s", np.nan).astype(np.float32),
        clv=col("clv", np.nan).astype(np.float32),
    )


def memory_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    st.open_schema(conn)
    return conn


def facts(call_id: str, **extra: Any) -> CallFacts:
    base: dict[str, Any] = {
        "call_id": call_id,
        "customer_id": "c-1",
        "agent_id": "a-1",
        "team": None,
        "started_at": NOW - 400,
        "ended_at": NOW - 100,
        "duration": 300.0,
        "category": "billing_inquiry",
        "sentiment": -0.2,
        "sentiment_mean": -0.1,
        "cancellation": False,
        "resolution": "Why is my bill higher than usual?",
        "summary": "my bill is higher than usual",
    }
    return CallFacts(**{**base, **extra})


# ---------------------------------------------------------------------------------------- records


def test_summary_skips_identity_answers_and_keeps_the_issue() -> None:
    """The extractive summary is the customer's issue sentences, not their name and postcode."""
    script = yaml.safe_load((DEMO_CALLS / "billing-dispute.yaml").read_text())
    summary = summarize(script["utterances"], None)
    assert "charged twice" in summary
    assert "Whitfield" not in summary and "LS6" not in summary


def test_facts_from_record_reads_intent_sentiment_cancellation_and_tried_article() -> None:
    """A stored record gives its category, mean sentiment, cancellation intent and top article."""
    record = {
        "call_id": "c1",
        "agent_id": "a1",
        "customer": {"id": "cust-9", "clv": 1200},
        "started_at": 100.0,
        "ended_at": 400.0,
        "duration": 300.0,
        "primary_intent": "technical_support",
        "final_sentiment": -0.6,
        "sentiment_series": [{"timestamp": 1, "compound": -0.2}, {"timestamp": 2, "compound": -0.6}],
        "utterances": [
            {
                "speaker": "customer",
                "text": "my internet has been down for two days",
                "intent": "technical_support",
            },
            {
                "speaker": "customer",
                "text": "honestly I'm going to cancel if it's not fixed",
                "intent": "technical_support",
            },
        ],
        "assists": [
            {"knowledge_articles": [{"id": "outage", "title": "Checking for an outage"}]},
            {"knowledge_articles": [{"id": "outage", "title": "Checking for an outage"}]},
        ],
    }
    f = facts_from_record(record, cancellation_patterns=AnalyticsConfig().cancellation_patterns)
    assert (f.customer_id, f.category, f.clv) == ("cust-9", "technical_support", 1200.0)
    assert f.sentiment_mean == pytest.approx(-0.4)
    assert f.cancellation is True
    assert f.resolution == "Checking for an outage"
    assert "internet has been down" in f.summary


def test_facts_from_a_record_without_ids_raise() -> None:
    """A record missing its call id is refused (the ingestion counts and skips it)."""
    with pytest.raises(KeyError):
        facts_from_record({"agent_id": "a", "started_at": 1, "ended_at": 2})


# ------------------------------------------------------------------------------------------ store


def test_int8_vectors_keep_cosine() -> None:
    """Stored int8 embeddings stay within 0.001 cosine of the float vectors."""
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    back = st.dequantize(*st.quantize(v))
    assert np.min(np.sum(v * back, axis=1)) > 0.999


def test_ingestion_is_idempotent_by_call_id() -> None:
    """Storing the same calls twice (a re-read batch) keeps one row each."""
    conn = memory_db()
    names = st.Names()
    batch = [facts("c1"), facts("c2", customer_id="c-2"), facts("c1")]
    vectors = np.eye(3, 8, dtype=np.float32)
    assert st.insert_calls(conn, names, batch, vectors) == 2
    assert st.insert_calls(conn, names, batch, vectors) == 0
    frame = st.load_frame(conn, 0, NOW)
    assert len(frame) == 2
    positions, got = st.vectors_for(conn, frame.row, 8)
    assert sorted(positions.tolist()) == [0, 1]
    assert np.allclose(got[np.argsort(positions)], vectors[:2], atol=1e-2)
    assert set(st.summaries_for(conn, frame.row.tolist()).values()) == {"my bill is higher than usual"}


def test_name_cache_stays_bounded_and_answers_from_the_table() -> None:
    """Every new caller adds a name: the cache starts over at its capacity, and names and
    keys still resolve (from the table) after it did."""
    conn = memory_db()
    names = st.Names(capacity=10)
    first = names.keys(conn, "customer", [f"cust-{i}" for i in range(8)])
    for start in range(8, 200, 8):
        names.keys(conn, "customer", [f"cust-{i}" for i in range(start, start + 8)])
        assert len(names) <= 10 + 8  # one call's own names may pass the capacity until it returns
    assert names.keys(conn, "customer", ["cust-0", "cust-7"]) == [first[0], first[7]]
    assert names.lookup(conn, first[:2]) == {first[0]: "cust-0", first[1]: "cust-1"}
    assert names.key_of(conn, "customer", "cust-3") == first[3]
    assert names.key_of(conn, "customer", "nobody") is None


# ----------------------------------------------------------------------------------------- issues


def test_same_issue_needs_matching_evidence_not_just_the_category() -> None:
    """Two billing calls about different problems are different issues; same cluster or same
    article links them, and a third call links through to the first."""
    frame = frame_of(
        [
            {"ago": 10 * DAY_S, "customer": 1, "category": 0, "cluster": 5, "resolution": 50},
            {"ago": 8 * DAY_S, "customer": 1, "category": 0, "cluster": 6, "resolution": 60},
            {"ago": 6 * DAY_S, "customer": 1, "category": 0, "cluster": 9, "resolution": 50},
            {"ago": 5 * DAY_S, "customer": 2, "category": 0},
            {"ago": 4 * DAY_S, "customer": 2, "category": 0},
        ]
    )
    keys = issue_keys(frame, True, 14)
    assert keys[0] == keys[2] != keys[1]  # same article (50) across a different issue in between
    assert keys[3] == keys[4]  # no evidence either way: the category decides
    assert len(set(issue_keys(frame, False).tolist())) == 1  # the seed: one billing label
    gaps = previous_gap(frame, keys)
    assert gaps[2] == pytest.approx(4 * DAY_S) and np.isinf(gaps[1])


def test_repeat_groups_follow_lookback_threshold_and_clv_order() -> None:
    """Repeat callers: threshold calls within the lookback, richest customer first (seed parity)."""
    frame = frame_of(
        [
            {"ago": 20 * DAY_S, "customer": 1, "cluster": 3},
            {"ago": 2 * DAY_S, "customer": 1, "cluster": 3},
            {"ago": 5 * DAY_S, "customer": 2, "cluster": 4},
            {"ago": 1 * DAY_S, "customer": 2, "cluster": 4},
            {"ago": 3 * DAY_S, "customer": 3, "cluster": 7},
            {"ago": 2 * DAY_S, "customer": 3, "cluster": 7},
            {"ago": 1 * DAY_S, "customer": 3, "cluster": 7},
        ]
    )
    clv = np.where(frame.customer == 3, 900.0, np.where(frame.customer == 2, 5000.0, 100.0))
    groups = repeats.find_groups(frame, NOW, RepeatConfig(), clv)
    assert groups.customer.tolist() == [2, 3]  # customer 1's first call is outside the 14 days
    assert groups.calls.tolist() == [2, 3]
    wider = repeats.find_groups(frame, NOW, RepeatConfig(lookback_days=30), clv)
    assert 1 in wider.customer.tolist()
    assert repeats.find_groups(frame, NOW, RepeatConfig(threshold=3), clv).customer.tolist() == [3]


# ------------------------------------------------------------------------------------------- churn


def test_churn_factors_values_weights_and_urgency() -> None:
    """Every factor is listed with its value, strength, weight and contribution; they sum to the score."""
    calls = [
        {"ago": d * DAY_S, "customer": 1, "cluster": 2, "sentiment": -0.6, "cancellation": d == 1}
        for d in (1, 3, 6, 9)
    ]
    calls += [
        {"ago": 40 * DAY_S, "customer": 2, "cluster": 8, "sentiment": 0.4},
        {"ago": 2 * DAY_S, "customer": 2, "cluster": 9, "sentiment": 0.3},
    ]
    frame = frame_of(calls)
    keys = np.asarray([1, 2])
    scores = score_customers(
        frame,
        NOW,
        ChurnConfig(),
        RepeatConfig(),
        np.asarray([5000.0, 100.0]),
        np.asarray([NOW + 10 * DAY_S, np.nan]),
        keys,
    )
    first = explain(scores, 0, ChurnConfig())
    factors = {f["factor"]: f for f in first["factors"]}
    assert factors["unresolved_repeats"]["value"] == 3 and factors["unresolved_repeats"]["strength"] == 1.0
    assert factors["cancellation_intent"]["value"] == 1
    assert factors["negative_sentiment"]["value"] == pytest.approx(-0.6, abs=1e-3)
    assert factors["renewal_soon"]["value"] == pytest.approx(10.0, abs=0.1)
    assert factors["call_acceleration"]["strength"] == 1.0  # 4 calls in 14 days vs none before
    assert first["score"] == pytest.approx(sum(f["contribution"] for f in first["factors"]), abs=1e-3)
    assert first["urgency"] == "high" and first["clv"] == 5000.0
    assert "retention" in first["recommended_actions"][0]
    second = explain(scores, 1, ChurnConfig())
    assert second["urgency"] == "low" and second["score"] < 0.4


def test_churn_weights_are_normalised() -> None:
    """Weights that do not sum to 1 still give scores in [0, 1]."""
    config = ChurnConfig.model_validate({"weights": {"cancellation_intent": 2, "renewal_soon": 2}})
    frame = frame_of([{"ago": DAY_S, "customer": 1, "cancellation": True}])
    scores = score_customers(
        frame, NOW, config, RepeatConfig(), np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    )
    assert 0 <= scores.score[0] <= 1


# ----------------------------------------------------------------------------------------- emerging


def test_a_cluster_that_jumps_today_is_an_emerging_issue() -> None:
    """A cluster at 1% of calls for a week and 15% today is flagged; the steady ones are not."""
    rng = np.random.default_rng(1)
    calls = []
    for day in range(8, 0, -1):
        for _ in range(400):
            calls.append(
                {"ago": (day - 1) * DAY_S + rng.uniform(0.5, 10) * 3600, "cluster": int(rng.integers(1, 40))}
            )
    calls += [{"ago": rng.uniform(0.5, 10) * 3600, "cluster": 99} for _ in range(60)]
    calls += [{"ago": 30 * DAY_S + i, "cluster": 99} for i in range(4)]
    frame = frame_of(calls)
    found = emerging.detect(frame, NOW, EmergingConfig(), None)
    assert [e.group_id for e in found if e.basis == "cluster"] == [99]
    issue = next(e for e in found if e.basis == "cluster")
    assert issue.calls_today == 60 and issue.share > 0.1 and issue.baseline_share < 0.01
    quiet = frame.take(frame.cluster != 99)
    assert [e for e in emerging.detect(quiet, NOW, EmergingConfig(), None) if e.basis == "cluster"] == []


def test_an_afternoon_jump_is_not_diluted_by_the_morning() -> None:
    """The last hours are tested on their own: a jump in the last hour that the whole day's share
    hides (less than double since midnight) is flagged; with recent_hours 0 it is not."""
    rng = np.random.default_rng(2)
    evening = emerging.day_start(NOW, None) + 23.5 * 3600  # late in the day: a long "today"
    calls = []
    for day in range(1, 8):
        calls += [
            {
                "ago": day * DAY_S + 3600 * rng.uniform(1, 12),
                "cluster": 99 if i < 20 else int(rng.integers(1, 40)),
            }
            for i in range(400)
        ]
    calls += [
        {"ago": 3600 * rng.uniform(4, 12), "cluster": 99 if i < 30 else int(rng.integers(1, 40))}
        for i in range(600)
    ]
    calls += [
        {"ago": 3600 * rng.uniform(0, 1), "cluster": 99 if i < 30 else int(rng.integers(1, 40))}
        for i in range(80)
    ]
    frame = frame_of([{**c, "ago": c["ago"] + NOW - evening} for c in calls])
    found = {
        e.group_id: e for e in emerging.detect(frame, evening, EmergingConfig(), None) if e.basis == "cluster"
    }
    assert 99 in found and found[99].share > 0.3
    blind = EmergingConfig(recent_hours=0)
    assert 99 not in {e.group_id for e in emerging.detect(frame, evening, blind, None)}


def test_few_calls_never_make_an_emerging_issue() -> None:
    """Below min_calls a jump is noise, however large the ratio."""
    calls = [{"ago": d * DAY_S + 3600, "cluster": 1} for d in range(1, 8) for _ in range(20)]
    calls += [{"ago": 600, "cluster": 2} for _ in range(5)] + [{"ago": 600, "cluster": 1} for _ in range(5)]
    assert emerging.detect(frame_of(calls), NOW, EmergingConfig(), None) == []


# -------------------------------------------------------------------------------------------- KPIs


def test_fcr_repeat_rate_and_service_level() -> None:
    """FCR counts a call resolved unless the customer calls back about it within 7 days, over the
    latest period that can be judged; service level counts answered within 20 s."""
    frame = frame_of(
        [
            {"ago": 20 * DAY_S, "customer": 1, "cluster": 1, "wait_s": 5},
            {"ago": 17 * DAY_S, "customer": 1, "cluster": 1, "wait_s": 40},  # recontact of the first
            {"ago": 15 * DAY_S, "customer": 2, "cluster": 2, "wait_s": 10},
            {"ago": 12 * DAY_S, "customer": 3, "cluster": 3},
            {"ago": 1 * DAY_S, "customer": 4, "cluster": 4},  # too recent to judge
        ]
    )
    config = AnalyticsConfig()
    flags = kpis.call_flags(frame, config)
    out = kpis.kpis(frame, NOW, config, flags, None, None)
    assert out["fcr_eligible"] == 4 and out["fcr"] == 0.75
    recent = kpis.kpis(frame, NOW, config, flags, None, None, period_days=9)
    assert recent["fcr_eligible"] == 2 and recent["fcr"] == 1.0  # the calls 15 and 12 days ago
    assert out["repeat_rate"] == 0.2
    assert out["service_level"] == pytest.approx(2 / 3, abs=1e-3) and out["service_level_calls"] == 3
    assert out["qa"] is None


def test_qa_distribution_when_the_qa_table_exists() -> None:
    """QA scores come from qa_scorecards when the QA package created it; absent otherwise."""
    conn = memory_db()
    assert kpis.qa_scores(conn, 0, NOW) is None
    conn.execute("CREATE TABLE qa_scorecards (call_id TEXT PRIMARY KEY, ended_at REAL, overall_score REAL)")
    conn.executemany(
        "INSERT INTO qa_scorecards VALUES (?,?,?)",
        [(f"c{i}", NOW - 10, s) for i, s in enumerate((60, 70, 80, 90))],
    )
    summary = kpis.qa_summary(kpis.qa_scores(conn, 0, NOW))
    assert summary is not None
    assert summary["mean"] == 75 and summary["std"] == pytest.approx(12.9099, abs=1e-3)
    assert sum(b["count"] for b in summary["histogram"]) == 4


# -------------------------------------------------------------------------------------- clustering


def test_refitted_clusters_keep_their_ids() -> None:
    """A refit matches new centroids to old ones, so an issue keeps its id; new ones get new ids."""
    old = np.eye(3, 4, dtype=np.float32)
    previous = ClusterModel(
        "embedding", np.asarray([7, 8, 9]), old, ["a", "b", "c"], [[]] * 3, [[]] * 3, np.ones(3), 0.0
    )
    new = np.asarray([[0, 0.99, 0.1, 0], [0, 0, 0, 1], [0.98, 0.05, 0, 0]], dtype=np.float32)
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    assert match_ids(new, previous, 0.85, 10).tolist() == [8, 10, 7]


def test_top_terms_are_what_most_members_say() -> None:
    """Cluster terms cover many members and separate clusters."""
    terms = top_terms(
        [
            ["my direct debit failed", "the direct debit bounced", "direct debit did not go out"],
            ["router light is red", "router keeps dropping", "new router please"],
        ],
        3,
    )
    assert terms[0][0] == "direct debit" and terms[1][0] == "router"


# -------------------------------------------------------------------------------------- customers


def test_profile_validation_names_the_field() -> None:
    """Bad profiles are refused with the offending field."""
    with pytest.raises(InvalidInput) as bad:
        customers.validate({"clv": -5}, "c1")
    assert bad.value.field == "clv"
    with pytest.raises(InvalidInput) as bad_date:
        customers.validate({"renewal_date": "next tuesday"}, "c1")
    assert bad_date.value.field == "renewal_date"
    with pytest.raises(InvalidInput) as typo:
        customers.validate({"clvv": 5}, "c1")
    assert typo.value.field == "clvv"


def test_csv_import_is_all_or_nothing_and_merges() -> None:
    """One bad row rejects the file naming the line; a good file upserts, keeping unset fields."""
    bad = "customer_id,clv,renewal_date\nc1,100,2025-01-31\nc2,lots,2025-02-01\n"
    with pytest.raises(InvalidInput) as exc:
        customers.parse_import(bad, "csv")
    assert exc.value.extra["rows"][0]["line"] == 3 and exc.value.extra["rows"][0]["field"] == "clv"
    conn = memory_db()
    profiles, ignored = customers.parse_import("customer_id,clv,tier,crm_owner\nc1,100,Gold,x\n", "csv")
    customers.upsert(conn, profiles)
    assert ignored == ["crm_owner"]
    customers.upsert(conn, [customers.validate({"renewal_date": "2025-03-01"}, "c1")])
    stored = customers.get(conn, "c1")
    assert stored is not None and (stored.clv, stored.tier, str(stored.renewal_date)) == (
        100.0,
        "gold",
        "2025-03-01",
    )


# -------------------------------------------------------------------------------------------- ROI


def test_roi_computes_from_its_inputs() -> None:
    """Every figure follows from the inputs (defaults: 500 seats)."""
    out = roi.compute(roi.RoiInputs())
    assert out["calls_per_year"] == 6_250_000
    assert out["savings"] == {
        "handle_time": 5_468_750,
        "staffing": 3_640_000,
        "qa": 440_000,
        "transfers": 3_656_250,
    }
    assert out["total_savings"] == 13_205_000 and out["retention_revenue"] == 1_080_000
    assert out["first_year_cost"] == 730_000
    assert out["roi_percent"] == pytest.approx((14_285_000 - 730_000) / 730_000 * 100, abs=0.01)
    assert out["payback_months"] == pytest.approx(730_000 / (14_285_000 / 12), abs=1e-3)
    half = roi.compute(roi.RoiInputs(seats=250))
    assert half["savings"]["handle_time"] == 5_468_750 / 2 and half["savings"]["qa"] == 440_000


def test_roi_seed_figures_and_bad_input() -> None:
    """The seed's printed figures imply a $730k cost; bad inputs name their field."""
    check = roi.seed_check()
    assert check["implied_first_year_cost"] == pytest.approx(730_078.12, abs=0.01)
    assert check["computed_with_defaults"]["total_savings"] != check["printed"]["total_savings"]
    with pytest.raises(InvalidInput) as exc:
        roi.RoiInputs.parse({"retention_rate": 2})
    assert exc.value.field == "retention_rate"


# -------------------------------------------------------------------------------------- synthetic


def test_synthetic_history_is_seeded_sized_and_has_repeats_and_outages() -> None:
    """Same seed, same calls; about calls_per_day a day; repeats come back; outages add calls."""
    a = generate(
        days=10, calls_per_day=200, seed=4, start=1_700_000_000.0, outages=[Outage(day=5, share=0.3)]
    )
    b = generate(
        days=10, calls_per_day=200, seed=4, start=1_700_000_000.0, outages=[Outage(day=5, share=0.3)]
    )
    assert np.array_equal(a.ended_at, b.ended_at) and np.array_equal(a.issue, b.issue)
    normal = len(a) - a.meta["outage_calls"]
    assert 0.85 * 2000 < normal < 1.1 * 2000
    assert a.meta["repeats"] > 0.1 * len(a)
    t = a.ended_at[a.outage]
    assert a.meta["outage_calls"] > 20 and t.min() >= a.start + 5 * DAY_S + 9 * 3600
    record = a.record(0)
    assert facts_from_record(record).call_id == a.call_id(0)


def test_same_issue_repeats_are_more_precise_than_category_repeats() -> None:
    """On the synthetic history (truth known) same-issue links keep most true repeats and cut the
    category rule's false ones."""
    h = generate(days=20, calls_per_day=300, seed=11, start=1_700_000_000.0)
    index, texts = h.summary_index()
    # Clusters: the phrasing itself (a perfect cluster per phrasing, coarser than nothing).
    cluster = h.issue * 100 + h.phrasing
    frame = st.Frame(
        row=np.arange(len(h)),
        ended_at=h.ended_at,
        duration=h.duration.astype(np.float32),
        customer=h.customer.astype(np.int64),
        agent=h.agent.astype(np.int64),
        category=np.asarray(
            [sorted({i.category for i in h.issues}).index(h.issues[k].category) for k in h.issue]
        ),
        resolution=h.resolution.astype(np.int64),
        cluster=cluster.astype(np.int64),
        sentiment=h.sentiment.astype(np.float32),
        cancellation=h.cancellation,
        wait_s=h.wait_s.astype(np.float32),
        clv=np.full(len(h), np.nan, np.float32),
    )
    truth = previous_gap(frame, h.issue.astype(np.int64)) <= 14 * DAY_S

    def precision_recall(pred: np.ndarray) -> tuple[float, float]:
        hit = (pred & truth).sum()
        return hit / pred.sum(), hit / truth.sum()

    seed = precision_recall(previous_gap(frame, issue_keys(frame, False)) <= 14 * DAY_S)
    ours = precision_recall(previous_gap(frame, issue_keys(frame, True, 14)) <= 14 * DAY_S)
    assert ours[0] > seed[0] + 0.2
    assert ours[1] > 0.75
    del index, texts
