"""`callassist roi` and `callassist analytics ...` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from analytics.offline import connect

ROOT = Path(__file__).resolve().parent.parent
CALLASSIST = Path(sys.executable).parent / "callassist"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CALLASSIST), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_roi_prints_figures_computed_from_the_options() -> None:
    """`callassist roi --seats 100 --json` computes from its inputs; a bad input exits 2 naming it."""
    result = run("roi", "--seats", "100", "--aht-after-min", "7", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["calls_per_year"] == 1_250_000
    assert out["savings"]["handle_time"] == round(1_250_000 * (8 - 7) / 60 * 35, 2)
    table = run("roi")
    assert "ROI 1,857%" in table.stdout and "payback 0.61 months" in table.stdout
    bad = run("roi", "--retention-rate", "3")
    assert bad.returncode == 2 and "retention_rate" in bad.stderr


def test_generate_import_run_and_roi_from_store(tmp_path: Path) -> None:
    """A generated history lands in the store; import-customers rejects a bad file whole;
    `analytics run` ingests and reports; `roi --from-store` measures its inputs."""
    store = tmp_path / "calls.db"
    gen = run(
        "analytics", "generate", "--days", "8", "--calls-per-day", "60", "--seed", "3", "--store", str(store),
        "--customers-csv", str(tmp_path / "customers.csv"),
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    conn = connect(store)
    stored = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    profiles = conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0]
    conn.close()
    assert 400 < stored < 600 and profiles > 100
    assert (tmp_path / "customers.csv").read_text().startswith("customer_id,name,tier,clv,renewal_date")
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,clv\nz1,5\nz2,-3\n")
    rejected = run("analytics", "import-customers", str(bad), "--store", str(store))
    assert rejected.returncode == 2 and "line': 3" in rejected.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"customer_id": "z1", "clv": 5}]))
    assert run("analytics", "import-customers", str(good), "--store", str(store)).returncode == 0
    report = run("analytics", "run", "--store", str(store), "--json")
    assert report.returncode == 0, report.stderr
    out = json.loads(report.stdout)
    assert out["ingested"] == stored and out["kpis"]["calls"] > 0 and out["clusters"]["top"]
    assert out["churn"]["customers_scored"] > 0 and "repeat_callers" in out["repeats"]
    roi = json.loads(run("roi", "--from-store", str(store), "--json").stdout)
    assert roi["measured_inputs"]["seats"] == roi["inputs"]["seats"] > 0
