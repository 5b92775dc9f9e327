"""Analytics at scale: clustering + repeat detection + churn (+ emerging issues and KPIs) over a
synthetic history, by default 90 days x 15,000 calls/day (1.35 M calls). Target: <= 10 minutes.

    .venv/bin/python bench/analytics_bench.py                       # prepare (once) + analyse
    .venv/bin/python bench/analytics_bench.py --days 30 --calls-per-day 5000
    .venv/bin/python bench/analytics_bench.py --phase analyse        # reuse the prepared store

Phase ``prepare`` generates the history, embeds its distinct summaries once (the server embeds
each call's summary at ingestion, one at a time; the per-call cost is printed), and stores
facts + int8 vectors + customer profiles in a SQLite store exactly as ingestion does.
Phase ``analyse`` runs in a fresh process, so its peak RSS is the analysis's own: load the
window from SQLite, fit the clusters on a sample, assign every call, then repeats, churn,
emerging issues and KPIs, then renders the answers the API gives.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics import customers  # noqa: E402
from analytics import store as st  # noqa: E402
from analytics.config import DAY_S, AnalyticsConfig  # noqa: E402
from analytics.engine import Analytics  # noqa: E402
from analytics.issues import issue_keys, previous_gap  # noqa: E402
from analytics.offline import connect  # noqa: E402
from analytics.synthetic import embed_texts, generate  # noqa: E402


def rss_mib() -> float:
    """Peak resident memory of this process image (VmHWM: unlike ru_maxrss it is not inherited
    from the parent across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(args: argparse.Namespace) -> dict:
    from assist.embedding import create_embedder

    db = Path(args.db)
    if db.exists():
        db.unlink()
        for suffix in ("-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
    out: dict = {}
    t = time.perf_counter()
    history = generate(days=args.days, calls_per_day=args.calls_per_day, seed=args.seed, start=args.start)
    out["generate_s"] = round(time.perf_counter() - t, 1)
    out["history"] = history.meta
    index, texts = history.summary_index()
    embedder = create_embedder("onnx", cache_dir=Path("var/cache"))
    t = time.perf_counter()
    vectors = embed_texts(embedder, texts, Path("var/cache"))
    out["distinct_summaries"] = len(texts)
    out["embed_distinct_s"] = round(time.perf_counter() - t, 1)
    probe = texts[: min(256, len(texts))]
    t = time.perf_counter()
    for text in probe[:64]:
        embedder.encode([text])  # ingestion embeds one call's summary at a time
    out["embed_one_call_ms"] = round((time.perf_counter() - t) / min(64, len(probe)) * 1000, 2)
    conn = connect(db)
    engine = Analytics(AnalyticsConfig())
    t = time.perf_counter()
    stored = 0
    for facts, idx in history.facts(50_000):
        stored += engine.ingest(conn, facts, vectors[idx])
    out["store_calls_s"] = round(time.perf_counter() - t, 1)
    out["stored_calls"] = stored
    t = time.perf_counter()
    customers.upsert(conn, history.profiles())
    out["store_profiles_s"] = round(time.perf_counter() - t, 1)
    # Ground truth for the repeat-detection check (synthetic issue per call, by call order).
    np.save(str(db) + ".truth.npy", np.stack([history.issue, history.customer]).astype(np.int64))
    st.put_state(conn, "bench", {"now": history.start + args.days * DAY_S, "seed": args.seed})
    conn.close()
    out["db_mib"] = round(sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20, 1)
    out["prepare_peak_rss_mib"] = round(rss_mib(), 1)
    return out


def analyse(args: argparse.Namespace) -> dict:
    conn = connect(args.db)
    now = float(st.get_state(conn, "bench")["now"])
    config = AnalyticsConfig.model_validate({"clustering": {"method": args.method}})
    engine = Analytics(config)
    out: dict = {"method": args.method}
    t0 = time.perf_counter()
    snapshot = engine.run(conn, now, refit=True)
    out["run_s"] = round(time.perf_counter() - t0, 1)
    out["peak_rss_after_run_mib"] = round(rss_mib(), 1)
    out["run_timings"] = snapshot.timings
    out["calls"] = len(snapshot.frame)
    out["clusters"] = len(snapshot.model) if snapshot.model is not None else 0
    out["unclustered_share"] = round(float((snapshot.frame.cluster < 0).mean()), 4)
    t = time.perf_counter()
    kpis = engine.kpis(snapshot)
    clusters = engine.clusters(snapshot, limit=20)
    reps = engine.repeats(conn, snapshot, limit=50)
    churn = engine.churn(conn, snapshot, limit=50)
    out["render_s"] = round(time.perf_counter() - t, 2)
    out["total_s"] = round(time.perf_counter() - t0, 1)
    out["peak_rss_mib"] = round(rss_mib(), 1)
    t = time.perf_counter()
    again = engine.run(conn, now + 3600, refit=False)
    out["hourly_run_s"] = round(time.perf_counter() - t, 1)
    out["hourly_timings"] = again.timings
    out["figures"] = {
        "fcr": kpis["fcr"],
        "aht_s": kpis["aht_s"],
        "repeat_rate": kpis["repeat_rate"],
        "service_level": kpis["service_level"],
        "repeat_groups": reps["groups"],
        "seed_category_groups": reps["seed_category_groups"],
        "category_groups_mixing_issues": reps["category_groups_mixing_issues"],
        "churn": {k: churn[k] for k in ("customers_scored", "high", "medium", "low")},
        "top_cluster": {k: clusters["top"][0][k] for k in ("label", "share", "size")}
        if clusters["top"]
        else None,
        "emerging": [e.payload() for e in snapshot.emerging],
    }
    out["repeat_detection"] = repeat_accuracy(conn, snapshot.frame, Path(str(args.db) + ".truth.npy"), config)
    out["peak_rss_with_truth_check_mib"] = round(rss_mib(), 1)
    conn.close()
    return out


def repeat_accuracy(conn, frame: st.Frame, truth_path: Path, config: AnalyticsConfig) -> dict:
    """Precision / recall of 'a repeat of the same issue within the lookback' against the truth."""
    if not truth_path.exists():
        return {}
    truth_issue, _ = np.load(truth_path)
    # Call ids are syn{seed}-{index}: the index is the synthetic call's position.
    ids = st.call_ids_for(conn, frame.row.tolist())
    position = np.asarray([int(ids[int(r)].rsplit("-", 1)[1]) for r in frame.row])
    lookback = config.repeats.lookback_days * DAY_S
    truth = previous_gap(frame, truth_issue[position]) <= lookback

    def score(pred: np.ndarray) -> dict:
        hit = float((pred & truth).sum())
        return {
            "precision": round(hit / max(pred.sum(), 1), 3),
            "recall": round(hit / max(truth.sum(), 1), 3),
        }

    return {
        "true_repeats": int(truth.sum()),
        "seed_category": score(previous_gap(frame, issue_keys(frame, False)) <= lookback),
        "same_issue": score(
            previous_gap(frame, issue_keys(frame, True, config.repeats.lookback_days)) <= lookback
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--calls-per-day", type=int, default=15_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=float, default=1_700_000_000.0, help="Unix time of the first day.")
    parser.add_argument("--db", default="var/bench/analytics.db")
    parser.add_argument("--method", choices=("embedding", "tfidf"), default="embedding")
    parser.add_argument("--phase", choices=("all", "prepare", "analyse"), default="all")
    args = parser.parse_args()
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    if args.phase == "prepare":
        print(json.dumps({"prepare": prepare(args)}, indent=2))
        return
    if args.phase == "analyse":
        print(json.dumps({"analyse": analyse(args)}, indent=2))
        return
    result = {"prepare": prepare(args)}
    child = subprocess.run(
        [sys.executable, __file__, "--phase", "analyse", "--db", args.db, "--method", args.method],
        capture_output=True,
        text=True,
        check=True,
    )
    result.update(json.loads(child.stdout))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
