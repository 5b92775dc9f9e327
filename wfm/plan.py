"""Staffing plans from interval volumes, and the request shapes the CLI and REST share."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from wfm.erlang import ServiceTarget, Staffing, check_aht, check_shrinkage, check_volume, staffing
from wfm.errors import WfmInputError
from wfm.forecast import Campaign, Outage


@dataclass(frozen=True)
class IntervalDemand:
    interval_start: datetime
    calls: float
    aht_seconds: float | None


def _number(raw: Any, field: str, *, optional: bool = False) -> float | None:
    if raw is None or raw == "":
        if optional:
            return None
        raise WfmInputError(f"'{field}' is required", field=field)
    if isinstance(raw, bool):
        raise WfmInputError(f"'{field}' must be a number", field=field)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise WfmInputError(f"'{field}' must be a number, got {raw!r}", field=field) from None
    if not math.isfinite(value):
        raise WfmInputError(f"'{field}' must be finite", field=field)
    return value


def parse_target(spec: Mapping[str, Any]) -> ServiceTarget:
    """``service_level`` (default 0.8 unless an ASA or abandonment target replaces it),
    ``answer_seconds`` (20), ``asa_seconds``, ``max_occupancy``, ``max_abandon``."""
    asa = _number(spec.get("asa_seconds"), "asa_seconds", optional=True)
    abandon = _number(spec.get("max_abandon"), "max_abandon", optional=True)
    if "service_level" in spec:
        level = _number(spec.get("service_level"), "service_level", optional=True)
    else:
        level = None if (asa is not None or abandon is not None) else 0.8
    answer = _number(spec.get("answer_seconds", 20), "answer_seconds")
    return ServiceTarget(
        service_level=level,
        answer_seconds=answer if answer is not None else 20.0,
        asa_seconds=asa,
        max_occupancy=_number(spec.get("max_occupancy"), "max_occupancy", optional=True),
        max_abandon=abandon,
    )


def parse_demand(rows: Sequence[Mapping[str, Any]], default_aht: float | None = None) -> list[IntervalDemand]:
    """Rows of ``{"interval_start", "calls", "aht_seconds"?}`` (``start``/``timestamp`` and ``aht``
    accepted too), equally spaced with no missing interval."""
    if not isinstance(rows, Sequence) or isinstance(rows, str) or not rows:
        raise WfmInputError("'intervals' must be a non-empty list", field="intervals")
    demand = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise WfmInputError(f"intervals[{i}] must be an object", field=f"intervals[{i}]")
        raw_start = row.get("interval_start", row.get("start", row.get("timestamp")))
        try:
            start = datetime.fromisoformat(str(raw_start))
        except ValueError:
            raise WfmInputError(
                f"intervals[{i}].interval_start must be an ISO date-time, got {raw_start!r}",
                field=f"intervals[{i}].interval_start",
            ) from None
        calls = _number(row.get("calls"), f"intervals[{i}].calls")
        assert calls is not None
        check_volume(calls, field=f"intervals[{i}].calls")
        aht = _number(row.get("aht_seconds", row.get("aht")), f"intervals[{i}].aht_seconds", optional=True)
        if aht is None:
            aht = default_aht
        if calls > 0:
            if aht is None:
                raise WfmInputError(
                    f"intervals[{i}] has calls but no AHT (give aht_seconds or a default)",
                    field=f"intervals[{i}].aht_seconds",
                )
            check_aht(aht, field=f"intervals[{i}].aht_seconds")
        demand.append(IntervalDemand(start.replace(tzinfo=None), calls, aht))
    demand.sort(key=lambda d: d.interval_start)
    check_spacing([d.interval_start for d in demand])
    return demand


def check_spacing(starts: Sequence[datetime], interval_minutes: int | None = None) -> int:
    """Interval length in minutes; equally spaced, no duplicates, no gaps inside a day."""
    if len(starts) < 2:
        return interval_minutes or 30
    steps = {b - a for a, b in zip(starts, starts[1:], strict=False) if a.date() == b.date()}
    if timedelta(0) in steps:
        raise WfmInputError("duplicate interval start", field="intervals")
    step = min(steps) if steps else timedelta(minutes=interval_minutes or 30)
    gaps = [b for a, b in zip(starts, starts[1:], strict=False) if a.date() == b.date() and b - a != step]
    if gaps:
        raise WfmInputError(
            f"missing interval(s) before {', '.join(g.isoformat(timespec='minutes') for g in gaps[:5])} "
            f"(intervals are {int(step.total_seconds() // 60)} minutes apart)",
            field="intervals",
            code="missing_intervals",
        )
    minutes = int(step.total_seconds() // 60)
    if interval_minutes is not None and minutes != interval_minutes:
        raise WfmInputError(
            f"intervals are {minutes} minutes apart but interval_minutes is {interval_minutes}",
            field="interval_minutes",
        )
    return minutes


def plan_staffing(
    demand: Sequence[IntervalDemand],
    target: ServiceTarget,
    *,
    interval_minutes: int,
    shrinkage: float = 0.0,
    patience_seconds: float | None = None,
) -> list[dict[str, Any]]:
    check_shrinkage(shrinkage)
    rows = []
    for d in demand:
        result: Staffing = staffing(
            d.calls, d.aht_seconds or 1.0, interval_minutes * 60.0, target, shrinkage, patience_seconds
        )
        rows.append(
            {
                "interval_start": d.interval_start.isoformat(timespec="minutes"),
                "calls": d.calls,
                "aht_seconds": d.aht_seconds,
                **result.as_dict(),
            }
        )
    return rows


def totals(rows: Sequence[Mapping[str, Any]], interval_minutes: int) -> dict[str, Any]:
    hours = interval_minutes / 60
    calls = sum(r["calls"] for r in rows)
    return {
        "calls": calls,
        "peak_agents": max((r["agents"] for r in rows), default=0),
        "peak_scheduled": max((r["scheduled"] for r in rows), default=0),
        "agent_hours": round(sum(r["agents"] for r in rows) * hours, 2),
        "scheduled_hours": round(sum(r["scheduled"] for r in rows) * hours, 2),
    }


def parse_events(spec: Mapping[str, Any]) -> tuple[list[Campaign], list[Outage]]:
    """``{"campaigns": [{"name", "start", "end", "lift"}], "outages": [{"name", "start", "end", "spike"}]}``"""
    try:
        campaigns = [
            Campaign(
                str(c.get("name", "campaign")),
                date.fromisoformat(str(c["start"])),
                date.fromisoformat(str(c["end"])),
                float(c["lift"]),
            )
            for c in spec.get("campaigns", ()) or ()
        ]
        outages = [
            Outage(
                str(o.get("name", "outage")),
                datetime.fromisoformat(str(o["start"])),
                datetime.fromisoformat(str(o["end"])),
                float(o.get("spike", 1.0)),
            )
            for o in spec.get("outages", ()) or ()
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WfmInputError(f"bad campaign/outage events: {exc!r}", field="events") from None
    for c in campaigns:
        if c.lift < -1 or c.end < c.start:
            raise WfmInputError(f"campaign {c.name}: needs start <= end and lift >= -1", field="events")
    for o in outages:
        if o.spike < 0 or o.end <= o.start:
            raise WfmInputError(f"outage {o.name}: needs start < end and spike >= 0", field="events")
    return campaigns, outages
