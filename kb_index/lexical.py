"""Lexical (BM25) side of hybrid search, on the ``bm25s`` library.

Product codes, error codes and plan names ("PAY-05", "Fibre 900", "HOTSPOT10") are where
embeddings miss, so the tokenizer keeps such codes whole as well as in parts.
BM25 statistics (IDF, average length) are global, so an update rebuilds the sparse
matrix from the cached token lists of every chunk: no re-tokenizing, tens of
milliseconds for a few thousand chunks (figures in docs/knowledge-base.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

# bm25s sets its own logger to DEBUG, which floods the server log on every KB update.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_WORD = re.compile(r"[a-z0-9]+(?:[-_./][a-z0-9]+)*")
# Spoken fillers on top of the usual English list: transcripts are full of them.
_STOPWORDS = frozenset(STOPWORDS_EN) | {
    "um",
    "uh",
    "er",
    "erm",
    "hmm",
    "like",
    "yeah",
    "ok",
    "okay",
    "hi",
    "hello",
    "please",
    "just",
    "what",
    "how",
    "can",
    "could",
    "would",
    "does",
    "do",
    "did",
    "my",
    "me",
    "im",
    "i'm",
    "you",
    "your",
}


class Tokenizer:
    """Lower-case, English stemming, stop words removed; codes kept joined ("pay-05" -> pay05, pay, 05)."""

    def __init__(self, language: str = "english") -> None:
        self._stemmer = Stemmer.Stemmer(language)

    def __call__(self, text: str) -> list[str]:
        tokens: list[str] = []
        for word in _WORD.findall(text.lower()):
            parts = re.split(r"[-_./]", word)
            joined = "".join(parts)
            if len(parts) > 1 and any(c.isdigit() for c in joined):
                tokens.append(joined)  # the code as a customer says or types it, whole
            tokens.extend(p for p in parts if p and p not in _STOPWORDS and (len(p) > 1 or p.isdigit()))
        return [t if any(c.isdigit() for c in t) else self._stemmer.stemWord(t) for t in tokens]


class LexicalIndex:
    """Immutable BM25 index over chunk token lists; ``rows[i]`` is the vector id of row i."""

    def __init__(self, rows: Sequence[int], tokens: Sequence[list[str]]) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        self._retriever: bm25s.BM25 | None = None
        self._vocab: frozenset[str] = frozenset()
        if len(rows):
            retriever = bm25s.BM25(k1=1.2, b=0.75)
            # An empty token list still needs a row so row numbers stay aligned with ``rows``.
            retriever.index([t or ["\x00empty"] for t in tokens], show_progress=False)
            self._retriever = retriever
            self._vocab = frozenset(retriever.vocab_dict)

    def __len__(self) -> int:
        return len(self.rows)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every row for one tokenized query (zeros when nothing matches)."""
        known = [t for t in query_tokens if t in self._vocab]
        if self._retriever is None or not known:
            return np.zeros(len(self.rows), dtype=np.float32)
        return np.asarray(self._retriever.get_scores(known), dtype=np.float32)

    def top(
        self, query_tokens: list[str], depth: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(vector ids, scores) of the best ``depth`` rows with a positive score, best first."""
        scores = self.scores(query_tokens)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        positive = int(np.count_nonzero(scores > 0))
        depth = min(depth, positive)
        if depth == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        best = np.argpartition(-scores, depth - 1)[:depth]
        best = best[np.argsort(-scores[best], kind="stable")]
        return self.rows[best], scores[best]
