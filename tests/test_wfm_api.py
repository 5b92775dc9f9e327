"""WFM REST endpoints through the real server (uvicorn, SQLite call store)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from server.store import CALLS_SCHEMA


def seed_call_store(path: Path) -> int:
    """Three weeks of weekday calls 09:00-11:00 UTC: more on Mondays, a mid-morning peak."""
    conn = sqlite3.connect(path)
    conn.executescript(CALLS_SCHEMA)
    count = 0
    day = date(2024, 1, 1)
    while day < date(2024, 1, 22):
        if day.weekday() < 5:
            for slot in range(4):
                calls = (12 if day.weekday() == 0 else 8) + 4 * (slot in (1, 2))
                for i in range(calls):
                    start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(
                        minutes=30 * slot, seconds=i * (1800 // calls)
                    )
                    record = {"call_id": f"c{count}", "agent_id": "a1"}
                    conn.execute(
                        "INSERT INTO calls (call_id, agent_id, started_at, ended_at, duration, record, stored_at)"
                        " VALUES (?,?,?,?,?,?,?)",
                        (
                            f"c{count}",
                            "a1",
                            start.timestamp(),
                            start.timestamp() + 240,
                            240.0,
                            json.dumps(record),
                            0,
                        ),
                    )
                    count += 1
        day += timedelta(days=1)
    conn.commit()
    conn.close()
    return count


async def test_wfm_rest_endpoints(server_factory: Any, tmp_path: Path) -> None:
    """POST /v1/wfm/staffing reproduces the published example (with a schedule) and rejects bad
    input with 422 naming the field; GET /v1/wfm/forecast forecasts from the calls table."""
    store = tmp_path / "wfm.db"
    stored = seed_call_store(store)
    server = server_factory(store_path=store)
    example = {
        "intervals": [
            {"interval_start": "2024-01-22T09:00", "calls": 100, "aht_seconds": 180},
            {"interval_start": "2024-01-22T09:30", "calls": 0, "aht_seconds": 180},
        ],
        "target": {"service_level": 0.8, "answer_seconds": 20, "max_occupancy": 0.85},
        "shrinkage": 0.3,
    }
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as client:
        staffing = await client.post("/v1/wfm/staffing", json=example)
        with_schedule = await client.post(
            "/v1/wfm/staffing",
            json={
                **example,
                "intervals": [
                    {
                        "interval_start": f"2024-01-22T{9 + i // 2:02d}:{30 * (i % 2):02d}",
                        "calls": 60,
                        "aht_seconds": 180,
                    }
                    for i in range(8)
                ],
                "schedule": {"shift_types": [{"name": "4h", "hours": 4}], "start_step_minutes": 60},
            },
        )
        bad_level = await client.post("/v1/wfm/staffing", json={**example, "target": {"service_level": 1.2}})
        negative = await client.post(
            "/v1/wfm/staffing",
            json={"intervals": [{"interval_start": "2024-01-22T09:00", "calls": -5, "aht_seconds": 180}]},
        )
        zero_aht = await client.post(
            "/v1/wfm/staffing",
            json={"intervals": [{"interval_start": "2024-01-22T09:00", "calls": 5, "aht_seconds": 0}]},
        )
        gap = await client.post(
            "/v1/wfm/staffing",
            json={
                "aht_seconds": 180,
                "intervals": [
                    {"interval_start": "2024-01-22T09:00", "calls": 5},
                    {"interval_start": "2024-01-22T09:30", "calls": 5},
                    {"interval_start": "2024-01-22T10:30", "calls": 5},
                ],
            },
        )
        not_json = await client.post("/v1/wfm/staffing", content=b"{nope")
        forecast = await client.get("/v1/wfm/forecast", params={"date": "2024-01-22", "tz": "UTC"})
        forecast_csv = await client.get(
            "/v1/wfm/forecast", params={"date": "2024-01-22", "tz": "UTC", "format": "csv"}
        )
        no_date = await client.get("/v1/wfm/forecast")
        bad_zone = await client.get("/v1/wfm/forecast", params={"date": "2024-01-22", "tz": "Mars/Base"})

    assert staffing.status_code == 200, staffing.text
    body = staffing.json()
    first, quiet = body["intervals"]
    assert (first["agents"], first["scheduled"]) == (14, 20)
    assert round(first["service_level"], 4) == 0.8884 and round(first["prob_wait"], 4) == 0.1741
    assert round(first["asa_seconds"], 2) == 7.84 and round(first["occupancy"], 3) == 0.714
    assert (quiet["agents"], quiet["scheduled"]) == (0, 0)
    assert body["model"] == "erlang_c" and body["totals"]["peak_scheduled"] == 20

    assert with_schedule.status_code == 200, with_schedule.text
    plan = with_schedule.json()
    schedule = plan["schedule"]
    assert schedule["feasible"] and schedule["unmet_intervals"] == []
    assert all(row["staffed"] >= row["required"] for row in schedule["coverage"])
    assert schedule["paid_hours"] == 4 * sum(s["count"] for s in schedule["shifts"])

    for response, field in (
        (bad_level, "service_level"),
        (negative, "intervals[0].calls"),
        (zero_aht, "intervals[0].aht_seconds"),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
    assert gap.status_code == 422 and gap.json()["error"]["code"] == "missing_intervals"
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"

    assert forecast.status_code == 200, forecast.text
    result = forecast.json()
    assert result["history_calls"] == stored
    rows = result["intervals"]
    assert [r["interval_start"] for r in rows] == [
        f"2024-01-22T{t}" for t in ("09:00", "09:30", "10:00", "10:30")
    ]
    volumes = [r["predicted_volume"] for r in rows]
    assert volumes[1] > volumes[0] and all(8 <= v <= 20 for v in volumes)
    assert all(r["required_agents"] >= 1 and r["scheduled_agents"] >= r["required_agents"] for r in rows)
    assert all(r["predicted_aht"] == 240 for r in rows)
    assert forecast_csv.status_code == 200 and forecast_csv.text.startswith("interval_start,predicted_volume")
    assert no_date.status_code == 422 and no_date.json()["error"]["field"] == "date"
    assert bad_zone.status_code == 422 and bad_zone.json()["error"]["field"] == "tz"
