"""Does the call-center tuning of VADER help? Accuracy and macro-F1 on a labelled set of
contact-center customer utterances (bench/data/sentiment_callcenter.csv), per split.

The tuning lexicon was adjusted looking only at the `dev` split; `test` is the honest figure.
The embedding head is trained on assist/data/sentiment_train.csv (written separately from this
set), so both splits are held out for it.

    .venv/bin/python bench/sentiment_eval.py [--show-errors dev]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score, recall_score

from assist.config import AssistConfig
from assist.embedding import SentenceTransformerEmbedder
from assist.engine import fit_sentiment_head
from assist.sentiment import SentimentAnalyzer

DATA = Path(__file__).resolve().parent / "data" / "sentiment_callcenter.csv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--show-errors", choices=["dev", "test"], help="print the tuned analyser's misses")
    args = parser.parse_args()
    rows = list(csv.DictReader(DATA.open(encoding="utf-8")))
    tuned = SentimentAnalyzer()
    embedder = SentenceTransformerEmbedder()
    head = fit_sentiment_head(AssistConfig.load(), embedder, tuned)
    assert head is not None
    vectors = embedder.encode([r["text"] for r in rows])
    by_text = dict(
        zip(
            (r["text"] for r in rows),
            head.score(vectors, [tuned.score(r["text"]).compound for r in rows]),
            strict=True,
        )
    )
    analysers = {
        "vader": lambda text: SentimentAnalyzer(tuned=False).score(text).label,
        "vader+callcenter": lambda text: tuned.score(text).label,
        "embedding head": lambda text: by_text[text].label,
    }
    print(f"{'split':6s} {'analyser':18s} {'n':>4s} {'accuracy':>9s} {'macro_f1':>9s} {'neg_recall':>10s}")
    for split in ("dev", "test"):
        subset = [r for r in rows if r["split"] == split]
        gold = [r["label"] for r in subset]
        for name, analyse in analysers.items():
            predicted = [analyse(r["text"]) for r in subset]
            print(
                f"{split:6s} {name:18s} {len(subset):4d} {accuracy_score(gold, predicted):9.3f} "
                f"{f1_score(gold, predicted, average='macro'):9.3f} "
                f"{recall_score(gold, predicted, labels=['negative'], average='macro'):10.3f}"
            )
    if args.show_errors:
        for row in rows:
            if row["split"] == args.show_errors and by_text[row["text"]].label != row["label"]:
                print(f"{row['label']:8s} {by_text[row['text']].valence:+.2f} {row['text']}")


if __name__ == "__main__":
    main()
