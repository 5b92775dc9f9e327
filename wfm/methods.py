"""Volume forecasting methods: each predicts one day's calls per planning interval from the history
before that day. The backtest compares them; the best on real data is the default.

- ``seasonal_naive``: the same interval on the last open day with the same weekday.
- ``seed``: the seed's baseline, a weighted mean of the same weekday and interval over the past
  8 weeks with exponentially decaying weights (most recent weight 1, then 0.8, 0.64, ...).
- ``calendar_regression`` (default): daily total from a ridge regression of log daily calls on
  weekday, business-day-of-month (first three and last business day) and before/after-closure flags,
  fitted on recency-weighted history and shifted by an exponentially smoothed level of its recent
  residuals; split over the day by a recency-weighted intraday profile (same weekday blended with
  all days). On fpp2 it cuts per-interval WAPE by about a third against seasonal naive (docs/wfm.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

import numpy as np
from sklearn.linear_model import Ridge

from wfm.errors import WfmInputError
from wfm.history import History


@dataclass(frozen=True)
class OpenCalendar:
    """The days the centre opens: history days, then its usual weekdays minus known closures.

    Weekdays inside the history range with no data count as closed (public holidays), which is
    what the after-closure feature learns from.
    """

    open_days: tuple[date, ...]
    _position: dict[date, int] = field(default_factory=dict, compare=False, repr=False)
    _weekdays: list[int] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def build(cls, history: History, until: date | None = None, closed: Iterable[date] = ()) -> OpenCalendar:
        weekdays = {d.weekday() for d in history.days}
        closed_set = set(closed)
        days = [d for d in history.days if d not in closed_set]
        day = history.days[-1] if history.days else date.today()
        end = until or day
        while day < end:
            day += timedelta(days=1)
            if day.weekday() in weekdays and day not in closed_set:
                days.append(day)
        return cls(tuple(days))

    def __post_init__(self) -> None:
        self._position.update({d: i for i, d in enumerate(self.open_days)})
        self._weekdays.extend(sorted({d.weekday() for d in self.open_days}))

    def usual_gap(self, weekday: int) -> int:
        """Days since the previous open day that are normal for ``weekday`` (3 for a Monday in a
        weekday-only centre, 1 for a 7-day centre)."""
        previous = [w for w in self._weekdays if w < weekday]
        prior = previous[-1] if previous else (self._weekdays or [weekday])[-1] - 7
        return weekday - prior

    def features(self, day: date) -> np.ndarray:
        """weekday one-hot (7), 1st/2nd/3rd business day of month, last business day, after and
        before a closure (a gap longer than the usual one for that weekday)."""
        x = np.zeros(13)
        x[day.weekday()] = 1
        index = self._position.get(day)
        if index is None:
            return x
        month = [
            d
            for d in self.open_days[max(0, index - 25) : index + 26]
            if (d.year, d.month) == (day.year, day.month)
        ]
        k = month.index(day)
        if k < 3:
            x[7 + k] = 1
        if k == len(month) - 1 and index + 1 < len(self.open_days):
            x[10] = 1
        if index > 0 and (day - self.open_days[index - 1]).days > self.usual_gap(day.weekday()):
            x[11] = 1
        if index + 1 < len(self.open_days):
            following = self.open_days[index + 1]
            if (following - day).days > self.usual_gap(following.weekday()):
                x[12] = 1
        return x


class VolumeMethod(Protocol):
    name: str

    def predict(self, history: History, day: date, calendar: OpenCalendar) -> np.ndarray: ...


def _same_weekday_rows(history: History, day: date, count: int) -> np.ndarray:
    rows = history.weekday_rows(day.weekday())
    rows = rows[[history.days[r] < day for r in rows]] if len(rows) else rows
    return rows[::-1][:count]


def _require_rows(history: History, day: date, count: int) -> np.ndarray:
    rows = _same_weekday_rows(history, day, count)
    if len(rows) == 0:
        raise WfmInputError(
            f"no history for a {day:%A} before {day}: need at least one past {day:%A}",
            field="history",
            code="not_enough_history",
        )
    return rows


@dataclass(frozen=True)
class SeasonalNaive:
    name: str = "seasonal_naive"

    def predict(self, history: History, day: date, calendar: OpenCalendar) -> np.ndarray:
        return history.calls[_require_rows(history, day, 1)[0]].copy()


@dataclass(frozen=True)
class SeedWeighted:
    """The seed's baseline: same weekday and interval, past ``weeks`` weeks, weights ``decay**k``."""

    weeks: int = 8
    decay: float = 0.8
    name: str = "seed"

    def weights(self, count: int) -> np.ndarray:
        return self.decay ** np.arange(count)

    def predict(self, history: History, day: date, calendar: OpenCalendar) -> np.ndarray:
        rows = _require_rows(history, day, self.weeks)
        weights = self.weights(len(rows))
        return (history.calls[rows] * weights[:, None]).sum(axis=0) / weights.sum()


def intraday_profile(
    history: History, day: date, weeks: int = 8, decay: float = 0.85, mix: float = 0.3
) -> np.ndarray:
    """Share of the day's calls per interval: recency-weighted same-weekday shape blended with the
    recency-weighted shape of all recent days (steadier when one weekday has few samples)."""
    totals = history.calls.sum(axis=1, keepdims=True)
    shapes = np.divide(history.calls, totals, out=np.zeros_like(history.calls), where=totals > 0)
    rows = _require_rows(history, day, weeks)
    w = decay ** np.arange(len(rows))
    same = (shapes[rows] * w[:, None]).sum(axis=0) / w.sum()
    recent = np.arange(len(history.days))[::-1][: 5 * weeks]
    wa = decay ** (np.arange(len(recent)) / 5)
    pooled = (shapes[recent] * wa[:, None]).sum(axis=0) / wa.sum()
    profile = (1 - mix) * same + mix * pooled
    total = profile.sum()
    return profile / total if total > 0 else profile


@dataclass(frozen=True)
class CalendarRegression:
    ridge: float = 0.1
    halflife_days: float = 1000.0
    level_alpha: float = 0.15
    name: str = "calendar_regression"

    def daily_total(self, history: History, day: date, calendar: OpenCalendar) -> float:
        totals = history.calls.sum(axis=1)
        usable = totals > 0
        if usable.sum() < 10:
            # Too little to fit a regression: fall back to the seed's weighted weekday mean.
            return float(SeedWeighted().predict(history, day, calendar).sum())
        features = np.array([calendar.features(d) for d in history.days])[usable]
        target = np.log(totals[usable])
        age = np.array(
            [(history.days[-1] - d).days for d, ok in zip(history.days, usable, strict=True) if ok],
            dtype=float,
        )
        model = Ridge(alpha=self.ridge).fit(features, target, sample_weight=0.5 ** (age / self.halflife_days))
        residuals = target - model.predict(features)
        level = 0.0
        for residual in residuals:
            level = self.level_alpha * residual + (1 - self.level_alpha) * level
        return float(np.exp(model.predict(calendar.features(day)[None, :])[0] + level))

    def predict(self, history: History, day: date, calendar: OpenCalendar) -> np.ndarray:
        return self.daily_total(history, day, calendar) * intraday_profile(history, day)


def method(name: str) -> VolumeMethod:
    """A method by name (``seed``, ``seasonal_naive``, ``calendar_regression``)."""
    methods = available_methods()
    if name not in methods:
        raise WfmInputError(f"unknown method {name!r}; choose one of {sorted(methods)}", field="method")
    return methods[name]


def available_methods() -> dict[str, VolumeMethod]:
    return {m.name: m for m in (CalendarRegression(), SeedWeighted(), SeasonalNaive())}


DEFAULT_METHOD = "calendar_regression"
