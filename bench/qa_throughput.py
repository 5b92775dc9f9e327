"""Throughput of the evidence scorer: a 500-seat centre's day is ~15,000 calls of ~40
utterances; target: all scored in <= 15 minutes on one machine.

    .venv/bin/python bench/qa_throughput.py --calls 15000

Records are built first (assist session, regex compliance, VADER; timed separately, not part
of scoring), then scored in micro-batches exactly as the worker does (one embedder call per
batch, deduplicated, cached). Prints figures; the machine may be shared: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assist.config import AssistConfig  # noqa: E402
from assist.embedding import SentenceTransformerEmbedder  # noqa: E402
from bench.qa_corpus import build_call, random_knobs  # noqa: E402
from qa.evidence import EvidenceScorer, VectorCache, segments  # noqa: E402
from qa.records import OfflineRecorder  # noqa: E402
from qa.rubric import Rubric  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=15_000)
    parser.add_argument("--turns", type=int, default=40, help="utterances per call")
    parser.add_argument("--batch", type=int, default=64, help="calls per scoring batch")
    parser.add_argument(
        "--worst-case",
        action="store_true",
        help="no cache, no deduplication: embed every agent sentence of every call (real centres repeat"
        " scripted lines; this synthetic corpus repeats far more, so the default run flatters)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    recorder = OfflineRecorder(AssistConfig.load())
    started = time.perf_counter()
    records = []
    for i in range(args.calls):
        utterances, customer, intent = build_call(
            rng, random_knobs(rng, rng.uniform(0.2, 1.0)), variant=i % 2, turns=args.turns
        )
        records.append(
            recorder.record(
                f"bench-{i}",
                f"agent-{i % 500}",
                utterances,
                customer=customer,
                primary_intent=intent,
                team=f"team-{i % 20}",
            )
        )
    built = time.perf_counter() - started
    utterances = sum(len(r["utterances"]) for r in records)
    agent_sentences = [
        s for r in records for u in r["utterances"] if u["speaker"] == "agent" for s in segments(u["text"])
    ]

    embedder = SentenceTransformerEmbedder(threads=args.threads)
    scorer = EvidenceScorer(Rubric.load(), embedder, cache_size=0 if args.worst_case else 50_000)
    if args.worst_case:
        scorer.cache = VectorCache(embedder, 0, dedupe=False)
    started = time.perf_counter()
    scores = []
    for start in range(0, len(records), args.batch):
        for card in scorer.score_many(records[start : start + args.batch]):
            scores.append(card.overall_score)
    scoring = time.perf_counter() - started
    projected = scoring / args.calls * 15_000
    result = {
        "calls": args.calls,
        "mode": "worst case (every sentence embedded)" if args.worst_case else "cache + dedupe",
        "utterances": utterances,
        "utterances_per_call": round(utterances / args.calls, 1),
        "agent_sentences_to_embed": len(agent_sentences),
        "unique_agent_sentences": len(set(agent_sentences)),
        "embedder_calls_made": scorer.cache.misses,
        "cache_hits": scorer.cache.hits,
        "records_built_s": round(built, 1),
        "scoring_s": round(scoring, 1),
        "calls_per_s": round(args.calls / scoring, 1),
        "projected_15000_calls_min": round(projected / 60, 1),
        "target_met": projected <= 15 * 60,
        "mean_score": round(sum(scores) / len(scores), 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
