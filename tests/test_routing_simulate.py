"""The simulator: identical arrivals for every strategy, the stated model, the CLI and plot."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from routing.config import RoutingConfig
from routing.simulate import SimModel, make_agents, make_calls, outcome, simulate
from server.cli import app


def test_strategies_see_identical_arrivals_and_the_router_resolves_more() -> None:
    """Same calls offered to each strategy; the router's matching raises first-contact resolution."""
    results = {r.strategy: r for r in simulate(40, 330, 2, seed=7)}
    assert set(results) == {"router", "longest_idle", "round_robin"}
    assert len({r.offered for r in results.values()}) == 1
    router, idle = results["router"], results["longest_idle"]
    assert router.fcr > idle.fcr + 0.03
    assert router.aht_s < idle.aht_s
    for r in results.values():
        assert 0 <= r.service_level <= 1 and 0 <= r.abandonment < 0.5 and 0.3 < r.occupancy < 1.0
        assert r.p95_wait_s >= r.avg_wait_s * 0.5 and set(r.wait_by_tier) == {
            "standard",
            "silver",
            "gold",
            "platinum",
        }
    assert results["router"].escalated_to_senior > results["round_robin"].escalated_to_senior


def test_the_model_rewards_a_good_match() -> None:
    """Same caller, same draws: a trained specialist is faster and resolves more often than a novice."""
    config, model = RoutingConfig(), SimModel()
    rng = np.random.default_rng(0)
    agents = make_agents(60, model, config, rng)
    calls = make_calls(500, 1, agents, model, rng)
    call = next(c for c in calls if c.profile.ivr_sentiment >= -0.5 and c.profile.previous_agent_id is None)
    fit = next(
        a for a in agents
        if call.profile.product in a.profile.products and call.profile.issue_category in a.profile.specializations
        and a.profile.skill_level >= 4
    )  # fmt: skip
    novice = next(
        a for a in agents
        if call.profile.product not in a.profile.products and call.profile.issue_category not in a.profile.specializations
        and a.profile.skill_level <= 2
    )  # fmt: skip
    fast, _ = outcome(call, fit, model, config)
    slow, _ = outcome(call, novice, model, config)
    assert fast < slow * 0.75
    resolved = [outcome(c, fit, model, config)[1] for c in calls]
    unresolved = [outcome(c, novice, model, config)[1] for c in calls]
    assert sum(resolved) > sum(unresolved)


def test_cli_prints_the_table_and_writes_the_plot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """callassist routing simulate prints the comparison and writes a PNG."""
    png = tmp_path / "sim.png"
    result = CliRunner().invoke(
        app,
        ["routing", "simulate", "--agents", "20", "--calls-per-hour", "150", "--hours", "1", "--seed", "2",
         "--plot", str(png)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "| router |" in result.output
        and "| longest_idle |" in result.output
        and "| round_robin |" in result.output
    )
    assert "Wait by tier" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
