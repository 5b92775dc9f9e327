"""Sentiment per utterance (VADER, tuned for call-center speech) and its trend over a call."""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from sklearn.linear_model import LogisticRegression
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

Trend = Literal["improving", "declining", "stable"]
Label = Literal["positive", "neutral", "negative"]

# VADER knows general English; contact-center speech complains in idioms it scores as
# neutral ("still not working", "on hold for an hour"). Multi-word phrases are mapped
# to one marker token carrying the valence so VADER's negation and intensity rules
# still apply around them. Figures: bench/sentiment_eval.py.
DEFAULT_LEXICON: dict[str, float] = {
    "overcharged": -2.2,
    "overcharging": -2.2,
    "outage": -1.2,
    "outages": -1.2,
    "scam": -2.8,
    "rip-off": -2.6,
    "ripoff": -2.6,
    "useless": -2.2,
    "joke": -1.2,
    "unreliable": -2.0,
    "cancel": -0.6,
    "disconnected": -1.2,
    "dropping": -1.0,
    "sorted": 1.2,
    "resolved": 1.6,
    "fixed": 1.4,
}

DEFAULT_PHRASES: dict[str, float] = {
    "not working": -1.8,
    "stopped working": -1.8,
    "doesn't work": -1.8,
    "does not work": -1.8,
    "isn't working": -1.8,
    "keeps dropping": -1.8,
    "keeps cutting out": -1.8,
    "fed up": -2.4,
    "sick of": -2.2,
    "sick and tired": -2.6,
    "had enough": -2.0,
    "on hold for": -1.6,
    "been waiting": -1.4,
    "waiting for hours": -2.0,
    "nobody ever": -1.8,
    "no one ever": -1.8,
    "never called back": -2.0,
    "never calls back": -2.0,
    "third time": -1.4,
    "fourth time": -1.8,
    "down again": -1.6,
    "charged twice": -1.8,
    "double charged": -1.8,
    "waste of time": -2.2,
    "speak to a manager": -1.4,
    "speak to your manager": -1.4,
    "makes no sense": -1.4,
    "no internet": -1.2,
    "no signal": -1.2,
    "thanks so much": 2.0,
    "thank you so much": 2.0,
    "that helps": 1.4,
    "that's great": 1.8,
    "really appreciate": 2.0,
    "sounds good": 1.4,
    "perfect thanks": 1.8,
}

NEUTRAL_BAND = 0.05  # VADER's own convention for the neutral label.
TRAINING_DATA = Path(__file__).resolve().parent / "data" / "sentiment_train.csv"
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")
INTENSITY_FLOOR = 0.5
TREND_WINDOW = 5
TREND_THRESHOLD = 0.15


@dataclass(frozen=True, slots=True)
class SentimentScore:
    compound: float
    label: Label


class SentimentAnalyzer:
    """Thread-safe after construction: scoring only reads the lexicon."""

    def __init__(
        self,
        lexicon: Mapping[str, float] | None = None,
        phrases: Mapping[str, float] | None = None,
        *,
        tuned: bool = True,
    ) -> None:
        self._vader = SentimentIntensityAnalyzer()
        self._phrase_tokens: list[tuple[re.Pattern[str], str]] = []
        if not tuned:
            return
        self._vader.lexicon.update({k.lower(): v for k, v in {**DEFAULT_LEXICON, **(lexicon or {})}.items()})
        for index, (phrase, valence) in enumerate({**DEFAULT_PHRASES, **(phrases or {})}.items()):
            token = f"zzphrase{index}zz"
            self._vader.lexicon[token] = valence
            pattern = re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, phrase.lower().split())) + r"(?!\w)")
            self._phrase_tokens.append((pattern, token))

    def score(self, text: str) -> SentimentScore:
        prepared = text.lower()
        for pattern, token in self._phrase_tokens:
            prepared = pattern.sub(token, prepared)
        compound = float(self._vader.polarity_scores(prepared)["compound"])
        return SentimentScore(compound=compound, label=label_for(compound))


def label_for(compound: float) -> Label:
    if compound >= NEUTRAL_BAND:
        return "positive"
    if compound <= -NEUTRAL_BAND:
        return "negative"
    return "neutral"


def sentiment_trend(
    scores: Sequence[float], window: int = TREND_WINDOW, threshold: float = TREND_THRESHOLD
) -> Trend:
    """Mean of the last ``window`` scores against the ``window`` before them."""
    recent = scores[-window:]
    previous = scores[-2 * window : -window] if len(scores) > window else []
    if not previous:
        return "stable"
    delta = sum(recent) / len(recent) - sum(previous) / len(previous)
    if delta > threshold:
        return "improving"
    if delta < -threshold:
        return "declining"
    return "stable"


@dataclass(frozen=True, slots=True)
class HeadScore:
    valence: float  # (P(positive) - P(negative)) x intensity, in [-1, 1]
    label: Label


class SentimentHead:
    """Contact-center sentiment from the utterance embedding the pipeline already computes,
    stacked with VADER's compound: a logistic regression fitted on labelled caller speech
    (assist/data/sentiment_train.csv). It reads sarcasm, understatement and complaints
    without negative words far better than the lexicon alone (bench/sentiment_eval.py)."""

    def __init__(self, weights: np.ndarray, bias: np.ndarray) -> None:
        self._weights = weights.astype(np.float32)
        self._bias = bias.astype(np.float32)

    @classmethod
    def fit(
        cls, vectors: np.ndarray, compounds: Sequence[float], labels: Sequence[str], *, c: float = 1.0
    ) -> SentimentHead:
        model = LogisticRegression(C=c, max_iter=5000)
        model.fit(_features(vectors, compounds), np.asarray(labels))
        order = [list(model.classes_).index(label) for label in LABELS]
        return cls(model.coef_[order].T, model.intercept_[order])

    def score(self, vectors: np.ndarray, compounds: Sequence[float]) -> list[HeadScore]:
        """Direction from the classifier, strength from the words: P(pos) - P(neg) measures
        how *sure* we are, not how *strongly* the caller feels, so it is scaled by VADER's
        intensity (at least INTENSITY_FLOOR). A calm "why is my bill double?" stays near
        -0.5; "I'm furious, this is a disgrace" goes to -0.9."""
        logits = _features(vectors, compounds) @ self._weights + self._bias
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return [
            HeadScore(float((p[2] - p[0]) * max(abs(c), INTENSITY_FLOOR)), LABELS[int(p.argmax())])
            for p, c in zip(probs, compounds, strict=True)
        ]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self._weights, "bias": self._bias}


def _features(vectors: np.ndarray, compounds: Sequence[float]) -> np.ndarray:
    return np.hstack([vectors.astype(np.float32), np.asarray(compounds, dtype=np.float32).reshape(-1, 1)])


def read_labelled(path: Path = TRAINING_DATA) -> tuple[list[str], list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(handle) if r["text"].strip()]
    return [t for t, _ in rows], [label for _, label in rows]
