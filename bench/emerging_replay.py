"""Emerging-issue detection on a replayed history with an injected outage: how long after the
outage starts the first alert comes, and how many alerts fire on days without an outage.

    .venv/bin/python bench/emerging_replay.py                                   # the test's scenario
    .venv/bin/python bench/emerging_replay.py --calls-per-day 15000 --share 0.05 --step-hours 1

Calls are ingested in time order and the analysis runs every ``--step-hours`` of replayed time,
as the server's schedule would; the alert rule is the server's (``analytics.emerging``), minus
the once-a-day suppression (every raw detection is counted here).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.config import DAY_S, AnalyticsConfig  # noqa: E402
from analytics.engine import Analytics  # noqa: E402
from analytics.offline import connect  # noqa: E402
from analytics.synthetic import Outage, embed_texts, generate  # noqa: E402
from assist.embedding import create_embedder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--calls-per-day", type=int, default=250)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--outage-day", type=int, default=10)
    parser.add_argument("--hour", type=float, default=9.0)
    parser.add_argument("--hours", type=float, default=9.0)
    parser.add_argument(
        "--share", type=float, default=0.25, help="Outage calls as a share of calls in its hours."
    )
    parser.add_argument("--step-hours", type=float, default=3.0)
    parser.add_argument("--refit-hours", type=float, default=24.0)
    args = parser.parse_args()
    outage = Outage(day=args.outage_day, hour=args.hour, hours=args.hours, share=args.share)
    history = generate(
        days=args.days,
        calls_per_day=args.calls_per_day,
        seed=args.seed,
        start=date(2024, 3, 4),
        outages=[outage],
    )
    index, texts = history.summary_index()
    vectors = embed_texts(create_embedder("onnx", cache_dir=Path("var/cache")), texts, Path("var/cache"))
    conn = connect(":memory:")
    config = AnalyticsConfig.model_validate(
        {"clustering": {"refit_hours": args.refit_hours}, "retention": {"enabled": False}}
    )
    engine = Analytics(config)
    all_facts = [f for facts, _ in history.facts(50_000) for f in facts]
    start = history.start
    outage_start = start + outage.day * DAY_S + outage.hour * 3600
    written = 0
    detections = []
    runs = 0
    started = time.perf_counter()
    t = start + 3 * DAY_S
    while t <= start + args.days * DAY_S:
        upto = int(np.searchsorted(history.ended_at, t))
        if upto > written:
            engine.ingest(conn, all_facts[written:upto], vectors[index[written:upto]])
            written = upto
        snapshot = engine.run(conn, t)
        runs += 1
        for issue in snapshot.emerging:
            detections.append({"at_h": round((t - outage_start) / 3600, 1), **issue.payload()})
        t += args.step_hours * 3600
    during = [d for d in detections if 0 <= d["at_h"] <= 24]
    outside = [d for d in detections if not 0 <= d["at_h"] <= 24]
    print(
        json.dumps(
            {
                "calls": len(history),
                "outage_calls": history.meta["outage_calls"],
                "runs": runs,
                "seconds": round(time.perf_counter() - started, 1),
                "first_alert_hours_after_outage_start": during[0]["at_h"] if during else None,
                "first_alert": during[0] if during else None,
                "detections_outside_the_outage_day": len(outside),
                "outside": outside[:5],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
