"""A day's interval forecast with the seed's adjustments, staffed per interval.

volume = method baseline x monthly seasonality index x (1 + campaign lift, capped at 50%)
         x (1 + outage spike inside a planned-outage window)
band   = volume -/+ z x sd x sqrt(1 + (horizon - 1) / 5): sd mixes the spread of the same weekday's
         past values with Poisson noise, and widens with the number of open days ahead
AHT    = learnt per interval from the history's AHT when it has one (recency-weighted), else the
         default AHT x hour multipliers (early/late x1.15, lunch x0.92)
shrink = base 30% + 3% Monday/Friday + 5% in the mid-week training window (all configurable)
agents = Erlang C (or Erlang A with a patience) for the target, then shrinkage -> scheduled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from typing import Any

import numpy as np

from wfm.erlang import ServiceTarget, check_aht, check_shrinkage, staffing
from wfm.errors import WfmInputError
from wfm.history import History
from wfm.methods import DEFAULT_METHOD, OpenCalendar, VolumeMethod, method

CAMPAIGN_LIFT_CAP = 0.5
BAND_Z = 1.2816  # an 80% band


@dataclass(frozen=True)
class Campaign:
    """A marketing or billing campaign lifting volume by ``lift`` (0.2 = +20%) on its days."""

    name: str
    start: date
    end: date
    lift: float

    def active(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Outage:
    """A planned outage (system maintenance, IVR change) that spikes calls by ``spike`` (1.0 = +100%)
    for intervals starting inside [start, end)."""

    name: str
    start: datetime
    end: datetime
    spike: float = 1.0

    def active(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class ShrinkagePolicy:
    base: float = 0.30
    monday_friday: float = 0.03
    training: float = 0.05
    training_weekdays: tuple[int, ...] = (1, 2, 3)  # Tuesday-Thursday
    training_start: time = time(14, 0)
    training_end: time = time(16, 0)

    def at(self, moment: datetime) -> float:
        value = self.base
        if moment.weekday() in (0, 4):
            value += self.monday_friday
        if (
            moment.weekday() in self.training_weekdays
            and self.training_start <= moment.time() < self.training_end
        ):
            value += self.training
        check_shrinkage(value)
        return value


@dataclass(frozen=True)
class AhtProfile:
    """Hour-of-day AHT multipliers used when the history carries no AHT."""

    default_seconds: float = 300.0
    early_before: time = time(9, 0)
    late_from: time = time(18, 0)
    edge_multiplier: float = 1.15
    lunch_start: time = time(12, 0)
    lunch_end: time = time(14, 0)
    lunch_multiplier: float = 0.92

    def multiplier(self, moment: time) -> float:
        if moment < self.early_before or moment >= self.late_from:
            return self.edge_multiplier
        if self.lunch_start <= moment < self.lunch_end:
            return self.lunch_multiplier
        return 1.0

    def for_slots(self, history: History, day: date, weeks: int = 8, decay: float = 0.85) -> np.ndarray:
        check_aht(self.default_seconds, field="aht_seconds")
        fallback = np.array([self.default_seconds * self.multiplier(s) for s in history.slots])
        if history.aht is None:
            return fallback
        rows = np.arange(len(history.days))[::-1][: 5 * weeks]
        weights = (decay ** (np.arange(len(rows)) / 5))[:, None] * history.calls[rows]
        aht = history.aht[rows]
        weights = np.where(np.isfinite(aht), weights, 0.0)
        total = weights.sum(axis=0)
        learnt = np.divide(
            np.nansum(np.where(weights > 0, aht, 0.0) * weights, axis=0),
            total,
            out=np.zeros_like(total),
            where=total > 0,
        )
        overall = history.mean_aht() or self.default_seconds
        return np.where(total > 0, learnt, overall * np.array([self.multiplier(s) for s in history.slots]))


@dataclass(frozen=True)
class ForecastInterval:
    """One planning interval of the day (the seed's fields, then the staffing detail)."""

    interval_start: datetime
    predicted_volume: float
    confidence_low: float
    confidence_high: float
    predicted_aht: float
    required_agents: int
    scheduled_agents: int
    shrinkage: float
    service_level: float
    occupancy: float
    asa_seconds: float | None
    prob_abandon: float

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["interval_start"] = self.interval_start.isoformat(timespec="minutes")
        for key in ("predicted_volume", "confidence_low", "confidence_high", "predicted_aht"):
            row[key] = round(row[key], 2)
        for key in ("service_level", "occupancy", "prob_abandon", "shrinkage"):
            row[key] = round(row[key], 4)
        if self.asa_seconds is not None:
            row["asa_seconds"] = round(self.asa_seconds, 2) if math.isfinite(self.asa_seconds) else None
        return row


def monthly_index(history: History) -> dict[int, float]:
    """Mean daily calls per calendar month over the overall mean, learnt only from a year or more
    of history (less cannot separate season from trend); empty = neutral."""
    if not history.days or (history.days[-1] - history.days[0]).days < 365:
        return {}
    totals = history.calls.sum(axis=1)
    by_month: dict[int, list[float]] = {}
    for day, total in zip(history.days, totals, strict=True):
        by_month.setdefault(day.month, []).append(float(total))
    overall = float(np.mean(totals))
    return {m: float(np.mean(v)) / overall for m, v in by_month.items() if overall > 0}


@dataclass
class Forecaster:
    method: VolumeMethod = field(default_factory=lambda: method(DEFAULT_METHOD))
    target: ServiceTarget = field(default_factory=ServiceTarget)
    shrinkage: ShrinkagePolicy = field(default_factory=ShrinkagePolicy)
    aht: AhtProfile = field(default_factory=AhtProfile)
    patience_seconds: float | None = None
    campaigns: Sequence[Campaign] = ()
    outages: Sequence[Outage] = ()
    seasonality: dict[int, float] | None = None  # None: learn from history

    def forecast_day(
        self, history: History, day: date, calendar: OpenCalendar | None = None
    ) -> list[ForecastInterval]:
        if not history.days:
            raise WfmInputError("no history to forecast from", field="history", code="no_history")
        past = history.before(day)
        if not past.days:
            raise WfmInputError(f"no history before {day}", field="date", code="not_enough_history")
        calendar = calendar or OpenCalendar.build(past, until=day)
        baseline = np.maximum(self.method.predict(past, day, calendar), 0.0)
        factor = self._season_factor(past, day) * (1 + self._campaign_lift(day))
        moments = [datetime.combine(day, slot) for slot in past.slots]
        spikes = np.array([1 + sum(o.spike for o in self.outages if o.active(m)) for m in moments])
        volume = baseline * factor * spikes
        half_width = self._band(past, day, calendar, baseline) * factor * spikes
        aht = self.aht.for_slots(past, day)
        rows = []
        for moment, calls, width, handle in zip(moments, volume, half_width, aht, strict=True):
            shrink = self.shrinkage.at(moment)
            staffed = staffing(
                float(calls), float(handle), past.interval_seconds, self.target, shrink, self.patience_seconds
            )
            metrics = staffed.metrics
            rows.append(
                ForecastInterval(
                    interval_start=moment,
                    predicted_volume=float(calls),
                    confidence_low=max(0.0, float(calls - width)),
                    confidence_high=float(calls + width),
                    predicted_aht=float(handle),
                    required_agents=staffed.agents,
                    scheduled_agents=staffed.scheduled,
                    shrinkage=shrink,
                    service_level=metrics.service_level,
                    occupancy=metrics.occupancy,
                    asa_seconds=metrics.asa_seconds,
                    prob_abandon=metrics.prob_abandon,
                )
            )
        return rows

    def forecast_days(self, history: History, days: Iterable[date]) -> list[ForecastInterval]:
        days = sorted(days)
        calendar = OpenCalendar.build(history, until=days[-1]) if days else None
        return [row for day in days for row in self.forecast_day(history, day, calendar)]

    def _campaign_lift(self, day: date) -> float:
        return min(CAMPAIGN_LIFT_CAP, sum(c.lift for c in self.campaigns if c.active(day)))

    def _season_factor(self, past: History, day: date) -> float:
        index = self.seasonality if self.seasonality is not None else monthly_index(past)
        if not index:
            return 1.0
        # The baseline already carries the level of the recent weeks' months.
        recent = {d.month for d in past.days[-40:]}
        base = float(np.mean([index.get(m, 1.0) for m in recent])) or 1.0
        return index.get(day.month, 1.0) / base

    def _band(self, past: History, day: date, calendar: OpenCalendar, expected: np.ndarray) -> np.ndarray:
        rows = past.weekday_rows(day.weekday())[::-1][:8]
        if len(rows) >= 2:
            weights = 0.8 ** np.arange(len(rows))
            values = past.calls[rows]
            mean = (values * weights[:, None]).sum(axis=0) / weights.sum()
            spread = (((values - mean) ** 2) * weights[:, None]).sum(axis=0) / weights.sum()
        else:
            spread = np.zeros_like(expected)
        sd = np.sqrt(spread + expected)
        ahead = sum(1 for d in calendar.open_days if past.days[-1] < d <= day)
        return BAND_Z * sd * math.sqrt(1 + (max(ahead, 1) - 1) / 5)
