"""Rolling-origin backtest: stand at the end of each day, forecast the next ``horizon`` open days
with every method from the history up to then, and score against what happened.

WAPE = sum |forecast - actual| / sum actual; bias = sum (forecast - actual) / sum actual (positive
means over-forecast, i.e. over-staffing). "per interval" scores every (day, interval) cell, "per
day" scores daily totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from wfm.errors import WfmInputError
from wfm.history import History
from wfm.methods import OpenCalendar, VolumeMethod


@dataclass
class MethodScore:
    method: str
    forecasts: int = 0
    abs_error: float = 0.0
    error: float = 0.0
    day_abs_error: float = 0.0
    actual: float = 0.0
    slot_abs_error: np.ndarray | None = None
    slot_actual: np.ndarray | None = None

    @property
    def wape_interval(self) -> float:
        return self.abs_error / self.actual if self.actual else float("nan")

    @property
    def bias(self) -> float:
        return self.error / self.actual if self.actual else float("nan")

    @property
    def wape_day(self) -> float:
        return self.day_abs_error / self.actual if self.actual else float("nan")

    def add(self, forecast: np.ndarray, actual: np.ndarray) -> None:
        if self.slot_abs_error is None:
            self.slot_abs_error = np.zeros_like(actual)
            self.slot_actual = np.zeros_like(actual)
        self.forecasts += 1
        self.abs_error += float(np.abs(forecast - actual).sum())
        self.error += float((forecast - actual).sum())
        self.day_abs_error += abs(float(forecast.sum() - actual.sum()))
        self.actual += float(actual.sum())
        self.slot_abs_error += np.abs(forecast - actual)
        self.slot_actual += actual  # type: ignore[operator]

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "method": self.method,
            "forecast_days": self.forecasts,
            "wape_interval": round(self.wape_interval, 5),
            "bias_interval": round(self.bias, 5),
            "wape_day": round(self.wape_day, 5),
            "bias_day": round(self.bias, 5),
        }


@dataclass
class BacktestResult:
    interval_minutes: int
    origins: int
    horizon_days: int
    scores: list[MethodScore] = field(default_factory=list)
    slots: tuple[str, ...] = ()

    def best(self) -> MethodScore:
        return min(self.scores, key=lambda s: s.wape_interval)

    def improvement(self, method: str, baseline: str = "seasonal_naive") -> float | None:
        """Relative WAPE-per-interval reduction of ``method`` against ``baseline``."""
        by_name = {s.method: s for s in self.scores}
        if method not in by_name or baseline not in by_name:
            return None
        return 1 - by_name[method].wape_interval / by_name[baseline].wape_interval

    def as_dict(self) -> dict[str, object]:
        return {
            "interval_minutes": self.interval_minutes,
            "origins": self.origins,
            "horizon_days": self.horizon_days,
            "best": self.best().method,
            "methods": [s.as_dict() for s in self.scores],
            "wape_by_slot": {
                s.method: {
                    slot: round(float(err / act), 5) if act else None
                    for slot, err, act in zip(self.slots, s.slot_abs_error, s.slot_actual, strict=True)  # type: ignore[arg-type]
                }
                for s in self.scores
            },
        }


def rolling_origin(
    history: History,
    methods: Sequence[VolumeMethod],
    *,
    horizon_days: int = 5,
    min_train_days: int = 40,
    step_days: int = 1,
) -> BacktestResult:
    """Forecast days ``[o, o + horizon)`` from ``days[:o]`` for each origin ``o`` (every
    ``step_days`` from ``min_train_days``); every method sees exactly the same origins."""
    if horizon_days < 1 or step_days < 1 or min_train_days < 1:
        raise WfmInputError("horizon, step and minimum training days must be >= 1", field="horizon_days")
    if len(history.days) <= min_train_days:
        raise WfmInputError(
            f"backtest needs more than {min_train_days} days of history, got {len(history.days)}",
            field="history",
            code="not_enough_history",
        )
    calendar = OpenCalendar(history.days)
    scores = [MethodScore(m.name) for m in methods]
    origins = range(min_train_days, len(history.days), step_days)
    for origin in origins:
        past = history.before(history.days[origin])
        for target in range(origin, min(origin + horizon_days, len(history.days))):
            day, actual = history.days[target], history.calls[target]
            for method, score in zip(methods, scores, strict=True):
                score.add(np.maximum(method.predict(past, day, calendar), 0.0), actual)
    return BacktestResult(
        history.interval_minutes,
        len(origins),
        horizon_days,
        scores,
        tuple(s.strftime("%H:%M") for s in history.slots),
    )


def format_table(result: BacktestResult) -> str:
    """A plain-text table (also what docs/wfm.md and the README quote)."""
    lines = [
        f"rolling-origin backtest: {result.origins} origins, horizon {result.horizon_days} day(s), "
        f"{result.interval_minutes}-minute intervals",
        f"{'method':<22}{'WAPE/interval':>14}{'bias/interval':>14}{'WAPE/day':>10}{'bias/day':>10}{'vs naive':>10}",
    ]
    for s in sorted(result.scores, key=lambda s: s.wape_interval):
        gain = result.improvement(s.method)
        versus = "" if gain is None else "baseline" if s.method == "seasonal_naive" else f"{-gain:+.1%}"
        lines.append(
            f"{s.method:<22}{s.wape_interval:>14.2%}{s.bias:>+14.2%}{s.wape_day:>10.2%}{s.bias:>+10.2%}{versus:>10}"
        )
    lines.append(f"best: {result.best().method}")
    return "\n".join(lines)
