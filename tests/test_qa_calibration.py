"""Calibration against human reviewers: known statistics, the CSV contract, offsets applied."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa.calibration import (
    CalibrationError,
    calibrate,
    calibrate_scores,
    icc,
    kappa,
    read_human_scores,
)
from qa.rubric import Rubric
from qa.scorecard import Scorecard
from tests.helpers import MS, RunningServer
from tests.qa_calls import EXEMPLARY, EXEMPLARY_CUSTOMER, NO_GREETING_NO_CLOSING
from tests.test_qa_server import scorecard, stream_call

RUBRIC = Rubric.load()

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def test_icc_reproduces_shrout_fleiss() -> None:
    """The six ICC forms reproduce the published values 0.17/0.29/0.71/0.44/0.62/0.91."""
    values = icc(SHROUT_FLEISS)
    expected = {"ICC1": 0.166, "ICC2": 0.290, "ICC3": 0.715, "ICC1k": 0.443, "ICC2k": 0.620, "ICC3k": 0.909}
    assert values == pytest.approx(expected, abs=6e-4)


def test_kappa_unweighted_linear_quadratic() -> None:
    """Two reviewers banding 8 calls (below/meets/exceeds): kappa 0.4286, linear 0.4667, quadratic 0.5.
    Hand-computed: po = 5/8, pe = 11/32, kappa = (20/32 - 11/32) / (21/32) = 3/7."""
    reviewer_a = [0, 0, 0, 1, 1, 2, 2, 2]
    reviewer_b = [0, 1, 2, 0, 1, 2, 2, 2]
    result = kappa(reviewer_a, reviewer_b, labels=[0, 1, 2])
    assert result["unweighted"] == pytest.approx(3 / 7, abs=1e-4)
    assert result["linear"] == pytest.approx(7 / 15, abs=1e-4)
    assert result["quadratic"] == pytest.approx(0.5, abs=1e-4)
    assert result["agreement"] == 0.625 and result["n"] == 8


def test_kappa_is_undefined_for_a_single_label() -> None:
    """All raters say 'pass' for every call: agreement 1, kappa undefined (None), never a crash."""
    result = kappa([1, 1, 1], [1, 1, 1])
    assert result["agreement"] == 1.0 and result["unweighted"] is None


def test_calibrate_scores_matches_the_seed_output() -> None:
    """Offset = mean(human - AI), std of the deltas, sample size and Pearson r."""
    result = calibrate_scores([70, 80, 90, 60], [75, 84, 96, 63])
    assert result["offset"] == 4.5 and result["sample_size"] == 4
    assert result["std"] == pytest.approx(1.29, abs=0.01)
    assert result["pearson"] == pytest.approx(0.9985, abs=1e-4)  # numpy.corrcoef agrees
    assert calibrate_scores([], [])["sample_size"] == 0


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("call_id,overall_score\nc1,80\n", "missing ['agent_id']"),
        ("call_id,agent_id,overall_score\nc1,a1,eighty\n", "overall_score must be a number"),
        ("call_id,agent_id,overall_score\nc1,a1,120\n", "between 0 and 100"),
        ("call_id,agent_id,overall_score\nc1,a1,80\nc1,a1,70\n", "appears twice"),
        ("call_id,agent_id,overall_score,empathyy\nc1,a1,80,70\n", "unknown columns ['empathyy']"),
        ("call_id,agent_id,overall_score,anything_else\nc1,a1,80,maybe\n", "pass/fail"),
        ("call_id,agent_id,overall_score\n", "no rows"),
    ],
)
def test_human_csv_errors_name_the_problem(csv: str, message: str) -> None:
    """Bad reviewer CSVs are rejected with the line and the column at fault."""
    with pytest.raises(CalibrationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_human_scores(csv, RUBRIC)


def _card(call_id: str, agent: str, raw: float, empathy: float, passed: bool) -> Scorecard:
    from qa.scorecard import CriterionResult

    return Scorecard(
        call_id=call_id,
        agent_id=agent,
        overall_score=raw,
        raw_overall_score=raw,
        category_scores={"empathy": empathy},
        criteria=[
            CriterionResult(
                id="anything_else", category="closing", description="", score=float(passed), passed=passed
            )
        ],
    )


def test_calibration_report_offsets_per_agent_and_global() -> None:
    """Agents with enough calibrated calls get their own offset; the rest get the global one.
    Category and criterion agreement are reported alongside."""
    csv = "call_id,agent_id,overall_score,empathy,anything_else\n" + "\n".join(
        f"c{i},{'a1' if i < 4 else 'a2'},{70 + i * 3 + (5 if i < 4 else -2)},{60 + i * 4},{'pass' if i % 2 else 'fail'}"
        for i in range(6)
    )
    rows = read_human_scores(csv, RUBRIC)
    cards = {
        f"c{i}": _card(f"c{i}", "a1" if i < 4 else "a2", 70 + i * 3, 58 + i * 4, bool(i % 2))
        for i in range(6)
    }
    report = calibrate(rows, cards, RUBRIC, min_agent_samples=3)
    assert report["sample_size"] == 6 and report["unmatched_calls"] == []
    assert report["agents"]["a1"]["offset"] == 5.0 and report["agents"]["a1"]["applied_offset"] == 5.0
    assert report["agents"]["a2"]["sample_size"] == 2
    assert report["agents"]["a2"]["applied_offset"] == report["overall"]["offset"]
    assert set(report["offsets"]) == {"*", "a1"}
    assert report["categories"]["empathy"]["offset"] == 2.0
    assert report["criteria"]["anything_else"]["unweighted"] == 1.0
    assert set(report["overall"]["icc"]) == {"ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"}


async def test_calibration_api_applies_offsets_to_later_scores(server_factory) -> None:  # type: ignore[no-untyped-def]
    """POST /v1/qa/calibration with reviewer scores stores per-agent offsets; calls scored
    afterwards carry the offset (clamped to 0-100); bad CSVs get a 422 naming the column."""
    server: RunningServer = server_factory(analysis_timeout_ms=60_000)
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as client:
        for i in range(3):
            await stream_call(
                server,
                f"cal-{i}",
                "agent-cal",
                EXEMPLARY if i != 1 else NO_GREETING_NO_CLOSING,
                customer=EXEMPLARY_CUSTOMER,
            )
        cards = [await scorecard(client, f"cal-{i}") for i in range(3)]
        # The reviewers are consistently 6 points stricter than the scorer.
        csv = "call_id,agent_id,overall_score\n" + "\n".join(
            f"cal-{i},agent-cal,{card['raw_overall_score'] - 6:.1f}" for i, card in enumerate(cards)
        )
        bad = await client.post(
            "/v1/qa/calibration",
            content="call_id,agent,overall_score\nx,y,1\n",
            headers={"content-type": "text/csv"},
        )
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "agent_id"
        unknown = await client.post(
            "/v1/qa/calibration", json={"csv": "call_id,agent_id,overall_score\nnope,a,50\n"}
        )
        assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "no_matching_calls"

        report = (
            await client.post("/v1/qa/calibration", content=csv, headers={"content-type": "text/csv"})
        ).json()
        assert report["sample_size"] == 3 and report["applied"] is True
        assert report["agents"]["agent-cal"]["offset"] == pytest.approx(-6.0, abs=0.05)
        assert report["agents"]["agent-cal"]["std"] == pytest.approx(0.0, abs=0.05)
        assert report["overall"]["pearson"] == pytest.approx(1.0, abs=1e-3)
        offsets = (await client.get("/v1/qa/calibration")).json()["offsets"]
        assert offsets["agent-cal"]["offset"] == pytest.approx(-6.0, abs=0.05)

        await stream_call(server, "cal-after", "agent-cal", EXEMPLARY, customer=EXEMPLARY_CUSTOMER)
        after = await scorecard(client, "cal-after")
        assert after["calibration_offset"] == pytest.approx(-6.0, abs=0.05)
        assert after["overall_score"] == pytest.approx(after["raw_overall_score"] - 6.0, abs=0.11)
        stored_before = (await client.get("/v1/qa/scorecards/cal-0")).json()
        assert stored_before["calibration_offset"] == 0.0  # past scorecards are not rewritten


async def test_calibrate_cli_scores_unscored_calls(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`callassist qa calibrate --human scores.csv` reads the server's store, scores reviewed calls
    that have no scorecard yet, and prints the report as JSON."""
    store = tmp_path / "cli.db"
    server = server_factory(store_path=store)
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as client:
        await stream_call(server, "cli-0", "agent-cli", EXEMPLARY, customer=EXEMPLARY_CUSTOMER)
        await stream_call(server, "cli-1", "agent-cli", NO_GREETING_NO_CLOSING)
        await scorecard(client, "cli-0")
        await scorecard(client, "cli-1")
    server.stop()
    # Forget one scorecard, as if the worker had not reached it yet.
    import sqlite3

    with sqlite3.connect(store) as conn:
        conn.execute("DELETE FROM qa_scorecards WHERE call_id = 'cli-1'")
    human = tmp_path / "scores.csv"
    human.write_text(
        "call_id,agent_id,overall_score,greeting\ncli-0,agent-cli,90,100\ncli-1,agent-cli,50,10\nghost,agent-cli,70,\n"
    )

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server.cli", "qa", "calibrate", "--human", str(human), "--store", str(store)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    result = await asyncio.to_thread(run)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["sample_size"] == 2 and report["unmatched_calls"] == ["ghost"]
    assert report["scored_now"] == ["cli-1"]
    assert report["categories"]["greeting"]["sample_size"] == 2
    assert report["offsets"]["*"]["sample_size"] == 2
    await asyncio.sleep(10 * MS)
