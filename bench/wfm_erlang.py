"""Erlang staffing speed: one 8,000-Erlang interval and a whole 48-interval day.

    .venv/bin/python bench/wfm_erlang.py [--repeat 50]

Targets (issue 7): 8,000 Erlangs (60,000 calls / 30 min, AHT 240 s, 80/20) -> 8,017 agents in
<= 15 ms; a 48-interval day in <= 50 ms. Prints median and p95 wall time per call.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from wfm.erlang import ServiceTarget, erlang_a_staffing, erlang_c_staffing


def measure(work, repeat: int) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)], result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    target = ServiceTarget(service_level=0.8, answer_seconds=20)

    median, p95, big = measure(lambda: erlang_c_staffing(60_000, 240, 1800, target), args.repeat)
    print(f"Erlang C 8,000 Erlangs -> {big.agents} agents: median {median:.3f} ms, p95 {p95:.3f} ms")  # type: ignore[attr-defined]

    # A day of 48 half-hours shaped like a real centre, peaking at 8,000 Erlangs.
    day = [60_000 * max(0.02, math.sin(math.pi * (i + 0.5) / 48)) ** 2 for i in range(48)]
    median, p95, plan = measure(
        lambda: [erlang_c_staffing(calls, 240, 1800, target, shrinkage=0.3) for calls in day], args.repeat
    )
    print(
        f"Erlang C 48-interval day (peak 8,000 Erlangs): median {median:.2f} ms, p95 {p95:.2f} ms,"
        f" peak {max(s.agents for s in plan)} agents"
    )  # type: ignore[attr-defined]

    small = [600 * max(0.02, math.sin(math.pi * (i + 0.5) / 48)) ** 2 for i in range(48)]
    median, p95, _ = measure(lambda: [erlang_c_staffing(c, 240, 1800, target) for c in small], args.repeat)
    print(f"Erlang C 48-interval day (peak 80 Erlangs): median {median:.2f} ms, p95 {p95:.2f} ms")

    abandon = ServiceTarget(service_level=0.8, answer_seconds=20, max_abandon=0.02)
    median, p95, a = measure(
        lambda: erlang_a_staffing(60_000, 240, 1800, 120, abandon), max(5, args.repeat // 5)
    )
    print(
        f"Erlang A 8,000 Erlangs, patience 120 s, SL 80/20 + abandon <= 2% -> {a.agents} agents:"  # type: ignore[attr-defined]
        f" median {median:.2f} ms, p95 {p95:.2f} ms"
    )
    median, p95, _ = measure(
        lambda: [erlang_a_staffing(calls, 240, 1800, 120, abandon) for calls in day],
        max(3, args.repeat // 10),
    )
    print(f"Erlang A 48-interval day (peak 8,000 Erlangs): median {median:.1f} ms, p95 {p95:.1f} ms")

    from datetime import datetime, timedelta

    from wfm.schedule import build_schedule

    for intervals, peak in ((28, 20), (28, 400), (48, 30)):
        starts = [datetime(2024, 1, 8, 7) + timedelta(minutes=30 * i) for i in range(intervals)]
        need = [round(peak * math.sin(math.pi * (i + 1) / (intervals + 1)) ** 1.5) for i in range(intervals)]
        begin = time.perf_counter()
        result = build_schedule(starts, need)
        print(
            f"schedule {intervals} intervals, peak {peak}, default 8.5h/6h/4h shifts with breaks:"
            f" {(time.perf_counter() - begin):.2f} s, {result.status}, gap {result.mip_gap:.4f},"
            f" {result.paid_hours:.1f} paid h for {sum(need) / 2:.1f} required agent-h"
        )


if __name__ == "__main__":
    main()
