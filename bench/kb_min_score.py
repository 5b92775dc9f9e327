"""Calibrate the knowledge-base score floor: for each min_score, the share of labelled
queries whose gold article is shown (top 3) and the share of off-topic call turns that get
any suggestion at all.

    .venv/bin/python bench/kb_min_score.py [--queries server/demo/kb_eval.csv --offtopic server/demo/kb_offtopic.csv]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from assist.config import AssistConfig
from assist.engine import build_knowledge
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=Path, default=ROOT / "server/demo/kb_eval.csv")
    parser.add_argument("--offtopic", type=Path, default=ROOT / "server/demo/kb_offtopic.csv")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.25, 0.3, 0.35, 0.4, 0.45])
    args = parser.parse_args()
    from assist.embedding import create_embedder

    settings = Settings()
    embedder = create_embedder(settings.embedder, settings.model_path, cache_dir=settings.cache_dir)
    index = build_knowledge(AssistConfig.load(settings.config), embedder, settings.kb_dir)
    labelled = list(csv.DictReader(args.queries.open(encoding="utf-8")))
    offtopic = [row["query"] for row in csv.DictReader(args.offtopic.open(encoding="utf-8"))]
    print(f"embedder {embedder.name}; {len(labelled)} labelled queries, {len(offtopic)} off-topic turns")
    print(f"{'min_score':>9s} {'gold shown (top 3)':>19s} {'off-topic with a suggestion':>28s}")
    for threshold in args.thresholds:
        hits = index.search_text([r["query"] for r in labelled], k=3, min_score=threshold)
        shown = sum(r["article_id"] in {h.id for h in row} for r, row in zip(labelled, hits, strict=True))
        noise = sum(bool(row) for row in index.search_text(offtopic, k=3, min_score=threshold))
        print(f"{threshold:9.2f} {shown / len(labelled):19.3f} {noise / len(offtopic):28.3f}")


if __name__ == "__main__":
    main()
