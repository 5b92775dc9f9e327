"""From a stored call record (``CallSession.record()``) to the few facts analytics keeps.

There is no LLM summary: the summary is extractive. It takes the customer's own sentences
that say the most about the call's issue (those tagged with the call's primary intent, with the
most content words, earlier first) and drops greetings, fillers and redaction tokens. The same
text feeds clustering (embedded, or TF-IDF) and is what a supervisor reads as a sample.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

UNKNOWN = "unknown"
MAX_SUMMARY_CHARS = 240
SUMMARY_UTTERANCES = 2
_WORD = re.compile(r"[a-z0-9']+")
_REDACTED = re.compile(r"\[[A-Z_]+(?: [^\]]*)?\]")
_SPACES = re.compile(r"\s+")
_VERIFICATION = re.compile(
    r"\b(?:your (?:full )?name|postcode|zip code|date of birth|security (?:question|answer)|verify|"
    r"confirm your|account number|last (?:four|4) digits|first line of (?:your|the) address|passcode|pin)\b",
    re.IGNORECASE,
)
FILLERS = frozenset(
    [
        "um",
        "uh",
        "erm",
        "er",
        "eh",
        "ah",
        "yeah",
        "yes",
        "yep",
        "no",
        "nope",
        "hi",
        "hello",
        "hiya",
        "ok",
        "okay",
        "right",
        "so",
        "like",
        "just",
        "well",
        "thanks",
        "thank",
        "cheers",
        "please",
        "sorry",
        "oh",
        "basically",
        "literally",
        "actually",
        "honestly",
        "mean",
        "know",
    ]
)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """One call as analytics sees it (a row of ``analytics_calls`` plus its text)."""

    call_id: str
    customer_id: str | None
    agent_id: str
    team: str | None
    started_at: float
    ended_at: float
    duration: float
    category: str | None
    sentiment: float | None
    sentiment_mean: float | None
    cancellation: bool
    resolution: str | None
    summary: str
    clv: float | None = None
    wait_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def content_words(text: str) -> list[str]:
    return [
        w
        for w in _WORD.findall(text.lower())
        if len(w) > 1 and w not in ENGLISH_STOP_WORDS and w not in FILLERS
    ]


def clean(text: str) -> str:
    return _SPACES.sub(" ", _REDACTED.sub(" ", text)).strip(" ,.;:-")


def summarize(
    utterances: Sequence[Mapping[str, Any]],
    primary_intent: str | None,
    *,
    max_utterances: int = SUMMARY_UTTERANCES,
    max_chars: int = MAX_SUMMARY_CHARS,
) -> str:
    """The customer's most informative sentences about the call's issue, in call order.

    Answers to an identity check (the agent just asked for a name, postcode, date of birth...)
    are skipped: they are long, on-topic by the sticky intent, and say nothing about the issue."""
    customer: list[tuple[int, str, Any]] = []
    after_verification = False
    for u in utterances:
        text = str(u.get("text") or "")
        if u.get("speaker") == "customer":
            if not after_verification:
                customer.append((len(customer), clean(text), u.get("intent")))
            after_verification = False
        else:
            after_verification = bool(_VERIFICATION.search(text))
    scored: list[tuple[float, int, str]] = []
    for position, text, intent in customer:
        words = content_words(text)
        if len(words) < 2:
            continue
        on_topic = primary_intent not in (None, UNKNOWN) and intent == primary_intent
        # The issue is usually stated first; later sentences add how it went (repeat, threat).
        score = min(len(words), 12) + (4.0 if on_topic else 0.0) - position
        scored.append((score, position, text))
    if not scored:
        fallback = next((text for _, text, _ in customer if text), "")
        return fallback[:max_chars]
    chosen = sorted(sorted(scored, key=lambda s: -s[0])[:max_utterances], key=lambda s: s[1])
    summary = " … ".join(text for _, _, text in chosen)
    return summary if len(summary) <= max_chars else summary[: max_chars - 1].rstrip() + "…"


def _resolution(assists: Iterable[Mapping[str, Any]]) -> str | None:
    """The knowledge article most often on top of the agent's widget: what was tried."""
    tops: Counter[str] = Counter()
    for assist in assists:
        articles = assist.get("knowledge_articles") or []
        if articles and isinstance(articles[0], Mapping):
            title = articles[0].get("title") or articles[0].get("id")
            if title:
                tops[str(title)] += 1
    return tops.most_common(1)[0][0] if tops else None


def _cancellation(
    record: Mapping[str, Any], intents: Sequence[str], patterns: Sequence[re.Pattern[str]]
) -> bool:
    if record.get("primary_intent") in intents:
        return True
    for u in record.get("utterances") or []:
        if u.get("speaker") != "customer":
            continue
        if u.get("intent") in intents:
            return True
        text = str(u.get("text") or "").lower()
        if any(p.search(text) for p in patterns):
            return True
    return False


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def facts_from_record(
    record: Mapping[str, Any],
    *,
    cancellation_intents: Sequence[str] = ("cancellation",),
    cancellation_patterns: Sequence[str] = (),
) -> CallFacts:
    """Facts of one stored call record. Raises ``KeyError`` if the record lacks its ids/times."""
    customer = record.get("customer") or {}
    series = [
        float(p["compound"])
        for p in record.get("sentiment_series") or []
        if isinstance(p, Mapping) and p.get("compound") is not None
    ]
    primary = record.get("primary_intent")
    patterns = [re.compile(p) for p in cancellation_patterns]
    wait = record.get("wait_s", customer.get("wait_s") if isinstance(customer, Mapping) else None)
    return CallFacts(
        call_id=str(record["call_id"]),
        customer_id=str(customer["id"]) if isinstance(customer, Mapping) and customer.get("id") else None,
        agent_id=str(record["agent_id"]),
        team=record.get("team"),
        started_at=float(record["started_at"]),
        ended_at=float(record["ended_at"]),
        duration=float(record.get("duration") or 0.0),
        category=str(primary) if primary else None,
        sentiment=_float(record.get("final_sentiment")),
        sentiment_mean=sum(series) / len(series) if series else None,
        cancellation=_cancellation(record, cancellation_intents, patterns),
        resolution=_resolution(record.get("assists") or []),
        summary=summarize(record.get("utterances") or [], primary),
        clv=_float(customer.get("clv")) if isinstance(customer, Mapping) else None,
        wait_s=_float(wait),
    )
