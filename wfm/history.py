"""Interval history: call counts (and AHT) per day and planning interval, from a CSV or the call store.

A ``History`` is a dense matrix: one row per day that has data, one column per planning interval
of the day (the union of the intervals seen on any day, e.g. 07:00-21:00). Whole days may be
absent (holidays, weekends of a weekday-only centre); an interval missing *inside* a day that has
data is an error unless ``fill_missing`` says it means zero calls, because silently treating a
lost export row as zero calls under-staffs that interval next week.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import reduce
from pathlib import Path

import numpy as np

from wfm.errors import WfmInputError

MAX_REPORTED = 5


@dataclass(frozen=True)
class History:
    interval_minutes: int
    slots: tuple[time, ...]  # start time of each planning interval of the day
    days: tuple[date, ...]  # ascending, only days with data
    calls: np.ndarray  # float, shape (days, slots)
    aht: np.ndarray | None = None  # seconds, NaN where an interval had no calls

    @property
    def interval_seconds(self) -> float:
        return self.interval_minutes * 60.0

    def before(self, day: date) -> History:
        """The history a forecaster standing at the start of ``day`` would have had."""
        cut = int(np.searchsorted(np.array(self.days, dtype="datetime64[D]"), np.datetime64(day)))
        return History(
            self.interval_minutes,
            self.slots,
            self.days[:cut],
            self.calls[:cut],
            None if self.aht is None else self.aht[:cut],
        )

    def row(self, day: date) -> int | None:
        try:
            return self.days.index(day)
        except ValueError:
            return None

    def weekday_rows(self, weekday: int) -> np.ndarray:
        return np.array([i for i, d in enumerate(self.days) if d.weekday() == weekday], dtype=int)

    def mean_aht(self) -> float | None:
        if self.aht is None:
            return None
        mask = np.isfinite(self.aht) & (self.calls > 0)
        if not mask.any():
            return None
        return float((self.aht[mask] * self.calls[mask]).sum() / self.calls[mask].sum())


def _minute_of_day(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute


def build_history(
    rows: Iterable[tuple[datetime, float, float | None]],
    interval_minutes: int = 30,
    *,
    fill_missing: bool = False,
    source: str = "history",
) -> History:
    """Aggregate ``(interval start, calls, aht seconds or None)`` rows to the planning interval.

    The source resolution is inferred (the greatest common step between the times of day seen);
    the planning interval must be a whole multiple of it.
    """
    if interval_minutes <= 0 or 1440 % interval_minutes:
        raise WfmInputError(
            f"planning interval must divide a day into whole intervals, got {interval_minutes} minutes",
            field="interval_minutes",
        )
    by_day: dict[date, dict[int, tuple[float, float | None]]] = {}
    for moment, calls, aht in rows:
        if not math.isfinite(calls) or calls < 0:
            raise WfmInputError(
                f"{source}: negative or non-numeric volume {calls} at {moment}", field="calls"
            )
        if aht is not None and (not math.isfinite(aht) or aht < 0):
            raise WfmInputError(f"{source}: negative or non-numeric AHT {aht} at {moment}", field="aht")
        if aht is not None and aht == 0 and calls > 0:
            raise WfmInputError(f"{source}: AHT 0 with {calls:g} calls at {moment}", field="aht")
        day = by_day.setdefault(moment.date(), {})
        minute = _minute_of_day(moment)
        if minute in day:
            raise WfmInputError(f"{source}: duplicate interval {moment}", field="timestamp")
        day[minute] = (calls, aht)
    if not by_day:
        raise WfmInputError(f"{source}: no intervals", field="history")

    minutes = sorted({m for day in by_day.values() for m in day})
    steps = [b - a for a, b in zip(minutes, minutes[1:], strict=False)]
    source_step = reduce(math.gcd, steps) if steps else interval_minutes
    if interval_minutes % source_step:
        raise WfmInputError(
            f"{source}: data is at {source_step}-minute resolution; the planning interval "
            f"({interval_minutes} min) must be a multiple of it",
            field="interval_minutes",
        )
    grid = range(minutes[0], minutes[-1] + 1, source_step)
    expected = set(grid) if len(minutes) > 1 else set(minutes)
    missing = [
        datetime.combine(d, time(m // 60, m % 60))
        for d in sorted(by_day)
        for m in sorted(expected - by_day[d].keys())
    ]
    if missing and not fill_missing:
        shown = ", ".join(m.isoformat(sep=" ", timespec="minutes") for m in missing[:MAX_REPORTED])
        more = f" and {len(missing) - MAX_REPORTED} more" if len(missing) > MAX_REPORTED else ""
        raise WfmInputError(
            f"{source}: {len(missing)} missing interval(s) inside days that have data: {shown}{more} "
            "(export them with 0 calls, or pass fill_missing to treat gaps as zero calls)",
            field="history",
            code="missing_intervals",
        )

    first_slot = minutes[0] // interval_minutes * interval_minutes
    slot_minutes = list(range(first_slot, minutes[-1] + 1, interval_minutes))
    index = {m: i for i, m in enumerate(slot_minutes)}
    days = sorted(by_day)
    calls = np.zeros((len(days), len(slot_minutes)))
    handled = np.zeros_like(calls)
    timed = np.zeros_like(calls)
    any_aht = False
    for row, day in enumerate(days):
        for minute, (volume, aht) in by_day[day].items():
            col = index[minute // interval_minutes * interval_minutes]
            calls[row, col] += volume
            if aht is not None:
                any_aht = True
                handled[row, col] += volume * aht
                timed[row, col] += volume
    aht_matrix = None
    if any_aht:
        with np.errstate(invalid="ignore", divide="ignore"):
            aht_matrix = np.where(timed > 0, handled / np.where(timed > 0, timed, 1), np.nan)
    return History(
        interval_minutes,
        tuple(time(m // 60, m % 60) for m in slot_minutes),
        tuple(days),
        calls,
        aht_matrix,
    )


def _parse_float(raw: str | None, what: str, line: int, path: Path) -> float | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise WfmInputError(f"{path}:{line}: {what} {raw!r} is not a number", field=what) from None


def read_history_csv(path: Path | str, interval_minutes: int = 30, *, fill_missing: bool = False) -> History:
    """Read ``timestamp,calls[,aht]`` (or ``date,start_time|time,calls[,aht]``) at any resolution."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise WfmInputError(f"cannot read {path}: {exc.strerror}", field="history") from None
    rows: list[tuple[datetime, float, float | None]] = []
    with handle:
        reader = csv.DictReader(handle)
        fields = {name.strip().lower(): name for name in reader.fieldnames or []}
        time_field = fields.get("start_time") or fields.get("time")
        if "calls" not in fields or not ("timestamp" in fields or ("date" in fields and time_field)):
            raise WfmInputError(
                f"{path}: needs columns timestamp,calls[,aht] or date,start_time,calls[,aht]; "
                f"has {sorted(fields.values())}",
                field="history",
            )
        aht_field = fields.get("aht") or fields.get("aht_seconds")
        for line, record in enumerate(reader, start=2):
            try:
                if "timestamp" in fields:
                    moment = datetime.fromisoformat(record[fields["timestamp"]].strip())
                else:
                    moment = datetime.fromisoformat(
                        f"{record[fields['date']].strip()}T{record[time_field].strip()}"  # type: ignore[index]
                    )
            except (ValueError, AttributeError):
                raise WfmInputError(f"{path}:{line}: unreadable timestamp", field="timestamp") from None
            calls = _parse_float(record[fields["calls"]], "calls", line, path)
            if calls is None:
                raise WfmInputError(f"{path}:{line}: empty call count", field="calls")
            aht = _parse_float(record.get(aht_field), "aht", line, path) if aht_field else None
            rows.append((moment.replace(tzinfo=None), calls, aht))
    return build_history(rows, interval_minutes, fill_missing=fill_missing, source=str(path))


def history_from_calls(
    calls: Iterable[tuple[float, float]],
    *,
    tz: tzinfo,
    interval_minutes: int = 30,
    open_time: time | None = None,
    close_time: time | None = None,
) -> History:
    """History from stored call records ``(started_at unix seconds, duration seconds)``.

    Every call is in the store, so an interval without calls had zero calls: the grid runs from the
    first to the last interval seen on any day (or ``open_time``..``close_time``) and gaps are zeros.
    AHT is the mean call duration (talk time; add wrap-up upstream if you track it).
    """
    counts: dict[datetime, list[float]] = {}
    for started_at, duration in calls:
        moment = datetime.fromtimestamp(started_at, tz).replace(tzinfo=None)
        minute = _minute_of_day(moment) // interval_minutes * interval_minutes
        slot = datetime.combine(moment.date(), time(minute // 60, minute % 60))
        entry = counts.setdefault(slot, [0.0, 0.0])
        entry[0] += 1
        entry[1] += max(0.0, duration)
    if not counts:
        raise WfmInputError(
            "the call store has no calls to forecast from", field="history", code="no_history"
        )
    minutes = [_minute_of_day(m) for m in counts]
    first = _minute_of_day(datetime.combine(date.min, open_time)) if open_time else min(minutes)
    last = _minute_of_day(datetime.combine(date.min, close_time)) - 1 if close_time else max(minutes)
    first = first // interval_minutes * interval_minutes
    rows = []
    for day in sorted({m.date() for m in counts}):
        for minute in range(first, last + 1, interval_minutes):
            slot = datetime.combine(day, time(minute // 60, minute % 60))
            volume, talk = counts.get(slot, (0.0, 0.0))
            rows.append((slot, volume, talk / volume if volume else None))
    return build_history(rows, interval_minutes, source="call store")


def slot_datetimes(day: date, history: History) -> list[datetime]:
    return [datetime.combine(day, slot) for slot in history.slots]


def next_days(history: History, count: int) -> list[date]:
    """The ``count`` days after the history on which the centre usually opens (its weekdays)."""
    open_weekdays = {d.weekday() for d in history.days}
    days, day = [], history.days[-1]
    while len(days) < count:
        day += timedelta(days=1)
        if day.weekday() in open_weekdays:
            days.append(day)
    return days
