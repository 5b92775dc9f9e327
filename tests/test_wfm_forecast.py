"""Interval history, the seed-parity forecaster and the rolling-origin backtest."""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest

from wfm.backtest import format_table, rolling_origin
from wfm.errors import WfmInputError
from wfm.forecast import AhtProfile, Campaign, Forecaster, Outage, ShrinkagePolicy
from wfm.history import build_history, history_from_calls, read_history_csv
from wfm.methods import CalendarRegression, OpenCalendar, SeasonalNaive, SeedWeighted, available_methods

MONDAY = date(2024, 1, 1)


def weekday_history(
    weeks: int, *, seed: int = 1, slots: int = 6, noise: bool = True
) -> list[tuple[datetime, float, None]]:
    """Weekdays 09:00-12:00 at 30 min: weekday x intraday shape, Poisson noise, month-start peaks."""
    rng = np.random.default_rng(seed)
    shape = np.array([0.6, 1.0, 1.3, 1.2, 1.0, 0.9])[:slots]
    weekday = [1.3, 1.0, 0.9, 0.9, 1.05]
    rows = []
    day = MONDAY
    while day < MONDAY + timedelta(weeks=weeks):
        if day.weekday() < 5:
            boost = 1.4 if day.day <= 2 else 1.0
            for i in range(slots):
                mean = 200 * weekday[day.weekday()] * shape[i] * boost
                rows.append(
                    (
                        datetime.combine(day, time(9 + i // 2, 30 * (i % 2))),
                        float(rng.poisson(mean) if noise else mean),
                        None,
                    )
                )
        day += timedelta(days=1)
    return rows


def test_csv_aggregates_five_minute_rows(tmp_path: Path) -> None:
    """5-minute rows sum into 30-minute planning intervals; AHT is call-weighted."""
    lines = ["timestamp,calls,aht"]
    for i in range(12):
        lines.append(f"2024-01-01T09:{i * 5:02d},{i},{100 + 10 * (i % 2)}")
    path = tmp_path / "h.csv"
    path.write_text("\n".join(lines))
    history = read_history_csv(path, 30)
    assert history.slots == (time(9, 0), time(9, 30))
    assert history.calls.tolist() == [[15.0, 51.0]]
    assert history.aht[0, 0] == pytest.approx(
        (0 * 100 + 1 * 110 + 2 * 100 + 3 * 110 + 4 * 100 + 5 * 110) / 15
    )


def test_csv_with_date_and_start_time_columns(tmp_path: Path) -> None:
    """The fpp2 layout (date, start_time, calls) reads like timestamp,calls."""
    path = tmp_path / "h.csv"
    path.write_text(
        "date,weekday,interval,start_time,calls\n2003-03-03,Mon,1,07:00,11\n2003-03-03,Mon,2,07:05,13\n"
    )
    history = read_history_csv(path, 30)
    assert history.days == (date(2003, 3, 3),) and history.calls.tolist() == [[24.0]]


@pytest.mark.parametrize(
    ("body", "match", "code"),
    [
        ("timestamp,calls\n2024-01-01T09:00,-3\n", "negative", "invalid_input"),
        ("timestamp,calls,aht\n2024-01-01T09:00,5,0\n", "AHT 0", "invalid_input"),
        ("timestamp,calls\n2024-01-01T09:00,5\n2024-01-01T09:00,6\n", "duplicate", "invalid_input"),
        ("timestamp,calls\n2024-01-01T09:00,5\nnot-a-time,6\n", "timestamp", "invalid_input"),
        ("when,calls\n2024-01-01T09:00,5\n", "needs columns", "invalid_input"),
        (
            "timestamp,calls\n2024-01-01T09:00,5\n2024-01-01T09:30,5\n2024-01-01T10:00,5\n"
            "2024-01-02T09:00,5\n2024-01-02T10:00,5\n",
            "missing interval",
            "missing_intervals",
        ),
    ],
)
def test_bad_history_is_a_clear_error(tmp_path: Path, body: str, match: str, code: str) -> None:
    """Negative volumes, AHT 0, duplicates, bad timestamps, wrong columns and gaps are named."""
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(WfmInputError, match=match) as info:
        read_history_csv(path, 30)
    assert info.value.code == code


def test_fill_missing_treats_gaps_as_zero(tmp_path: Path) -> None:
    """With fill_missing a gap inside a day is zero calls, not an error."""
    path = tmp_path / "gap.csv"
    path.write_text("timestamp,calls\n2024-01-01T09:00,5\n2024-01-01T09:30,5\n2024-01-02T09:00,7\n")
    history = read_history_csv(path, 30, fill_missing=True)
    assert history.calls.tolist() == [[5.0, 5.0], [7.0, 0.0]]


def test_history_from_stored_calls_fills_quiet_intervals() -> None:
    """Calls from the store are bucketed in the given zone; intervals without calls are zero."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/New_York")
    at = datetime(2024, 1, 2, 9, 10, tzinfo=zone).timestamp()
    calls = [(at, 200.0), (at + 60, 100.0), (at + 2 * 3600, 300.0)]
    history = history_from_calls(calls, tz=zone, interval_minutes=30)
    assert history.slots[0] == time(9, 0) and history.slots[-1] == time(11, 0)
    assert history.calls.tolist() == [[2.0, 0.0, 0.0, 0.0, 1.0]]
    assert history.aht[0, 0] == 150.0


def test_seed_method_is_the_decayed_weekday_mean() -> None:
    """Seed baseline = same weekday/interval over 8 weeks with weights 0.8**k, newest first."""
    history = build_history(weekday_history(10), 30)
    day = MONDAY + timedelta(weeks=10)
    rows = [i for i, d in enumerate(history.days) if d.weekday() == 0][::-1][:8]
    weights = 0.8 ** np.arange(8)
    expected = (history.calls[rows] * weights[:, None]).sum(0) / weights.sum()
    got = SeedWeighted().predict(history, day, OpenCalendar.build(history, until=day))
    assert np.allclose(got, expected)


def test_methods_need_a_past_weekday() -> None:
    """Forecasting a weekday never seen before is a clear error."""
    history = build_history(weekday_history(1)[:6], 30)  # one Monday only
    with pytest.raises(WfmInputError, match="Tuesday"):
        SeasonalNaive().predict(history, MONDAY + timedelta(days=8), OpenCalendar(history.days))


def test_calendar_regression_learns_month_start_peaks() -> None:
    """The default method forecasts the first business days of a month above the other days."""
    history = build_history(weekday_history(12, noise=False), 30)
    target = date(2024, 4, 1)  # a Monday and the first business day of April
    calendar = OpenCalendar.build(history, until=date(2024, 4, 8))
    model = CalendarRegression()
    first = model.daily_total(history, target, calendar)
    later = model.daily_total(history, date(2024, 4, 8), calendar)
    assert first > 1.25 * later


def test_backtest_default_beats_seasonal_naive_on_noisy_data() -> None:
    """On Poisson-noisy history the default method cuts interval WAPE by well over 10%."""
    history = build_history(weekday_history(20, seed=7), 30)
    result = rolling_origin(history, list(available_methods().values()), horizon_days=5, min_train_days=40)
    assert result.best().method in ("calendar_regression", "seed")
    assert result.improvement("calendar_regression") > 0.10
    table = format_table(result)
    assert "WAPE/interval" in table and "seasonal_naive" in table


def _fpp2() -> Path | None:
    here = Path(__file__).resolve().parent.parent
    for candidate in (
        os.environ.get("WFM_FPP2_CSV"),
        here.parent / "shared/data/fpp2_calls/calls_5min.csv",
        here.parent.parent / "shared/data/fpp2_calls/calls_5min.csv",
        Path("/work/shared/data/fpp2_calls/calls_5min.csv"),
    ):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


@pytest.mark.skipif(_fpp2() is None, reason="fpp2 call data not present (shared/data/fpp2_calls)")
def test_default_beats_seasonal_naive_on_fpp2() -> None:
    """On the real fpp2 bank call centre data the default beats seasonal naive by >= 10% WAPE/interval."""
    history = read_history_csv(_fpp2(), 30)  # type: ignore[arg-type]
    assert history.calls.shape == (164, 29)
    result = rolling_origin(
        history, list(available_methods().values()), horizon_days=5, min_train_days=40, step_days=2
    )
    assert result.best().method == "calendar_regression"
    assert result.improvement("calendar_regression") >= 0.10


def test_forecast_day_applies_seed_adjustments() -> None:
    """Campaign lift is capped at 50%, outages spike their intervals, shrinkage follows the policy."""
    history = build_history(weekday_history(9, noise=False), 30)
    day = MONDAY + timedelta(weeks=9)
    plain = Forecaster(method=SeedWeighted()).forecast_day(history, day)
    campaigns = [Campaign("a", day, day, 0.4), Campaign("b", day, day, 0.3)]
    outage = Outage("ivr", datetime.combine(day, time(10, 0)), datetime.combine(day, time(11, 0)), 1.0)
    lifted = Forecaster(method=SeedWeighted(), campaigns=campaigns, outages=[outage]).forecast_day(
        history, day
    )
    for before, after in zip(plain, lifted, strict=True):
        spike = 2.0 if time(10) <= before.interval_start.time() < time(11) else 1.0
        assert after.predicted_volume == pytest.approx(before.predicted_volume * 1.5 * spike)
        assert after.required_agents >= before.required_agents
    assert all(row.shrinkage == pytest.approx(0.33) for row in plain)  # Monday: 30% + 3%
    assert all(row.confidence_low <= row.predicted_volume <= row.confidence_high for row in plain)


def test_band_widens_with_horizon() -> None:
    """The confidence band is wider two weeks out than for the next day."""
    history = build_history(weekday_history(9), 30)
    forecaster = Forecaster(method=SeedWeighted())
    near = forecaster.forecast_day(history, MONDAY + timedelta(weeks=9))
    far = forecaster.forecast_day(history, MONDAY + timedelta(weeks=11))
    width = lambda rows: sum(r.confidence_high - r.confidence_low for r in rows)  # noqa: E731
    assert width(far) > 1.3 * width(near)


def test_shrinkage_policy_and_aht_profile_defaults() -> None:
    """Mon/Fri +3%, mid-week training window +5%; AHT x1.15 early/late and x0.92 at lunch."""
    policy = ShrinkagePolicy()
    assert policy.at(datetime(2024, 1, 5, 10)) == pytest.approx(0.33)  # Friday
    assert policy.at(datetime(2024, 1, 3, 14, 30)) == pytest.approx(0.35)  # Wednesday training
    assert policy.at(datetime(2024, 1, 3, 10)) == pytest.approx(0.30)
    aht = AhtProfile(default_seconds=200)
    assert [aht.multiplier(time(h)) for h in (8, 10, 12, 19)] == [1.15, 1.0, 0.92, 1.15]


def test_aht_learnt_from_history() -> None:
    """When the history carries AHT, the forecast uses it per interval instead of the defaults."""
    rows = [(m, c, 100.0 + 50 * (m.hour >= 10)) for m, c, _ in weekday_history(3)]
    history = build_history(rows, 30)
    out = Forecaster(method=SeedWeighted()).forecast_day(history, MONDAY + timedelta(weeks=3))
    assert [r.predicted_aht for r in out] == pytest.approx([100, 100, 150, 150, 150, 150])


def test_zero_volume_interval_needs_no_agents() -> None:
    """An interval that never has calls is forecast at zero and staffed with zero agents."""
    rows = [(m, 0.0 if m.time() == time(9) else c, None) for m, c, _ in weekday_history(3)]
    out = Forecaster(method=SeedWeighted()).forecast_day(build_history(rows, 30), MONDAY + timedelta(weeks=3))
    assert out[0].predicted_volume == 0 and out[0].required_agents == 0 and out[0].scheduled_agents == 0
    assert out[1].required_agents > 0
