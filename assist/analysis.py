"""The common shape of every analysis: a named ``Finding`` that is either ok or says why not."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from assist.sentiment import HeadScore
from kb_index.index import ArticleHit

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Finding(Generic[T]):
    name: str
    ok: bool
    value: T | None = None
    error: str | None = None
    elapsed_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class SemanticResult:
    """Everything derived from the one embedding of an utterance."""

    vector: np.ndarray
    intent_probs: np.ndarray | None = None
    intent_similarity: float = 0.0
    articles: list[ArticleHit] = field(default_factory=list)
    matcher_scores: dict[str, float] = field(default_factory=dict)
    sentiment: HeadScore | None = None  # embedding sentiment head (customer utterances)


async def run_isolated(name: str, work: Awaitable[T], budget_s: float) -> Finding[T]:
    """Run one analysis under its time budget; its failure becomes ``Finding(ok=False)``
    so it never cancels the analyses running beside it."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(budget_s):
            value = await work
    except TimeoutError:
        return Finding(name, False, error="timeout", elapsed_ms=(time.perf_counter() - started) * 1000)
    except Exception as exc:  # an analysis bug must not take the call down
        log.exception("analysis %s failed", name)
        return Finding(
            name, False, error=type(exc).__name__, elapsed_ms=(time.perf_counter() - started) * 1000
        )
    return Finding(name, True, value, elapsed_ms=(time.perf_counter() - started) * 1000)
