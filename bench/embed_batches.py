"""Embedder cost per utterance by batch size, on real call lines of mixed length.

The live path embeds whatever the micro-batcher gathered across calls: under load that is
8-16 utterances of very different lengths, and a run padded to its longest row pays for the
padding. This prints the median milliseconds per utterance for random batches of the
bundled demo calls' lines (and of BANKING77 queries with --banking77), per batch size.

    .venv/bin/python bench/embed_batches.py                      # ONNX fp32, the default
    .venv/bin/python bench/embed_batches.py --embedder onnx-int8 --repeats 100
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from assist.embedding import create_embedder  # noqa: E402
from server.demo import load_demo_calls  # noqa: E402

BANKING77 = ROOT.parent / "shared" / "data" / "banking77" / "test.csv"


def demo_lines() -> list[str]:
    return [u["text"] for call in load_demo_calls() for u in call.utterances]


def banking77_lines() -> list[str]:
    with BANKING77.open(encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--embedder", default="onnx", help="onnx, onnx-int8 or torch")
    parser.add_argument("--repeats", type=int, default=60, help="random batches per size")
    parser.add_argument("--sizes", default="1,2,3,4,8,16,32")
    parser.add_argument("--banking77", action="store_true", help=f"texts from {BANKING77}")
    args = parser.parse_args()

    texts = banking77_lines() if args.banking77 else demo_lines()
    embedder = create_embedder(args.embedder, cache_dir=ROOT / "var" / "cache")
    embedder.encode(texts[:8])  # first-run allocations
    rng = random.Random(7)
    print(
        f"embedder {embedder.name}; {len(texts)} texts, {statistics.fmean(map(len, texts)):.0f} chars on average"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        per_utterance = []
        for _ in range(args.repeats):
            batch = rng.sample(texts, size)
            started = time.perf_counter()
            embedder.encode(batch)
            per_utterance.append((time.perf_counter() - started) * 1000 / size)
        print(
            f"batch {size:3d}: {statistics.median(per_utterance):6.2f} ms per utterance (median of {args.repeats})"
        )


if __name__ == "__main__":
    main()
