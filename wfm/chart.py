"""PNG chart of forecast volume (with its band) against required and scheduled agents.

Uses a bare ``Figure`` on the Agg canvas: no pyplot, no global figure state, no display needed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure


def render_png(
    starts: Sequence[datetime],
    volume: Sequence[float],
    required: Sequence[int],
    *,
    scheduled: Sequence[int] | None = None,
    low: Sequence[float] | None = None,
    high: Sequence[float] | None = None,
    title: str = "Forecast vs required agents",
) -> bytes:
    figure = Figure(figsize=(11, 5), dpi=100)
    FigureCanvasAgg(figure)
    calls_axis = figure.add_subplot(1, 1, 1)
    calls_axis.plot(starts, volume, color="#1f77b4", label="forecast calls")
    if low is not None and high is not None:
        calls_axis.fill_between(starts, low, high, color="#1f77b4", alpha=0.2, label="80% band")
    calls_axis.set_ylabel("calls per interval")
    calls_axis.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    agents_axis = calls_axis.twinx()
    agents_axis.step(starts, required, where="post", color="#d62728", label="required agents")
    if scheduled is not None:
        agents_axis.step(starts, scheduled, where="post", color="#2ca02c", linestyle="--", label="scheduled")
    agents_axis.set_ylabel("agents")
    agents_axis.set_ylim(bottom=0)
    calls_axis.set_ylim(bottom=0)
    handles = calls_axis.get_legend_handles_labels()
    more = agents_axis.get_legend_handles_labels()
    calls_axis.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize="small")
    calls_axis.set_title(title)
    calls_axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
