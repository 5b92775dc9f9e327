"""Analytics in a real server: ingestion from the store, a replayed two-week history with an
injected outage (emerging-issue alert on the supervisor socket), the HTTP answers, retention
cases routed through routing, customer profiles, the ROI endpoint and the KPI page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from analytics import customers
from analytics.config import AnalyticsConfig, AnalyticsSettings
from analytics.offline import connect, write_records
from analytics.synthetic import Outage, SyntheticHistory, generate
from tests.helpers import MS, Listener, RunningServer, start_server

DAY_S = 86_400.0
OUTAGE = Outage(day=10, hour=9, hours=9, share=0.25)
REPLAY_STEP_S = 3 * 3600  # an analysis run every 3 hours of replayed time


def make_server(
    store: Path,
    embedder: Any,
    demo_config: Any,
    config: AnalyticsConfig | None = None,
    name: str = "analytics",
) -> RunningServer:
    from analytics.extension import AnalyticsExtension
    from routing.extension import RoutingExtension
    from server.app import create_app
    from server.settings import Settings

    settings = Settings(store_path=store, process_name=name)
    analytics = AnalyticsExtension(
        config=config or AnalyticsConfig(),
        settings=AnalyticsSettings(interval_s=0, sync_interval_s=0.2, sync_batch=2000),
    )
    app = create_app(
        settings, embedder=embedder, config=demo_config, extensions=[RoutingExtension(), analytics]
    )
    return start_server(app, ready_timeout=600)


@dataclass
class Replay:
    server: RunningServer
    history: SyntheticHistory
    alerts: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    outage_start: float
    written: int


@pytest.fixture(scope="module")
async def replay(
    embedder: Any, demo_config: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Replay]:
    """Two weeks of calls written to the store hour by hour, analysed every 3 hours, with an
    outage injected on day 10 at 09:00; every supervisor event is recorded."""
    store = tmp_path_factory.mktemp("replay") / "calls.db"
    # A fixed Monday in UTC, so the replay is the same on any day and in any time zone.
    start = datetime(2025, 3, 3, tzinfo=UTC).timestamp()
    history = generate(days=14, calls_per_day=250, seed=5, start=start, outages=[OUTAGE])
    config = AnalyticsConfig.model_validate(
        {
            "clustering": {"fit_sample": 2000, "refit_hours": 24},
            "retention": {"enabled": False},
            "timezone": "UTC",
        }
    )
    server = make_server(store, embedder, demo_config, config, "replay")
    writer = connect(store)
    customers.upsert(writer, history.profiles())
    runs = []
    try:
        async with (
            Listener(f"{server.ws}/v1/supervisor") as board,
            httpx.AsyncClient(base_url=server.http, timeout=120) as client,
        ):
            written = 0
            t = history.start + 3 * DAY_S
            while t <= history.start + 14 * DAY_S:
                upto = int((history.ended_at < t).sum())
                write_records(writer, history.records(range(written, upto)))
                written = upto
                r = await client.post("/v1/analytics/run", json={"now": t})
                assert r.status_code == 200, r.text
                runs.append(r.json())
                t += REPLAY_STEP_S
            await asyncio.sleep(200 * MS)
            alerts = board.of_type("alert", kind="emerging_issue")
        outage_start = history.start + OUTAGE.day * DAY_S + OUTAGE.hour * 3600
        yield Replay(server, history, alerts, runs, outage_start, written)
    finally:
        writer.close()
        server.stop()


async def test_outage_raises_an_emerging_issue_alert_within_24_hours(replay: Replay) -> None:
    """The injected outage reaches the supervisor as an emerging-issue alert the same day; no
    alert before it, and one event is one alert."""
    assert replay.alerts, "no emerging-issue alert reached the supervisor"
    first = replay.alerts[0]
    assert replay.outage_start < first["detected_at"] <= replay.outage_start + DAY_S
    assert all(a["detected_at"] > replay.outage_start for a in replay.alerts)
    outage_words = ("outage", "down", "back up", "back on", "everything's off", "identified")
    text = " ".join([first.get("article") or "", *first.get("samples", [])]).lower()
    assert any(w in text for w in outage_words), first
    assert first["share"] > first["baseline_share"] * 2 and first["call_id"] is None
    articles = [a["article"] for a in replay.alerts]
    assert len(articles) == len(set(articles))  # the cluster and article lenses don't double-alert


async def test_alerts_are_persisted_and_not_raised_again(replay: Replay) -> None:
    """GET /v1/analytics/alerts lists what was raised; rerunning at the same time raises nothing."""
    async with httpx.AsyncClient(base_url=replay.server.http, timeout=60) as client:
        stored = (await client.get("/v1/analytics/alerts")).json()["alerts"]
        assert {a["alert_id"] for a in stored} == {a["alert_id"] for a in replay.alerts}
        again = await client.post("/v1/analytics/run", json={"now": replay.alerts[0]["detected_at"] + 3600})
        assert again.json()["alerts_raised"] == 0


async def test_ingestion_and_analysis_answers(replay: Replay) -> None:
    """Every stored call is ingested once; KPIs, clusters, repeats and churn answer with numbers."""
    async with httpx.AsyncClient(base_url=replay.server.http, timeout=60) as client:
        status = (await client.get("/v1/analytics/status")).json()
        assert status["counters"]["ingested"] == replay.written > 0.99 * len(replay.history)
        assert status["counters"]["bad_records"] == 0
        k = (await client.get("/v1/analytics/kpis", params={"period_days": 7})).json()
        assert k["calls"] > 1000 and 200 < k["aht_s"] < 900
        assert 0.5 < k["fcr"] < 1 and 0 < k["repeat_rate"] < 0.5 and 0 < k["service_level"] < 1
        assert len(k["daily"]) == 7 and k["top_clusters"] and k["alerts"]
        clusters = (await client.get("/v1/analytics/clusters", params={"limit": 5})).json()
        top = clusters["top"][0]
        assert {"label", "top_terms", "samples", "size", "share", "aht_s", "avg_sentiment"} <= set(top)
        assert clusters["method"] == "embedding"
        rep = (await client.get("/v1/analytics/repeats", params={"limit": 5})).json()
        assert rep["groups"] > 0 and rep["seed_category_groups"] >= rep["groups"]
        group = rep["repeat_callers"][0]
        assert group["calls"] >= 2 and group["agents"] and group["call_ids"][0].startswith("syn5-")
        clvs = [g["clv"] for g in rep["repeat_callers"]]
        assert clvs == sorted(clvs, reverse=True)
        churn = (await client.get("/v1/analytics/churn", params={"limit": 3, "min_score": 0.4})).json()
        assert churn["customers"] and all(len(c["factors"]) == 5 for c in churn["customers"])
        one = churn["customers"][0]["customer_id"]
        assert (await client.get(f"/v1/analytics/churn/{one}")).json()["customer_id"] == one
        assert (await client.get("/v1/analytics/churn/nobody")).status_code == 404
        bad = await client.get("/v1/analytics/repeats", params={"threshold": "1"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "threshold"
        metrics = (await client.get("/metrics")).text
        assert 'callassist_analytics_events_total{event="runs"}' in metrics


def test_kpi_page_draws_without_errors(replay: Replay) -> None:
    """The dashboard loads with figures in its tiles and charts drawn, no console errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "console",
            lambda m: errors.append(m.text) if m.type == "error" and "favicon" not in m.text else None,
        )
        page.goto(f"{replay.server.http}/kpis")
        page.wait_for_function("() => document.querySelectorAll('#tiles .tile').length >= 8", timeout=30_000)
        page.wait_for_function(
            "() => document.querySelectorAll('#churn tbody tr').length > 0", timeout=30_000
        )
        tiles = page.inner_text("#tiles")
        drawn = page.evaluate(
            "() => { const c = document.getElementById('c-volume'); const d = c.getContext('2d')"
            ".getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"
        )
        browser.close()
    assert "First-contact resolution" in tiles and "%" in tiles
    assert drawn > 1000
    assert [e for e in errors if "404" not in e] == []


# --------------------------------------------------------------------------------- retention


def risky_record(call_id: str, customer: str, ago_days: float, clv: float) -> dict[str, Any]:
    ended = time.time() - ago_days * DAY_S
    return {
        "call_id": call_id,
        "agent_id": "gen-1",
        "customer": {"id": customer, "clv": clv},
        "started_at": ended - 400,
        "ended_at": ended,
        "duration": 400.0,
        "primary_intent": "technical_support",
        "final_sentiment": -0.7,
        "sentiment_series": [{"timestamp": 5.0, "compound": -0.7}],
        "utterances": [
            {"speaker": "agent", "text": "Northwind Connect, how can I help?"},
            {
                "speaker": "customer",
                "text": "my broadband keeps dropping every evening and I'm going to cancel if it isn't fixed",
                "intent": "technical_support",
            },
        ],
        "assists": [
            {"knowledge_articles": [{"id": "broadband-wifi-slow", "title": "Slow or dropping Wi-Fi"}]}
        ],
    }


@pytest.fixture
def retention_store(tmp_path: Path) -> Iterator[Path]:
    store = tmp_path / "calls.db"
    conn = connect(store)
    records = [
        risky_record(f"r-{c}-{i}", c, ago, clv)
        for c, clv in (("vip", 8000.0), ("small", 300.0))
        for i, ago in enumerate((9, 6, 3, 1))
    ]
    write_records(conn, records)
    conn.close()
    yield store


async def wait_for_case(
    client: httpx.AsyncClient, status: str, timeout: float = 10_000 * MS
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        cases = (await client.get("/v1/analytics/retention/cases")).json()["cases"]
        if cases and cases[0]["status"] == status:
            return cases[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"case never became {status}: {cases}")
        await asyncio.sleep(50 * MS)


async def test_retention_case_goes_to_a_retention_agent_once(
    retention_store: Path, embedder: Any, demo_config: Any
) -> None:
    """A customer crossing 0.7 with CLV above the floor gets one case; it waits while no retention
    agent is free (a free generalist does not get it), then routing gives it to the specialist as
    a callback; later runs and a restart open no second case within the cooling-off period."""
    config = AnalyticsConfig.model_validate({"retention": {"clv_floor": 1000, "dispatch_interval_s": 0.1}})
    server = make_server(retention_store, embedder, demo_config, config, "retention-1")
    try:
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as client:
            await client.put(
                "/v1/customers/vip",
                json={
                    "clv": 8000,
                    "phone": "+44 7700 900123",
                    "product": "broadband",
                    "renewal_date": str(date.today() + timedelta(days=12)),
                },
            )
            await client.put(
                "/v1/routing/agents/gen-1",
                json={"languages": ["en"], "products": ["broadband"], "status": "available"},
            )
            await client.put(
                "/v1/routing/agents/ret-1",
                json={
                    "languages": ["en"],
                    "products": ["broadband"],
                    "specializations": ["retention"],
                    "status": "offline",
                },
            )
            async with Listener(f"{server.ws}/v1/supervisor") as board:
                run = (await client.post("/v1/analytics/run", json={})).json()
                assert run["cases_opened"] == 1
                case = await wait_for_case(client, "waiting")
                assert case["customer_id"] == "vip" and case["score"] >= 0.7
                assert {f["factor"] for f in case["factors"]["factors"] if f["strength"] > 0} >= {
                    "cancellation_intent",
                    "unresolved_repeats",
                }
                await asyncio.sleep(300 * MS)
                assert (await wait_for_case(client, "waiting"))["agent_id"] is None
                await client.put("/v1/routing/agents/ret-1", json={"status": "available"})
                routed = await wait_for_case(client, "routed")
                assert routed["agent_id"] == "ret-1"
                await board.wait_for(lambda events: any(e["type"] == "retention.case" for e in events))
            call = (await client.get(f"/v1/routing/calls/{routed['case_id']}")).json()
            assert call["agent_id"] == "ret-1" and call["callback"] is True
            assert (await client.post("/v1/analytics/run", json={})).json()["cases_opened"] == 0
    finally:
        server.stop()
    again = make_server(retention_store, embedder, demo_config, config, "retention-2")
    try:
        async with httpx.AsyncClient(base_url=again.http, timeout=60) as client:
            assert (await client.post("/v1/analytics/run", json={})).json()["cases_opened"] == 0
            assert len((await client.get("/v1/analytics/retention/cases")).json()["cases"]) == 1
    finally:
        again.stop()


# --------------------------------------------------------------------------- customers and ROI


async def test_customer_profiles_api(replay: Replay) -> None:
    """PUT/GET profiles, 422 naming the field, CSV import all-or-nothing with the bad line."""
    async with httpx.AsyncClient(base_url=replay.server.http, timeout=30) as client:
        r = await client.put(
            "/v1/customers/acme-1", json={"clv": 1234.5, "tier": "Gold", "renewal_date": "2030-01-31"}
        )
        assert r.status_code == 200 and r.json() == {
            "customer_id": "acme-1",
            "clv": 1234.5,
            "tier": "gold",
            "renewal_date": "2030-01-31",
        }
        r = await client.put("/v1/customers/acme-1", json={"phone": "+1 555 0100"})
        assert r.json()["clv"] == 1234.5 and r.json()["phone"] == "+1 555 0100"
        bad = await client.put("/v1/customers/acme-1", json={"clv": -1})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "clv"
        assert (await client.get("/v1/customers/nobody")).status_code == 404
        csv_bad = "customer_id,clv\nx1,10\nx2,ten\n"
        r = await client.post("/v1/customers/import?format=csv", content=csv_bad)
        assert r.status_code == 422 and r.json()["error"]["rows"][0]["line"] == 3
        assert (await client.get("/v1/customers/x1")).status_code == 404  # nothing was imported
        r = await client.post(
            "/v1/customers/import", json=[{"customer_id": "x1", "clv": 10}, {"id": "x2", "clv": 20}]
        )
        assert r.json()["imported"] == 2
        known = replay.history.customer_id(int(replay.history.customer[-1]))
        assert "churn" in (await client.get(f"/v1/customers/{known}")).json()


async def test_roi_endpoint(replay: Replay) -> None:
    """GET/POST /v1/analytics/roi compute from the inputs; bad inputs name the field; from_store
    measures seats, volume, AHT and at-risk customers."""
    async with httpx.AsyncClient(base_url=replay.server.http, timeout=30) as client:
        r = (await client.get("/v1/analytics/roi", params={"seats": 100})).json()
        assert r["calls_per_year"] == 1_250_000 and r["savings"]["handle_time"] == 1_093_750
        assert r["seed"]["printed"]["roi_percent"] == 1180
        posted = (await client.post("/v1/analytics/roi", json={"seats": 100, "training_cost": 0})).json()
        assert posted["first_year_cost"] == 650_000
        for params, field in (
            ({"retention_rate": 2}, "retention_rate"),
            ({"seatz": 3}, "seatz"),
            ({"seats": "many"}, "seats"),
        ):
            bad = await client.get("/v1/analytics/roi", params=params)
            assert bad.status_code == 422 and bad.json()["error"]["field"] == field
        measured = (await client.get("/v1/analytics/roi", params={"from_store": "true"})).json()
        assert measured["measured_inputs"]["seats"] == replay.history.meta["agents"]
        assert measured["inputs"]["aht_after_min"] == measured["measured_inputs"]["aht_after_min"]
