"""Clustering quality on BANKING77 (77 intents as ground-truth clusters): the default embedding
clustering against the seed's TF-IDF + DBSCAN. Parameters are chosen on a 3,000-text split of
the training set; the figures are on the 3,080-text test set.

    .venv/bin/python bench/clustering_eval.py [--data /work/shared/data/banking77] [--grid]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.evaluate import evaluate_banking77  # noqa: E402
from assist.embedding import create_embedder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/banking77"))
    parser.add_argument("--embedder", default="onnx")
    parser.add_argument(
        "--grid", action="store_true", help="Also print every parameter tried on the dev split."
    )
    args = parser.parse_args()
    result = evaluate_banking77(args.data, create_embedder(args.embedder, cache_dir=Path("var/cache")))
    print(
        f"BANKING77 test: {result['texts']} texts, {result['intents']} intents; embedder {result['embedder']}"
    )
    print("| method | ARI | NMI | clusters | clustered | seconds |")
    print("|---|---|---|---|---|---|")
    for m in result["methods"]:
        print(
            f"| {m['method']} | {m['ari']:.3f} | {m['nmi']:.3f} | {m['clusters']} | {m['clustered']:.0%} | {m['seconds']} |"
        )
    if args.grid:
        print("\ndev split (3,000 train texts):")
        print(json.dumps(result["dev_grid"], indent=1))


if __name__ == "__main__":
    main()
