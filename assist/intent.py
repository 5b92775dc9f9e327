"""Few-shot intent classification on sentence embeddings.

A multinomial logistic regression is fitted on the embeddings of each intent's example
utterances (scikit-learn), then applied with plain numpy so a prediction costs one small
matrix product inside the embedding worker. On BANKING77 it reaches 84.5% accuracy at 10
examples per intent and 93% with the full training set (docs/intents.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class IntentPrediction:
    label: str
    confidence: float
    scores: dict[str, float]


class IntentModel:
    def __init__(
        self, labels: Sequence[str], weights: np.ndarray, bias: np.ndarray, examples: np.ndarray
    ) -> None:
        self.labels = list(labels)
        self._weights = weights.astype(np.float32)
        self._bias = bias.astype(np.float32)
        self._examples = examples.astype(np.float32)  # normalised example vectors for similarity

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: Sequence[str], *, regularization: float = 10.0) -> IntentModel:
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise ValueError("intent classification needs at least two intents")
        model = LogisticRegression(C=regularization, max_iter=5000)
        model.fit(vectors, np.asarray(labels))
        return cls(list(model.classes_), model.coef_.T, model.intercept_, vectors)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors.astype(np.float32) @ self._weights + self._bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def example_similarity(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine similarity of each vector to its nearest training example."""
        return (vectors.astype(np.float32) @ self._examples.T).max(axis=1)

    def predict(self, vectors: np.ndarray) -> list[str]:
        return [self.labels[i] for i in self.probabilities(vectors).argmax(axis=1)]


def combine_context(
    history: Sequence[tuple[np.ndarray, float]],
    labels: Sequence[str],
    *,
    decay: float,
    threshold: float,
    min_similarity: float,
) -> IntentPrediction:
    """Intent of the rolling customer context.

    ``history`` holds (probabilities, example similarity) of the last few customer
    utterances, oldest first. Newer utterances weigh more (``decay`` per step back) and
    each is also weighted by how informative it is (near some intent's examples and
    decisive), so "yeah, okay" does not wash out the "I want to cancel" said before it.
    Defaults chosen on the demo calls (docs/intents.md).
    """
    if not history:
        return IntentPrediction(UNKNOWN, 0.0, {})
    total = np.zeros(len(labels), dtype=np.float64)
    weight_sum = 0.0
    uniform = 1.0 / len(labels)
    for age, (probs, similarity) in enumerate(reversed(history)):
        # Informative utterances dominate: near some intent's examples (similarity, squared)
        # and decisive (probability margin above uniform). "Yes, that's right" barely counts.
        weight = decay**age * max(similarity, 0.05) ** 2 * max(float(probs.max()) - uniform, 0.01)
        total += weight * probs
        weight_sum += weight
    total /= weight_sum
    best = int(total.argmax())
    confidence = float(total[best])
    scores = {label: round(float(p), 4) for label, p in zip(labels, total, strict=True)}
    best_similarity = max(similarity for _, similarity in history)
    if confidence < threshold or best_similarity < min_similarity:
        return IntentPrediction(UNKNOWN, confidence, scores)
    return IntentPrediction(labels[best], confidence, scores)
