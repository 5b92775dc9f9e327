"""The routing core, pure: seed scores, filters, escalation, overflow, joint assignment."""

from __future__ import annotations

import numpy as np
import pytest

from routing import scoring
from routing.config import Overflow, RoutingConfig
from routing.model import AgentStatus
from tests.routing_support import T0, agent, call, commit, engine

NO_HOLDS = Overflow(product_hold_s=0, specialization_hold_s=0, callback_after_s=None)
HOLDS_10_20 = RoutingConfig(
    overflow=Overflow(product_hold_s=10, specialization_hold_s=20, hold_only_if_agent_due=False)
)


def test_defaults_are_the_seed_weights() -> None:
    """Queue priority and agent match default to the seed's weights and caps."""
    cfg = RoutingConfig()
    assert cfg.priority.model_dump() == {
        "wait": 0.25, "clv": 0.20, "tier": 0.20, "severity": 0.15, "sentiment": 0.10, "repeat": 0.10,
    }  # fmt: skip
    assert cfg.match.model_dump() == {
        "product": 0.30, "specialization": 0.25, "skill": 0.15, "csat": 0.15, "continuity": 0.15,
    }  # fmt: skip
    assert (cfg.wait_cap_s, cfg.clv_cap) == (600.0, 50_000.0)
    assert cfg.escalation.sentiment_below == -0.5 and cfg.escalation.handle_time_factor == 1.4


def test_priority_factors_follow_the_seed() -> None:
    """Wait caps at 10 min, CLV at $50k; each factor is value x weight."""
    cfg = RoutingConfig(aging_bound_s=None)
    caller = call(
        "c", tier="platinum", clv=80_000, issue_category="fraud", ivr_sentiment=-0.4, repeat_caller=True
    ).profile
    factors = scoring.priority_factors(caller, 900.0, cfg)
    assert factors["wait"]["value"] == 1.0 and factors["clv"]["value"] == 1.0
    assert factors["sentiment"]["value"] == pytest.approx(0.4)
    assert scoring.priority(caller, 900.0, cfg) == pytest.approx(0.25 + 0.2 + 0.2 + 0.15 + 0.04 + 0.1)


def test_best_agent_wins_on_match_and_explains_why() -> None:
    """The product+specialization agent beats a generic one; the explanation adds up."""
    e = engine(
        agent("generic", skill_level=5, csat=5.0),
        agent("fit", products=["mobile"], specializations=["billing"], skill_level=3, csat=4.0),
    )
    e.apply_call(call("c1", product="mobile", issue_category="billing", tier="gold", clv=5000))
    (a,) = e.propose(T0 + 1)
    assert (a.call_id, a.agent_id) == ("c1", "fit")
    x = a.explanation
    assert x["strategy"] == "best_agent_for_call"
    assert x["candidates_considered"] == 1  # the generic agent lacks the product the call still requires
    assert scoring.total(x["priority"]["factors"]) == pytest.approx(x["priority"]["score"], abs=1e-5)
    assert x["priority"]["score"] + x["match"]["score"] == pytest.approx(x["score"], abs=1e-5)
    assert {"product", "specialization", "skill", "csat", "continuity"} == set(x["match"]["factors"])


def test_vectorised_scores_equal_the_reference_functions() -> None:
    """The engine's matrix scores equal scoring.priority + scoring.match for every pair."""
    rng = np.random.default_rng(3)
    cfg = RoutingConfig(overflow=NO_HOLDS)
    agents = [
        agent(
            f"a{i}",
            languages=["en"],
            products=list(rng.choice(["tv", "mobile", "net"], 2, replace=False)),
            specializations=[str(rng.choice(["billing", "technical"]))],
            skill_level=int(rng.integers(1, 6)),
            csat=float(rng.uniform(1, 5)),
        )  # fmt: skip
        for i in range(7)
    ]
    e = engine(*agents, config=cfg)
    calls = []
    for i in range(9):
        c = call(
            f"c{i}", at=T0 + i, product=str(rng.choice(["tv", "mobile", "net"])),
            issue_category=str(rng.choice(["billing", "technical", "fraud"])), clv=float(rng.uniform(0, 9e4)),
            tier=str(rng.choice(["standard", "gold"])), ivr_sentiment=float(rng.uniform(-0.5, 1)),
            repeat_caller=bool(rng.integers(2)), previous_agent_id=f"a{i % 7}",
        )  # fmt: skip
        calls.append(c)
        e.apply_call(c)
    now = T0 + 200
    el = e._eligibility(e.queue.active_slots(), np.flatnonzero(e.agents.free_mask(now)), now)
    for r, slot in enumerate(el.calls):
        caller = e.queue.records[slot].profile
        wait = now - e.queue.wait_start[slot]
        for c_, a_slot in enumerate(el.agents):
            expected = scoring.priority(caller, wait, cfg) + scoring.match(
                caller, agents[a_slot].profile, cfg
            )
            assert el.score[r, c_] == pytest.approx(expected, abs=1e-9)


def test_language_is_a_hard_filter() -> None:
    """A perfect match in the wrong language is never chosen; the call waits instead."""
    e = engine(agent("en-star", languages=["en"], products=["tv"], skill_level=5, csat=5.0))
    e.apply_call(call("c1", language="es", product="tv"))
    assert e.propose(T0 + 500) == []
    assert "no logged-in agent speaks 'es'" in e.explain_waiting("c1", T0 + 500)["why"]
    e.apply_agent(agent("es-1", languages=["es", "en"], skill_level=1, csat=1.0))
    (a,) = e.propose(T0 + 501)
    assert a.agent_id == "es-1"


def test_ties_go_to_the_longest_idle_agent() -> None:
    """Identical agents: the one idle longest takes the call."""
    e = engine(
        agent("recent", idle_since=T0 - 10),
        agent("longest", idle_since=T0 - 300),
        agent("mid", idle_since=T0 - 60),
    )
    e.apply_call(call("c1"))
    (a,) = e.propose(T0)
    assert a.agent_id == "longest"
    assert "longest idle" in a.explanation["why"]


def test_negative_ivr_sentiment_escalates_to_senior_high_csat_agents() -> None:
    """Sentiment < -0.5: only senior (skill>=4) high-CSAT (>=4.5) agents; handle time x1.4."""
    e = engine(
        agent("junior-fit", products=["tv"], specializations=["billing"], skill_level=2, csat=4.9, avg_handle_time=300),
        agent("senior-low-csat", skill_level=5, csat=4.0),
        agent("senior", skill_level=4, csat=4.6, avg_handle_time=400),
    )  # fmt: skip
    e.apply_call(call("angry", product="tv", issue_category="billing", ivr_sentiment=-0.8))
    (a,) = e.propose(T0)
    assert a.agent_id == "senior" and a.escalated
    assert a.predicted_handle_time_s == pytest.approx(400 * 1.4)
    assert a.explanation["escalation"]["senior_required"] is True
    commit(e, a.call_id, a.agent_id, T0)
    e.apply_call(call("calm", at=T0 + 1, product="tv", issue_category="billing", ivr_sentiment=-0.5))
    (b,) = e.propose(T0 + 1)
    assert b.agent_id == "junior-fit" and not b.escalated  # -0.5 is not below -0.5


def test_escalation_widens_to_any_agent_after_its_hold() -> None:
    """Seniors busy: an escalated caller waits escalation.hold_s, then takes the best other agent."""
    e = engine(agent("junior"), agent("senior", skill_level=5, csat=4.8, status="on_call"))
    e.apply_call(call("angry", ivr_sentiment=-0.9))
    assert e.propose(T0 + 14) == []
    assert e.next_wakeup(T0 + 14) == T0 + 15
    (a,) = e.propose(T0 + 15)
    assert a.agent_id == "junior" and a.explanation["escalation"]["senior_required"] is False


def test_escalation_does_not_wait_for_seniors_nobody_can_provide() -> None:
    """No logged-in senior speaks the caller's language: the escalated call takes who there is."""
    e = engine(agent("es-junior", languages=["es"], skill_level=2), agent("en-senior", skill_level=5, csat=5))
    e.apply_call(call("angry", language="es", ivr_sentiment=-0.9))
    (a,) = e.propose(T0)
    assert a.agent_id == "es-junior" and a.explanation["escalation"]["senior_required"] is False


def test_free_agent_takes_the_best_call_for_it_not_just_the_oldest() -> None:
    """Agent-free event: the call with the best priority+match for this agent wins."""
    cfg = RoutingConfig(overflow=NO_HOLDS)
    e = engine(
        agent("tv-agent", status="on_call", products=["tv"], specializations=["technical"]), config=cfg
    )
    e.apply_call(call("old-mobile", at=T0, product="mobile"))
    e.apply_call(call("new-tv", at=T0 + 5, product="tv", issue_category="technical"))
    e.apply_agent(
        agent("tv-agent", products=["tv"], specializations=["technical"], idle_since=T0 + 10).model_copy(
            update={"version": 5}
        )
    )
    (a,) = e.propose(T0 + 10)
    assert (a.call_id, a.explanation["strategy"]) == ("new-tv", "best_call_for_agent")
    assert "call new-tv beat call old-mobile" in a.explanation["why"]
    assert [c["call_id"] for c in a.explanation["top_candidates"]] == ["new-tv", "old-mobile"]


def test_several_free_agents_and_calls_are_assigned_jointly_not_greedily() -> None:
    """Greedy would give the strong agent to the first call and strand the second; joint wins."""
    cfg = RoutingConfig(overflow=NO_HOLDS)
    e = engine(
        agent("both", products=["tv", "mobile"], skill_level=5, csat=5.0),
        agent("tv-only", products=["tv"], skill_level=1, csat=1.0),
        config=cfg,
    )
    e.apply_call(call("tv-vip", product="tv", tier="platinum"))
    e.apply_call(call("mobile", at=T0 + 1, product="mobile"))
    got = {a.call_id: a.agent_id for a in e.propose(T0 + 2)}
    assert got == {"tv-vip": "tv-only", "mobile": "both"}
    batch = e.propose(T0 + 2)[0].explanation["batch"]
    assert batch["joint_total_score"] > batch["greedy_total_score"] + 0.29


def test_overflow_drops_product_then_specialization() -> None:
    """0-10 s: product+specialization required; 10-20 s: specialization; then language only."""
    e = engine(
        agent("generic"),
        agent("spec-only", specializations=["billing"], status="on_call"),
        agent("full", products=["tv"], specializations=["billing"], status="on_call"),
        config=HOLDS_10_20,
    )
    e.apply_call(call("c1", product="tv", issue_category="billing"))
    assert e.propose(T0 + 5) == []
    assert e.explain_waiting("c1", T0 + 5)["requirements"]["product"] == "tv"
    assert e.next_wakeup(T0 + 5) == T0 + 10
    e.apply_agent(agent("spec-only", specializations=["billing"]).model_copy(update={"version": 2}))
    (a,) = e.propose(T0 + 11)
    assert a.agent_id == "spec-only" and a.explanation["requirements"]["product"] is None
    e2 = engine(
        agent("generic"),
        agent("full", products=["tv"], specializations=["billing"], status="on_call"),
        config=HOLDS_10_20,
    )
    e2.apply_call(call("c1", product="tv", issue_category="billing"))
    assert e2.propose(T0 + 15) == []
    (b,) = e2.propose(T0 + 20)
    assert b.agent_id == "generic"


def test_holds_only_wait_for_an_agent_who_is_due() -> None:
    """Default: hold for the product only if a product agent is free or ends wrap-up in time."""
    wrapping = agent("tv", products=["tv"]).model_copy(
        update={"status": AgentStatus.WRAP_UP, "wrap_until": T0 + 3}
    )
    e = engine(agent("generic"), wrapping)
    e.apply_call(call("c1", product="tv"))
    assert e.propose(T0 + 1) == []  # the tv agent is free at T0+3, inside the 5 s product hold
    assert e.explain_waiting("c1", T0 + 1)["requirements"]["product"] == "tv"
    (a,) = e.propose(T0 + 3)
    assert a.agent_id == "tv"
    late = agent("tv", products=["tv"]).model_copy(
        update={"status": AgentStatus.WRAP_UP, "wrap_until": T0 + 60}
    )
    e2 = engine(agent("generic"), late, agent("tv-on-call", products=["tv"], status="on_call"))
    e2.apply_call(call("c1", product="tv"))
    (b,) = e2.propose(T0 + 1)  # nobody with tv is due within the hold: no point waiting
    assert b.agent_id == "generic" and b.explanation["requirements"]["product"] is None


def test_requirements_nobody_logged_in_can_meet_are_skipped() -> None:
    """A product no logged-in agent handles does not make the caller wait."""
    e = engine(agent("generic"), agent("tv-offline", products=["tv"], status="offline"))
    e.apply_call(call("c1", product="tv"))
    (a,) = e.propose(T0 + 1)
    assert a.agent_id == "generic"


def test_timed_wrap_up_then_available() -> None:
    """An agent in wrap-up is not free until wrap_until; the dispatcher is told when."""
    wrapping = agent("w").model_copy(update={"status": AgentStatus.WRAP_UP, "wrap_until": T0 + 30})
    e = engine(wrapping)
    e.apply_call(call("c1"))
    assert e.propose(T0 + 29) == []
    assert e.next_wakeup(T0 + 29) == T0 + 30
    (a,) = e.propose(T0 + 30)
    assert a.agent_id == "w"


def test_callback_offer_keeps_the_callers_place() -> None:
    """After callback_after_s the call is due an offer; accepting keeps its wait and position."""
    e = engine(agent("busy", status="on_call"))
    e.apply_call(call("c1", at=T0))
    e.apply_call(call("c2", at=T0 + 1))
    assert e.due_callback_offers(T0 + 119) == []
    assert e.due_callback_offers(T0 + 120) == ["c1"]
    before = e.position("c1", T0 + 121)
    record = e.call("c1")
    e.apply_call(record.model_copy(update={"callback_offered": True, "callback": True, "version": 2}))
    assert e.position("c1", T0 + 121) == before == 1
    assert e.due_callback_offers(T0 + 121) == ["c2"]
    e.apply_agent(agent("busy", idle_since=T0 + 130).model_copy(update={"version": 3}))
    (a,) = e.propose(T0 + 130)
    assert a.call_id == "c1" and a.callback


def test_queue_snapshot_orders_by_current_priority() -> None:
    """GET /queue order: highest current priority first; positions count within a language."""
    e = engine(agent("busy", status="on_call"))
    e.apply_call(call("std", at=T0))
    e.apply_call(call("vip", at=T0 + 1, tier="platinum", clv=50_000))
    e.apply_call(call("es", at=T0 + 2, language="es"))
    snap = e.snapshot(T0 + 3)
    assert [c["call_id"] for c in snap][:2] == ["vip", "std"]
    assert {c["call_id"]: c["position"] for c in snap} == {"vip": 1, "std": 2, "es": 1}


def test_committed_assignments_leave_the_queue() -> None:
    """After a claim the agent is on the call and the call is no longer waiting."""
    e = engine(agent("a"))
    e.apply_call(call("c1"))
    (a,) = e.propose(T0)
    commit(e, a.call_id, a.agent_id, T0)
    assert len(e.queue) == 0 and e.agent("a").status is AgentStatus.ON_CALL
    assert e.propose(T0 + 1) == []


def test_service_level_window_counts_answers_within_threshold_and_abandons_as_misses() -> None:
    """Live service level: answered within 20 s over answered + abandoned, in a rolling window."""
    from routing.router import ServiceLevelWindow

    window = ServiceLevelWindow(threshold_s=20, window_s=100)
    assert window.stats(0)["service_level"] is None
    window.record(10, waited_s=5, answered=True)
    window.record(20, waited_s=25, answered=True)
    window.record(30, waited_s=8, answered=False)
    window.record(40, waited_s=19.9, answered=True)
    assert window.stats(40)["service_level"] == 0.5
    assert window.stats(121)["service_level_calls"] == 2  # the first two fell out of the window
    assert window.stats(121)["service_level"] == 0.5
