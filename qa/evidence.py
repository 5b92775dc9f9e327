"""The evidence scorer: judges every rubric criterion from the call record, without an LLM.

Evidence comes from three places, and every result cites the utterances that decided it:
- meaning: agent utterances compared with the criterion's exemplars (all-MiniLM-L6-v2
  cosine, graded linearly between ``threshold - margin`` and ``threshold``) or patterns;
- call structure: where in the call it was said (first / last agent turns, fraction of the
  call), empathy right after the customer turned negative, the customer's closing sentiment,
  the customer's name;
- the call's real-time compliance alerts and hold events, stored in the record.

Blocking (model inference): ``score_many`` runs on a worker thread; ``AsyncEvidenceScorer``
micro-batches the calls being scored at once onto one dedicated thread.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assist.batching import MicroBatcher
from assist.embedding import Embedder
from assist.thread_priority import ThreadPriority
from qa.rubric import SEMANTIC_CHECKS, Criterion, Rubric
from qa.scorecard import CriterionResult, Evidence, Scorecard, assemble, evidence_of, utterance_for

MIN_EMBED_WORDS = 3  # "okay", "mm-hmm", "right, yeah": backchannels match no exemplar; skip the model
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def segments(text: str) -> list[str]:
    """The sentences of an utterance worth embedding. A turn often does several things
    ("I'm sorry about that. Can you tell me when it started?"); each is matched on its own."""
    parts = [p for p in _SENTENCE_END.split(text.strip()) if len(p.split()) >= MIN_EMBED_WORDS]
    if len(parts) <= 1:
        return [text] if len(text.split()) >= MIN_EMBED_WORDS else []
    return parts


CACHE_SIZE = 50_000  # scripted lines ("is there anything else...") repeat across thousands of calls


class VectorCache:
    """Bounded text -> vector cache in front of the embedder (thread-safe)."""

    def __init__(self, embedder: Embedder, size: int = CACHE_SIZE, *, dedupe: bool = True) -> None:
        self.embedder = embedder
        self.size = size
        self.dedupe = dedupe  # False only to benchmark the worst case: every sentence embedded
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        unique = list(dict.fromkeys(texts))
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in unique:
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    found[text] = vector
            self.hits += len(found)
        missing = [t for t in (unique if self.dedupe else texts) if t not in found]
        if missing:
            vectors = self.embedder.encode(missing)
            with self._lock:
                self.misses += len(missing)
                for text, vector in zip(missing, vectors, strict=True):
                    found[text] = vector
                    if self.size:
                        self._vectors[text] = vector
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return found


class EvidenceScorer:
    def __init__(self, rubric: Rubric, embedder: Embedder, *, cache_size: int = CACHE_SIZE) -> None:
        self.rubric = rubric
        self.embedder = embedder
        self.cache = VectorCache(embedder, cache_size)
        self._patterns = {
            crit.id: [re.compile(p, re.IGNORECASE) for p in crit.patterns] for _, crit in rubric.criteria()
        }
        semantic = [crit for _, crit in rubric.criteria() if crit.check in SEMANTIC_CHECKS and crit.exemplars]
        self.exemplar_texts = [text for crit in semantic for text in crit.exemplars]
        self.exemplar_matrix = (
            embedder.encode(self.exemplar_texts)
            if self.exemplar_texts
            else np.zeros((0, 1), dtype=np.float32)
        )
        self.columns: dict[str, slice] = {}
        cursor = 0
        for crit in semantic:
            self.columns[crit.id] = slice(cursor, cursor + len(crit.exemplars))
            cursor += len(crit.exemplars)

    # ------------------------------------------------------------------ entry points

    def score(self, record: dict[str, Any], *, offset: float = 0.0) -> Scorecard:
        return self.score_many([record], offsets=[offset])[0]

    def score_many(
        self, records: Sequence[dict[str, Any]], *, offsets: Sequence[float] | None = None
    ) -> list[Scorecard]:
        """Blocking: one embedder call for all the calls' utterances (deduplicated, cached)."""
        texts = [seg for r in records for u in self._to_embed(r) for seg in segments(u["text"])]
        vectors = self.cache.encode(texts) if texts else {}
        offsets = offsets or [0.0] * len(records)
        return [
            assemble(record, self.rubric, self.judge(record, vectors), offset=offset)
            for record, offset in zip(records, offsets, strict=True)
        ]

    def judge(self, record: dict[str, Any], vectors: dict[str, np.ndarray]) -> list[CriterionResult]:
        """Criterion results for one call, given the vectors of its utterances."""
        call = CallJudgement(record, vectors, self)
        return [call.judge(category.id, criterion) for category, criterion in self.rubric.criteria()]

    # ------------------------------------------------------------------ internals

    def _to_embed(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        speakers = {crit.speaker for _, crit in self.rubric.criteria() if crit.check in SEMANTIC_CHECKS}
        return [u for u in record.get("utterances") or [] if u["speaker"] in speakers]

    def pattern(self, criterion: Criterion, text: str) -> bool:
        return any(p.search(text) for p in self._patterns[criterion.id])


@dataclass(slots=True)
class Match:
    """How well one utterance meets a criterion (evidence built only for the ones cited)."""

    score: float
    utterance: dict[str, Any]
    similarity: float | None = None
    note: str | None = None

    def evidence(self) -> Evidence:
        similarity = None if self.similarity is None else round(self.similarity, 4)
        return evidence_of(self.utterance, similarity=similarity, note=self.note)


class CallJudgement:
    """One call being judged: its utterances by speaker and their similarity to every exemplar."""

    def __init__(
        self, record: dict[str, Any], vectors: dict[str, np.ndarray], scorer: EvidenceScorer
    ) -> None:
        self.record = record
        self.scorer = scorer
        self.rubric = scorer.rubric
        self.utterances: list[dict[str, Any]] = list(record.get("utterances") or [])
        self.by_speaker = {
            speaker: [u for u in self.utterances if u["speaker"] == speaker]
            for speaker in ("agent", "customer")
        }
        # One matrix product per call: every embedded sentence against every exemplar.
        self.sentences: dict[int, list[tuple[int, str]]] = {}
        rows: list[np.ndarray] = []
        for u in self.utterances:
            for sentence in segments(u["text"]):
                vector = vectors.get(sentence)
                if vector is not None:
                    self.sentences.setdefault(u["index"], []).append((len(rows), sentence))
                    rows.append(vector)
        self.sims = np.stack(rows) @ scorer.exemplar_matrix.T if rows and scorer.exemplar_texts else None

    def similarity(
        self, criterion: Criterion, utterance: dict[str, Any]
    ) -> tuple[float, str | None, str | None]:
        """Best cosine of the utterance's sentences to the criterion's exemplars:
        (similarity, the exemplar, the sentence)."""
        columns = self.scorer.columns.get(criterion.id)
        owned = self.sentences.get(utterance["index"])
        if self.sims is None or columns is None or not owned:
            return -1.0, None, None
        block = self.sims[[row for row, _ in owned], columns]
        row, col = np.unravel_index(int(np.argmax(block)), block.shape)
        return float(block[row, col]), self.scorer.exemplar_texts[columns][col], owned[row][1]

    def judge(self, category: str, criterion: Criterion) -> CriterionResult:
        check = getattr(self, f"_{criterion.check}")
        result: CriterionResult = check(criterion)
        result.category = category
        if result.score is not None:
            result.score = round(result.score, 4)
            result.passed = result.score >= self.rubric.pass_mark
        return result

    def _result(self, criterion: Criterion, **fields: Any) -> CriterionResult:
        return CriterionResult(id=criterion.id, category="", description=criterion.description, **fields)

    def _match(self, criterion: Criterion, utterance: dict[str, Any]) -> Match:
        """Graded match of one utterance: 1 on a pattern, else linear in cosine similarity."""
        if self.scorer.pattern(criterion, utterance["text"]):
            return Match(1.0, utterance, note="pattern")
        similarity, exemplar, sentence = self.similarity(criterion, utterance)
        threshold, margin = self.rubric.threshold(criterion), self.rubric.margin(criterion)
        if margin > 0:
            score = (similarity - (threshold - margin)) / margin
        else:
            score = 1.0 if similarity >= threshold else 0.0
        note = None
        if exemplar:
            note = f"like: {exemplar}" if sentence == utterance["text"] else f"{sentence!r} like: {exemplar}"
        return Match(min(1.0, max(0.0, score)), utterance, similarity, note)

    def _window(self, criterion: Criterion) -> list[dict[str, Any]]:
        turns = self.by_speaker[criterion.speaker]
        window = criterion.window
        if window.first_turns:
            turns = turns[: window.first_turns]
        if window.last_turns:
            turns = turns[-window.last_turns :]
        if window.start > 0 or window.end < 1:
            last = max(len(self.utterances) - 1, 1)
            turns = [u for u in turns if window.start <= u["index"] / last <= window.end]
        return turns

    # ------------------------------------------------------------------ checks

    def _utterance(self, criterion: Criterion) -> CriterionResult:
        candidates = self._window(criterion)
        if not candidates:
            return self._result(
                criterion, score=0.0, detail=f"no {criterion.speaker} utterance in the window"
            )
        matches = sorted((self._match(criterion, u) for u in candidates), key=lambda m: -m.score)
        top = matches[: criterion.count]
        score = sum(m.score for m in top) / criterion.count
        found = [m.evidence() for m in top if m.score > 0]
        if found:
            detail = f"{len(found)} of {criterion.count} needed" if criterion.count > 1 else ""
            return self._result(criterion, score=score, evidence=found, detail=detail)
        closest = max(matches, key=lambda m: m.similarity or -1.0)
        closest.note = (
            f"closest, below threshold ({closest.note})" if closest.note else "closest, below threshold"
        )
        return self._result(
            criterion,
            score=0.0,
            evidence=[closest.evidence()],
            detail=f"not found in {len(candidates)} utterances",
        )

    def _absence(self, criterion: Criterion) -> CriterionResult:
        candidates = self._window(criterion)
        if not candidates:
            return self._result(criterion, score=1.0, detail="nothing said")
        matches = sorted((self._match(criterion, u) for u in candidates), key=lambda m: -m.score)
        worst = matches[0]
        if worst.score <= 0:
            closest = max(matches, key=lambda m: m.similarity or -1.0)
            closest.note = "closest, below threshold"
            return self._result(
                criterion, score=1.0, evidence=[closest.evidence()], detail=f"none in {len(candidates)}"
            )
        offending = [m.evidence() for m in matches if m.score >= self.rubric.pass_mark] or [worst.evidence()]
        return self._result(
            criterion, score=1.0 - worst.score, evidence=offending, detail=f"{len(offending)} utterance(s)"
        )

    def _empathy_after_negative(self, criterion: Criterion) -> CriterionResult:
        threshold = self.rubric.negative_sentiment
        moments = [
            u
            for u in self.by_speaker["customer"]
            if u.get("sentiment") is not None and u["sentiment"] <= threshold
        ]
        if not moments:
            return self._result(criterion, applicable=False, detail="the customer never turned negative")
        agent = self.by_speaker["agent"]
        scores, evidence, missed = [], [], 0
        for moment in moments:
            replies = [u for u in agent if u["index"] > moment["index"]][: criterion.reply_turns]
            best = max((self._match(criterion, u) for u in replies), key=lambda m: m.score, default=None)
            score = best.score if best else 0.0
            scores.append(score)
            evidence.append(evidence_of(moment, note=f"customer sentiment {moment['sentiment']:+.2f}"))
            if best is not None:
                if score <= 0:
                    best.note = f"the agent's reply did not acknowledge it ({best.note or 'no match'})"
                evidence.append(best.evidence())
            if score <= 0:
                missed += 1
        detail = f"{len(moments) - missed} of {len(moments)} negative moments acknowledged"
        return self._result(criterion, score=sum(scores) / len(scores), evidence=evidence, detail=detail)

    def _customer_name(self, criterion: Criterion) -> CriterionResult:
        name = str((self.record.get("customer") or {}).get("name") or "").strip()
        if not name:
            return self._result(criterion, applicable=False, detail="no customer name on the caller profile")
        first = re.escape(name.split()[0])
        pattern = re.compile(rf"\b({first}|{re.escape(name)})\b", re.IGNORECASE)
        said = [u for u in self.by_speaker["agent"] if pattern.search(u["text"])]
        if said:
            return self._result(criterion, score=1.0, evidence=[evidence_of(u) for u in said[:3]])
        return self._result(criterion, score=0.0, detail=f"never said {name.split()[0]!r}")

    def _sentiment_outcome(self, criterion: Criterion) -> CriterionResult:
        scored = [u for u in self.by_speaker["customer"] if u.get("sentiment") is not None]
        if not scored:
            return self._result(criterion, applicable=False, detail="no customer sentiment")
        last = scored[-criterion.last_turns :]
        mean = sum(u["sentiment"] for u in last) / len(last)
        score = (mean - criterion.low) / (criterion.high - criterion.low)
        return self._result(
            criterion,
            score=float(np.clip(score, 0.0, 1.0)),
            evidence=[evidence_of(u, note=f"customer sentiment {u['sentiment']:+.2f}") for u in last],
            detail=f"closing customer sentiment {mean:+.2f}",
        )

    def _alerts(self, criterion: Criterion) -> CriterionResult:
        alerts = [
            a
            for a in self.record.get("compliance_alerts") or []
            if a.get("kind") in criterion.kinds or a.get("rule_id") in criterion.rule_ids
        ]
        disclosures = self.record.get("disclosures") or {}
        if not alerts:
            evidence = []
            for rule_id in criterion.rule_ids:
                if rule_id in disclosures:
                    said = utterance_for(self.record, None, disclosures[rule_id])
                    if said:
                        evidence.append(evidence_of(said, note=f"{rule_id} satisfied"))
            if (
                criterion.rule_ids
                and not criterion.kinds
                and not evidence
                and not any(r in disclosures for r in criterion.rule_ids)
            ):
                return self._result(criterion, applicable=False, detail="rule not configured for this call")
            return self._result(criterion, score=1.0, evidence=evidence, detail="no alert")
        score, evidence, notes = 1.0, [], []
        for alert in alerts:
            late = alert.get("kind") == "missing_disclosure" and alert.get("resolved")
            score = min(score, 0.5 if late else 0.0)
            notes.append(f"{alert['rule_id']}{' (given late)' if late else ''}")
            utterance = utterance_for(self.record, alert.get("utterance_id"), alert.get("timestamp"))
            if utterance and (alert.get("utterance_id") or alert.get("kind") != "missing_disclosure"):
                evidence.append(evidence_of(utterance, note=alert.get("message")))
            elif alert["rule_id"] in disclosures:
                said = utterance_for(self.record, None, disclosures[alert["rule_id"]])
                if said:
                    evidence.append(evidence_of(said, note=f"{alert['rule_id']} given late"))
        return self._result(criterion, score=score, evidence=evidence, detail="alerts: " + ", ".join(notes))

    def _holds(self, criterion: Criterion) -> CriterionResult:
        holds = self.record.get("holds") or []
        if not holds:
            return self._result(criterion, applicable=False, detail="no hold")
        evidence = []
        for hold in holds:
            utterance = utterance_for(self.record, hold.get("utterance_id"), hold.get("timestamp"))
            if utterance:
                note = (
                    "hold after asking permission"
                    if hold.get("permission_asked")
                    else "hold without permission"
                )
                evidence.append(evidence_of(utterance, note=note))
        asked = sum(1 for h in holds if h.get("permission_asked"))
        return self._result(
            criterion,
            score=asked / len(holds),
            evidence=evidence,
            detail=f"{asked} of {len(holds)} holds asked",
        )


class AsyncEvidenceScorer:
    """Off the event loop: calls scored at the same time share one embedder batch."""

    def __init__(
        self, scorer: EvidenceScorer, *, max_batch: int = 16, thread_priority: ThreadPriority = "normal"
    ) -> None:
        self.scorer = scorer
        self.rubric = scorer.rubric
        self._batcher: MicroBatcher[dict[str, Any], Scorecard] = MicroBatcher(
            self.scorer.score_many,
            max_batch=max_batch,
            max_pending=256,
            name="qa-score",
            thread_priority=thread_priority,
        )

    def start(self) -> None:
        self._batcher.start()

    async def close(self) -> None:
        await self._batcher.close()

    async def score(self, record: dict[str, Any]) -> Scorecard:
        return await self._batcher.submit(record)
