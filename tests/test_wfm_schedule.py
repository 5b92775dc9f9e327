"""The shift scheduler: least paid hours, breaks in their windows, shortfall reported not fatal."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from wfm.errors import WfmInputError
from wfm.schedule import Break, ShiftRules, ShiftType, build_schedule

DAY = datetime(2024, 1, 8, 8, 0)


def starts(count: int, minutes: int = 30) -> list[datetime]:
    return [DAY + timedelta(minutes=minutes * i) for i in range(count)]


def test_flat_requirement_without_breaks() -> None:
    """3 agents for 8 hours with 4-hour shifts: 6 shifts, 24 paid hours, exact coverage."""
    rules = ShiftRules(shift_types=(ShiftType("4h", 4.0),), start_step_minutes=60)
    result = build_schedule(starts(16), [3] * 16, rules)
    assert result.feasible and result.status == "optimal"
    assert result.paid_hours == 24 and result.agents == 6
    assert all(row.over == 0 and row.under == 0 for row in result.coverage)


def test_breaks_are_placed_in_their_windows_and_lunch_is_unpaid() -> None:
    """Each shift's break and lunch fall inside their windows; coverage counts them as absent."""
    shift = ShiftType(
        "6h", 6.0, (Break(15, 60, 120, name="break"), Break(30, 150, 210, paid=False, name="lunch"))
    )
    rules = ShiftRules(shift_types=(shift,), start_step_minutes=30, time_limit_seconds=30)
    required = [2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2]
    result = build_schedule(starts(len(required)), required, rules)
    assert result.feasible
    for assignment in result.shifts:
        brk, lunch = assignment.breaks
        assert timedelta(minutes=60) <= brk[1] - assignment.start <= timedelta(minutes=120)
        assert timedelta(minutes=150) <= lunch[1] - assignment.start <= timedelta(minutes=210)
        assert assignment.paid_hours == 5.5
    assert result.paid_hours == pytest.approx(5.5 * result.agents)
    # Recount coverage by hand from the returned shifts (a break of 15 min is half a 30-min interval).
    for row in result.coverage:
        end = row.interval_start + timedelta(minutes=30)
        staffed = 0.0
        for a in result.shifts:
            on = max(timedelta(0), min(end, a.end) - max(row.interval_start, a.start))
            off = sum(
                (max(timedelta(0), min(end, e) - max(row.interval_start, s)) for _, s, e, _ in a.breaks),
                timedelta(0),
            )
            staffed += a.count * (on - off) / timedelta(minutes=30)
        assert staffed == pytest.approx(row.staffed)
        assert staffed >= row.required


def test_not_enough_agents_reports_unmet_intervals() -> None:
    """With headcount capped below the need, the best schedule comes back with the unmet intervals."""
    rules = ShiftRules(shift_types=(ShiftType("4h", 4.0),), start_step_minutes=60, max_agents=2)
    result = build_schedule(starts(8), [3, 3, 3, 3, 1, 1, 1, 1], rules)
    assert not result.feasible and result.agents == 2
    assert result.unmet == starts(4)
    assert [row.under for row in result.coverage[:4]] == [1, 1, 1, 1]
    body = result.as_dict()
    assert body["unmet_intervals"][0] == "2024-01-08T08:00" and body["under_hours"] == 2.0


def test_requirement_no_shift_fits_is_reported() -> None:
    """An 8-hour shift cannot serve a 2-hour day: the intervals are reported unmet, not a crash."""
    rules = ShiftRules(shift_types=(ShiftType("8h", 8.0),))
    result = build_schedule(starts(4), [1, 1, 1, 1], rules)
    assert not result.feasible and len(result.unmet) == 4 and result.paid_hours == 0


@pytest.mark.parametrize(
    ("times", "required", "match"),
    [
        (starts(3), [1, -1, 1], ">= 0"),
        ([DAY, DAY + timedelta(minutes=30), DAY + timedelta(minutes=90)], [1, 1, 1], "missing"),
        (starts(3), [1, 1], "one requirement"),
    ],
)
def test_bad_requirements(times: list[datetime], required: list[float], match: str) -> None:
    """Negative requirements, gaps and mismatched lengths are clear errors."""
    with pytest.raises(WfmInputError, match=match):
        build_schedule(times, required)


def test_overlapping_break_windows_are_rejected() -> None:
    """Break windows that overlap or run past the shift are a configuration error."""
    shift = ShiftType("4h", 4.0, (Break(30, 60, 120), Break(15, 100, 150)))
    with pytest.raises(WfmInputError, match="not overlap"):
        build_schedule(starts(8), [1] * 8, ShiftRules(shift_types=(shift,)))
