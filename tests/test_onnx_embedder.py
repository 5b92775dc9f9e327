"""The ONNX embedder batches by length: the vectors must not depend on what a text was batched with."""

from __future__ import annotations

from typing import Any

import numpy as np

from assist.onnx_embedder import plan_batches


def padded_cost(lengths: list[int], runs: list[range], overhead: int) -> int:
    return sum(overhead + len(run) * lengths[run.stop - 1] for run in runs)


def test_plan_covers_every_text_once_in_order_within_the_batch_limit() -> None:
    lengths = sorted([7, 9, 9, 12, 14, 20, 22, 40, 41, 70, 78, 80] * 3)
    runs = plan_batches(lengths, 16, 10)
    assert [i for run in runs for i in run] == list(range(len(lengths)))
    assert all(1 <= len(run) <= 16 for run in runs)


def test_plan_keeps_short_texts_away_from_long_ones() -> None:
    lengths = [10, 11, 12, 70]
    runs = plan_batches(lengths, 16, 10)
    assert runs == [range(0, 3), range(3, 4)]  # 3 x 12 + 70 + 2 runs, not 4 x 70 + 1 run
    assert padded_cost(lengths, runs, 10) < padded_cost(lengths, [range(0, 4)], 10)


def test_plan_batches_equal_lengths_together_and_is_optimal() -> None:
    assert plan_batches([20] * 5, 16, 10) == [range(0, 5)]
    assert sorted(map(len, plan_batches([20] * 5, 2, 10))) == [1, 2, 2]
    assert plan_batches([], 16, 10) == []
    # Brute force over every split of a small sorted list: the plan is never worse.
    lengths = [5, 8, 9, 15, 30, 31, 33, 60]
    best = min(
        padded_cost(lengths, runs, 10)
        for mask in range(2 ** (len(lengths) - 1))
        for runs in [_split(len(lengths), mask)]
    )
    assert padded_cost(lengths, plan_batches(lengths, 16, 10), 10) == best


def _split(n: int, mask: int) -> list[range]:
    cuts = [0] + [i + 1 for i in range(n - 1) if mask >> i & 1] + [n]
    return [range(a, b) for a, b in zip(cuts, cuts[1:], strict=False)]


def test_a_text_gets_the_same_vector_alone_and_in_any_batch(embedder: Any) -> None:
    texts = [
        "hi",
        "I was charged twice for the same order and I want one of them refunded please",
        "card blocked",
        "my new card has not arrived yet, it has been two weeks and I am travelling on Friday, "
        "can you send it express or give me a virtual card number to use online meanwhile",
        "what is my balance",
    ]
    together = embedder.encode(texts)
    alone = np.vstack([embedder.encode([t]) for t in texts])
    assert together.shape == (len(texts), embedder.dim) and together.dtype == np.float32
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, embedder.dim)


def test_onnx_vectors_match_the_sentence_transformers_model(embedder: Any) -> None:
    """The export computes what sentence-transformers computes (same pooling and normalising)."""
    from assist.embedding import create_embedder

    texts = ["I lost my card", "can I get a refund for the duplicate charge on my statement", "ok"]
    reference = create_embedder("torch").encode(texts)
    cosine = np.sum(embedder.encode(texts) * reference, axis=1)
    assert cosine.min() > 0.9999, cosine
