"""Staffing plan -> shifts, as an integer program (scipy ``milp``, HiGHS).

Implicit break placement (Aykin 1996): one integer variable per shift (type x start) says how many
agents work it, and one per (shift, break, break start) says how many of them take that break
there, with sum over starts = agents on the shift. Any integer solution can be handed out to
individual agents, so the model is exact while staying small (a few thousand variables for a day).

Coverage is counted on a fine grid (the gcd of interval, start step and break lengths/windows): an
agent on a 15-minute break in a 30-minute interval covers half of it. Every interval gets a
shortfall variable priced far above any shift, so the solver always returns the cheapest schedule
that covers everything coverable, and reports the intervals it could not meet (too few agents
allowed, or no shift fits) instead of failing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

from wfm.errors import WfmInputError

SHORTFALL_PENALTY = 1000.0  # per agent-hour missed; any shift-hour costs 1


@dataclass(frozen=True)
class Break:
    """A break of ``minutes`` starting between ``earliest`` and ``latest`` minutes into the shift."""

    minutes: int
    earliest: int
    latest: int
    paid: bool = True
    name: str = "break"


@dataclass(frozen=True)
class ShiftType:
    name: str
    hours: float
    breaks: tuple[Break, ...] = ()
    max_count: int | None = None

    @property
    def minutes(self) -> int:
        return round(self.hours * 60)

    @property
    def paid_hours(self) -> float:
        return self.hours - sum(b.minutes for b in self.breaks if not b.paid) / 60


def default_shift_types() -> tuple[ShiftType, ...]:
    return (
        ShiftType(
            "8h",
            8.5,
            (
                Break(15, 90, 150, name="break"),
                Break(30, 210, 300, paid=False, name="lunch"),
                Break(15, 330, 420, name="break"),
            ),
        ),
        ShiftType(
            "6h", 6.0, (Break(15, 90, 150, name="break"), Break(30, 180, 240, paid=False, name="lunch"))
        ),
        ShiftType("4h", 4.0, (Break(15, 90, 150, name="break"),)),
    )


@dataclass(frozen=True)
class ShiftRules:
    shift_types: tuple[ShiftType, ...] = field(default_factory=default_shift_types)
    start_step_minutes: int = 30
    max_agents: int | None = None
    time_limit_seconds: float = 20.0
    mip_rel_gap: float = 0.005  # stop within 0.5% of the proven optimum

    def check(self, interval_minutes: int) -> None:
        if not self.shift_types:
            raise WfmInputError("at least one shift type is needed", field="shift_types")
        if self.start_step_minutes <= 0:
            raise WfmInputError("shift start step must be > 0 minutes", field="start_step_minutes")
        if self.max_agents is not None and self.max_agents < 0:
            raise WfmInputError("max_agents must be >= 0", field="max_agents")
        for shift in self.shift_types:
            if shift.minutes <= 0:
                raise WfmInputError(f"shift {shift.name}: length must be > 0", field="shift_types")
            end_of_previous = 0
            for brk in shift.breaks:
                if brk.minutes <= 0 or brk.earliest < end_of_previous or brk.latest < brk.earliest:
                    raise WfmInputError(
                        f"shift {shift.name}: break windows must be positive, ordered and not overlap",
                        field="shift_types",
                    )
                if brk.latest + brk.minutes > shift.minutes:
                    raise WfmInputError(
                        f"shift {shift.name}: a {brk.name} window ends after the shift", field="shift_types"
                    )
                end_of_previous = brk.latest + brk.minutes


@dataclass(frozen=True)
class ShiftAssignment:
    count: int
    shift_type: str
    start: datetime
    end: datetime
    breaks: tuple[tuple[str, datetime, datetime, bool], ...]
    paid_hours: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "shift_type": self.shift_type,
            "start": self.start.isoformat(timespec="minutes"),
            "end": self.end.isoformat(timespec="minutes"),
            "paid_hours": self.paid_hours,
            "breaks": [
                {
                    "name": n,
                    "start": s.isoformat(timespec="minutes"),
                    "end": e.isoformat(timespec="minutes"),
                    "paid": p,
                }
                for n, s, e, p in self.breaks
            ],
        }


@dataclass(frozen=True)
class CoverageRow:
    interval_start: datetime
    required: float
    staffed: float

    @property
    def over(self) -> float:
        return max(0.0, self.staffed - self.required)

    @property
    def under(self) -> float:
        return max(0.0, self.required - self.staffed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "interval_start": self.interval_start.isoformat(timespec="minutes"),
            "required": self.required,
            "staffed": round(self.staffed, 3),
            "over": round(self.over, 3),
            "under": round(self.under, 3),
        }


@dataclass(frozen=True)
class ScheduleResult:
    status: str  # optimal | time_limit
    feasible: bool  # every interval covered
    paid_hours: float
    agents: int
    shifts: tuple[ShiftAssignment, ...]
    coverage: tuple[CoverageRow, ...]
    mip_gap: float | None

    @property
    def unmet(self) -> list[datetime]:
        return [row.interval_start for row in self.coverage if row.under > 1e-6]

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "feasible": self.feasible,
            "paid_hours": round(self.paid_hours, 2),
            "agents": self.agents,
            "mip_gap": self.mip_gap,
            "unmet_intervals": [m.isoformat(timespec="minutes") for m in self.unmet],
            "over_hours": round(sum(r.over for r in self.coverage) * self._interval_hours, 2),
            "under_hours": round(sum(r.under for r in self.coverage) * self._interval_hours, 2),
            "shifts": [s.as_dict() for s in self.shifts],
            "coverage": [r.as_dict() for r in self.coverage],
        }

    @property
    def _interval_hours(self) -> float:
        if len(self.coverage) < 2:
            return 0.0
        return (self.coverage[1].interval_start - self.coverage[0].interval_start).total_seconds() / 3600


@dataclass(frozen=True)
class _Shift:
    type_index: int
    start: int  # grid cell
    cells: int


def build_schedule(
    starts: Sequence[datetime], required: Sequence[float], rules: ShiftRules | None = None
) -> ScheduleResult:
    """Cheapest set of shifts (paid hours) covering ``required`` agents per interval.

    ``starts`` are the contiguous, equally spaced interval starts of the horizon (e.g. one day);
    shifts must start and end inside it.
    """
    rules = rules or ShiftRules()
    if not starts or len(starts) != len(required):
        raise WfmInputError("give one requirement per interval start", field="requirements")
    for value in required:
        if not math.isfinite(value) or value < 0:
            raise WfmInputError(f"requirements must be >= 0, got {value}", field="requirements")
    interval = (starts[1] - starts[0]) if len(starts) > 1 else timedelta(minutes=30)
    interval_minutes = int(interval.total_seconds() // 60)
    if interval_minutes <= 0 or any(b - a != interval for a, b in zip(starts, starts[1:], strict=False)):
        raise WfmInputError(
            "interval starts must be equally spaced with no gaps (missing intervals?)",
            field="requirements",
            code="missing_intervals",
        )
    rules.check(interval_minutes)

    numbers = [interval_minutes, rules.start_step_minutes]
    for shift in rules.shift_types:
        numbers.append(shift.minutes)
        for brk in shift.breaks:
            numbers += [brk.minutes, brk.earliest, brk.latest]
    grid = reduce(math.gcd, [n for n in numbers if n > 0])
    per_interval = interval_minutes // grid
    horizon_cells = len(starts) * per_interval
    start_stride = rules.start_step_minutes // grid if rules.start_step_minutes % grid == 0 else 1

    shifts = [
        _Shift(ti, s, shift.minutes // grid)
        for ti, shift in enumerate(rules.shift_types)
        for s in range(0, horizon_cells - shift.minutes // grid + 1, start_stride)
    ]
    # Break variables: (shift index, break index, start cell)
    break_vars = [
        (si, bi, sh.start + offset // grid)
        for si, sh in enumerate(shifts)
        for bi, brk in enumerate(rules.shift_types[sh.type_index].breaks)
        for offset in range(brk.earliest, brk.latest + 1, grid)
    ]
    n_shift, n_break, n_int = len(shifts), len(break_vars), len(starts)
    n_vars = n_shift + n_break + n_int
    interval_hours = interval_minutes / 60

    cost = np.zeros(n_vars)
    for si, sh in enumerate(shifts):
        cost[si] = rules.shift_types[sh.type_index].paid_hours
    cost[n_shift + n_break :] = SHORTFALL_PENALTY * interval_hours

    cover = lil_matrix((n_int, n_vars))
    for si, sh in enumerate(shifts):
        for cell in range(sh.start, sh.start + sh.cells):
            cover[cell // per_interval, si] += 1 / per_interval
    for vi, (si, bi, cell0) in enumerate(break_vars):
        brk = rules.shift_types[shifts[si].type_index].breaks[bi]
        for cell in range(cell0, cell0 + brk.minutes // grid):
            cover[cell // per_interval, n_shift + vi] -= 1 / per_interval
    for t in range(n_int):
        cover[t, n_shift + n_break + t] = 1
    constraints = [LinearConstraint(cover.tocsr(), lb=np.asarray(required, dtype=float), ub=np.inf)]

    if n_break:
        keys = {key: row for row, key in enumerate(dict.fromkeys((si, bi) for si, bi, _ in break_vars))}
        link = lil_matrix((len(keys), n_vars))
        for vi, (si, bi, _) in enumerate(break_vars):
            row = keys[(si, bi)]
            link[row, n_shift + vi] = 1
            link[row, si] = -1
        constraints.append(LinearConstraint(link.tocsr(), lb=0, ub=0))
    if rules.max_agents is not None:
        head = np.zeros(n_vars)
        head[:n_shift] = 1
        constraints.append(LinearConstraint(head[None, :], lb=0, ub=rules.max_agents))
    for ti, shift in enumerate(rules.shift_types):
        if shift.max_count is not None:
            per_type = np.zeros(n_vars)
            per_type[[si for si, sh in enumerate(shifts) if sh.type_index == ti]] = 1
            constraints.append(LinearConstraint(per_type[None, :], lb=0, ub=shift.max_count))

    integrality = np.r_[np.ones(n_shift + n_break), np.zeros(n_int)]
    result = milp(
        cost,
        constraints=constraints,
        integrality=integrality,
        bounds=Bounds(0, np.inf),
        options={"time_limit": rules.time_limit_seconds, "mip_rel_gap": rules.mip_rel_gap, "disp": False},
    )
    if result.x is None:
        raise WfmInputError(f"the scheduler found no solution: {result.message}", field="requirements")
    x = np.round(result.x).astype(int)
    assignments = _assignments(
        starts[0], grid, rules, shifts, break_vars, x[:n_shift], x[n_shift : n_shift + n_break]
    )
    staffed = np.asarray(cover[:, : n_shift + n_break].tocsr() @ x[: n_shift + n_break]).ravel()
    coverage = tuple(
        CoverageRow(start, float(req), float(have))
        for start, req, have in zip(starts, required, staffed, strict=True)
    )
    return ScheduleResult(
        status="optimal" if result.status == 0 else "time_limit",
        feasible=all(row.under <= 1e-6 for row in coverage),
        paid_hours=float(sum(a.paid_hours * a.count for a in assignments)),
        agents=int(x[:n_shift].sum()),
        shifts=tuple(assignments),
        coverage=coverage,
        mip_gap=getattr(result, "mip_gap", None),
    )


def _assignments(
    origin: datetime,
    grid: int,
    rules: ShiftRules,
    shifts: list[_Shift],
    break_vars: list[tuple[int, int, int]],
    shift_counts: np.ndarray,
    break_counts: np.ndarray,
) -> list[ShiftAssignment]:
    """Hand the solver's counts out to agents: the i-th agent of a shift takes the i-th break slot
    of each break, then identical patterns are grouped."""
    slots: dict[tuple[int, int], list[int]] = {}
    for (si, bi, cell), count in zip(break_vars, break_counts, strict=True):
        slots.setdefault((si, bi), []).extend([cell] * int(count))
    patterns: Counter[tuple[int, tuple[int, ...]]] = Counter()
    for si, count in enumerate(shift_counts):
        shift_type = rules.shift_types[shifts[si].type_index]
        for agent in range(int(count)):
            cells = tuple(sorted(slots.get((si, bi), []))[agent] for bi in range(len(shift_type.breaks)))
            patterns[(si, cells)] += 1

    def at(cell: int) -> datetime:
        return origin + timedelta(minutes=cell * grid)

    out = []
    for (si, cells), count in sorted(patterns.items(), key=lambda item: (shifts[item[0][0]].start, item[0])):
        sh = shifts[si]
        shift_type = rules.shift_types[sh.type_index]
        breaks = tuple(
            (brk.name, at(cell), at(cell) + timedelta(minutes=brk.minutes), brk.paid)
            for brk, cell in zip(shift_type.breaks, cells, strict=True)
        )
        out.append(
            ShiftAssignment(
                count, shift_type.name, at(sh.start), at(sh.start + sh.cells), breaks, shift_type.paid_hours
            )
        )
    return out


def parse_shift_rules(spec: dict[str, Any]) -> ShiftRules:
    """ShiftRules from JSON/YAML: ``{"start_step_minutes": 30, "max_agents": 50, "time_limit_seconds": 20,
    "shift_types": [{"name": "8h", "hours": 8.5, "max_count": 40, "breaks": [{"name": "lunch",
    "minutes": 30, "earliest": 210, "latest": 300, "paid": false}]}]}``"""
    if not isinstance(spec, dict):
        raise WfmInputError("shift rules must be an object", field="schedule")
    try:
        types = (
            tuple(
                ShiftType(
                    name=str(t.get("name") or f"{t['hours']}h"),
                    hours=float(t["hours"]),
                    max_count=None if t.get("max_count") is None else int(t["max_count"]),
                    breaks=tuple(
                        Break(
                            minutes=int(b["minutes"]),
                            earliest=int(b["earliest"]),
                            latest=int(b.get("latest", b["earliest"])),
                            paid=bool(b.get("paid", True)),
                            name=str(b.get("name", "break")),
                        )
                        for b in t.get("breaks", ())
                    ),
                )
                for t in spec["shift_types"]
            )
            if spec.get("shift_types")
            else default_shift_types()
        )
        return ShiftRules(
            shift_types=types,
            start_step_minutes=int(spec.get("start_step_minutes", 30)),
            max_agents=None if spec.get("max_agents") is None else int(spec["max_agents"]),
            time_limit_seconds=float(spec.get("time_limit_seconds", 20.0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WfmInputError(f"bad shift rules: {exc!r}", field="schedule") from None
