"""Suggestion feedback and adoption figures, plugged into the server as an extension.

The agent marks the suggested action or a knowledge article of one ``assist`` as used and/or
rates it helpful / not helpful: a ``feedback`` frame on the agent socket (what the widget
sends) or ``POST /v1/assist/feedback`` (integrations). Feedback *sets state* — ``used: true``,
``rating: "helpful"`` or ``null`` — keyed by (call id, utterance id, target), so sending it
twice changes nothing and a retried frame after a reconnect is harmless.

"Shown" comes from the stored call records: each ``call.ended`` entry on the ``calls`` stream
carries the record, whose ``assists`` list what each utterance showed; an at-least-once
stream worker turns them into impression rows (idempotent by the same key). Adoption counts
what the agent *saw*: a suggestion is one text shown for an intent in a call (it may stay on
screen over several utterances), an article is one article shown in a call. Feedback given on
any utterance that carried it counts for that unit; the latest ``used``/``rating`` wins.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from assist.protocol import ProtocolError
from server import keys
from server.bus import StreamEntry
from server.guard import principal_of
from server.json_body import error, json_object
from server.worker import StreamWorker

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024
ID_PATTERN = r"^[A-Za-z0-9._:@\-]+$"
_ID = re.compile(ID_PATTERN)
HTTP_STATUS = {
    "invalid_json": 400,
    "not_an_object": 400,
    "missing_field": 422,
    "invalid_field": 422,
    "not_your_call": 403,
    "unknown_call": 404,
    "unknown_utterance": 404,
    "unknown_article": 404,
    "feedback_unavailable": 503,
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS assist_feedback (
    call_id TEXT NOT NULL,
    utterance_id TEXT NOT NULL,
    target TEXT NOT NULL CHECK (target IN ('suggestion', 'article')),
    article_id TEXT NOT NULL DEFAULT '',
    agent_id TEXT NOT NULL,
    used INTEGER,
    used_at REAL,
    rating TEXT CHECK (rating IN ('helpful', 'not_helpful')),
    rated_at REAL,
    created_at REAL NOT NULL,
    PRIMARY KEY (call_id, utterance_id, target, article_id)
);
CREATE TABLE IF NOT EXISTS assist_impressions (
    call_id TEXT NOT NULL,
    utterance_id TEXT NOT NULL,
    target TEXT NOT NULL,
    article_id TEXT NOT NULL DEFAULT '',
    unit TEXT NOT NULL,
    intent TEXT NOT NULL,
    title TEXT,
    agent_id TEXT NOT NULL,
    team TEXT,
    ended_at REAL NOT NULL,
    PRIMARY KEY (call_id, utterance_id, target, article_id)
);
CREATE INDEX IF NOT EXISTS assist_impressions_ended ON assist_impressions(ended_at);
CREATE INDEX IF NOT EXISTS assist_impressions_agent ON assist_impressions(agent_id, ended_at);
"""


def assist_key(utterance_id: str | None, timestamp: float) -> str:
    """The key feedback uses for one assist: its utterance id, or ``@<call time>`` when the
    softphone sent none. Numbers print as JavaScript's ``String(n)`` does for call times."""
    if utterance_id:
        return utterance_id
    value = float(timestamp)
    return f"@{int(value)}" if value.is_integer() else f"@{value!r}"


def suggestion_unit(intent: str, text: str) -> str:
    """One suggestion as the agent saw it: this text for this intent (stable across utterances)."""
    return hashlib.sha1(f"{intent}\x00{text}".encode()).hexdigest()[:16]


class FeedbackFrame(BaseModel):
    """``{"type": "feedback", ...}`` on the agent socket; the same body (plus ``agent_id``) over HTTP."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    type: Literal["feedback"] = "feedback"
    call_id: str = Field(min_length=1, max_length=128, pattern=ID_PATTERN)
    utterance_id: str = Field(min_length=1, max_length=160)
    target: Literal["suggestion", "article"]
    article_id: str | None = Field(default=None, min_length=1, max_length=200)
    used: bool | None = None
    rating: Literal["helpful", "not_helpful"] | None = None
    rating_given: bool = Field(default=False, exclude=True)  # "rating": null clears; absent keeps


def _parse(raw: dict[str, Any]) -> FeedbackFrame:
    try:
        frame = FeedbackFrame.model_validate({**raw, "rating_given": "rating" in raw})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        if first["type"] == "missing":
            raise ProtocolError("missing_field", f"missing required field '{field}'", field=field) from None
        raise ProtocolError("invalid_field", f"invalid '{field}': {first['msg']}", field=field) from None
    if frame.target == "article" and not frame.article_id:
        raise ProtocolError("missing_field", "article feedback needs 'article_id'", field="article_id")
    if frame.target == "suggestion" and frame.article_id:
        raise ProtocolError("invalid_field", "suggestion feedback takes no 'article_id'", field="article_id")
    if frame.used is None and not frame.rating_given:
        raise ProtocolError("missing_field", "feedback needs 'used' and/or 'rating'", field="used")
    return frame


@dataclass(frozen=True)
class Rates:
    shown: int
    used: int
    helpful: int
    not_helpful: int

    def as_dict(self) -> dict[str, Any]:
        rated = self.helpful + self.not_helpful
        return {
            "shown": self.shown,
            "used": self.used,
            "helpful": self.helpful,
            "not_helpful": self.not_helpful,
            "used_rate": round(self.used / self.shown, 4) if self.shown else None,
            "helpful_rate": round(self.helpful / rated, 4) if rated else None,
        }


class FeedbackExtension:
    name = "feedback"
    group = keys.FEEDBACK_GROUP

    def __init__(self) -> None:
        self._services: Services | None = None
        self._worker: StreamWorker | None = None
        self._task: asyncio.Task[None] | None = None
        self._counter: Counter | None = None

    # ------------------------------------------------------------------ lifecycle

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/assist/feedback", self.post_feedback, methods=["POST"]),
            Route("/v1/assist/adoption", self.get_adoption, methods=["GET"]),
        ]

    async def start(self, services: Services) -> None:
        self._services = services
        await services.db.run(_create_tables)
        self._counter = Counter(
            "callassist_assist_feedback_total",
            "Agent feedback on suggestions and articles",
            ["target", "signal"],
            registry=services.metrics.registry,
        )
        self._worker = StreamWorker(
            services.bus,
            keys.CALLS_STREAM,
            self.group,
            services.settings.process_name,
            self._on_call_event,
        )
        self._task = asyncio.create_task(self._worker.run(), name="feedback-impressions")

    async def stop(self) -> None:
        # Stop reading first (nothing new starts), then let in-flight inserts finish: the
        # database closes right after the extensions stop.
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._worker is not None:
            await self._worker.stop()
        self._services = None

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("feedback extension not started")
        return self._services

    # ------------------------------------------------------------------ impressions (from call.ended)

    async def _on_call_event(self, entry: StreamEntry) -> None:
        if entry.fields.get("event") != "call.ended" or not isinstance(entry.fields.get("record"), dict):
            return
        rows = impressions(entry.fields["record"])

        def insert(conn: sqlite3.Connection) -> None:
            # Returns nothing: a cursor handed back to the event loop would be finalised on
            # that thread while the database thread runs the next statement (SQLITE_MISUSE).
            conn.executemany(
                "INSERT OR IGNORE INTO assist_impressions (call_id, utterance_id, target, article_id, unit,"
                " intent, title, agent_id, team, ended_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows,
            )

        if rows:
            await self.services.db.run(insert)

    # ------------------------------------------------------------------ feedback in

    async def on_agent_frame(self, agent_id: str, frame: dict[str, Any]) -> dict[str, Any] | None:
        """Agent-socket hook (``server/ws.py``): answers ``feedback`` frames, ignores the rest."""
        if frame.get("type") != "feedback":
            return None
        return await self.record(agent_id, _parse(frame))

    async def record(self, agent_id: str, frame: FeedbackFrame) -> dict[str, Any]:
        """Store one piece of feedback; a storage failure is a clear error (the socket stays
        open; the widget puts the button back and tells the agent)."""
        try:
            return await self._record(agent_id, frame)
        except ProtocolError:
            raise
        except Exception:
            log.exception("feedback on call %s could not be stored", frame.call_id)
            raise ProtocolError("feedback_unavailable", "feedback could not be stored; try again") from None

    async def post_feedback(self, request: Request) -> JSONResponse:
        body = await json_object(request, MAX_BODY_BYTES)
        if isinstance(body, JSONResponse):
            return body
        agent_id = body.get("agent_id")
        if not isinstance(agent_id, str) or not _ID.match(agent_id):
            return _error(422, "missing_field", "a valid 'agent_id' is required", field="agent_id")
        principal = principal_of(request)
        if principal.role == "agent" and agent_id != principal.agent_id:
            return _error(403, "forbidden", "an agent token may only give feedback as its own agent")
        try:
            saved = await self.record(agent_id, _parse({**body, "type": "feedback"}))
        except ProtocolError as exc:
            extra = {"field": exc.field} if exc.field else {}
            return _error(HTTP_STATUS.get(exc.code, 422), exc.code, exc.message, **extra)
        return JSONResponse(saved)

    async def _record(self, agent_id: str, frame: FeedbackFrame) -> dict[str, Any]:
        """Check the call, utterance and article were really shown to this agent, then upsert."""
        await self._check_shown(agent_id, frame)
        now = time.time()
        article_id = frame.article_id or ""
        used = None if frame.used is None else int(frame.used)
        key = (frame.call_id, frame.utterance_id, frame.target, article_id)

        def upsert(conn: sqlite3.Connection) -> sqlite3.Row:
            conn.execute(
                "INSERT INTO assist_feedback (call_id, utterance_id, target, article_id, agent_id, used, used_at,"
                " rating, rated_at, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (call_id, utterance_id, target, article_id) DO UPDATE SET"
                " used = COALESCE(excluded.used, used), used_at = COALESCE(excluded.used_at, used_at),"
                " rating = CASE WHEN excluded.rated_at IS NULL THEN rating ELSE excluded.rating END,"
                " rated_at = COALESCE(excluded.rated_at, rated_at)",
                (
                    *key[:2],
                    frame.target,
                    article_id,
                    agent_id,
                    used,
                    None if used is None else now,
                    frame.rating,
                    now if frame.rating_given else None,
                    now,
                ),
            )
            return conn.execute(
                "SELECT used, rating FROM assist_feedback"
                " WHERE call_id = ? AND utterance_id = ? AND target = ? AND article_id = ?",
                key,
            ).fetchone()

        row = await self.services.db.run(upsert)
        if self._counter is not None:
            if frame.used is not None:
                self._counter.labels(frame.target, "used" if frame.used else "unused").inc()
            if frame.rating_given:
                self._counter.labels(frame.target, frame.rating or "unrated").inc()
        return {
            "type": "feedback_saved",
            "call_id": frame.call_id,
            "utterance_id": frame.utterance_id,
            "target": frame.target,
            "article_id": frame.article_id,
            "used": bool(row["used"]),
            "rating": row["rating"],
        }

    async def _check_shown(self, agent_id: str, frame: FeedbackFrame) -> None:
        services = self.services
        session = services.calls.local_session(frame.call_id) if services.calls else None
        if session is not None:
            owner, assists = session.agent_id, session.assists
        else:
            record = await services.store.get_call(frame.call_id)
            if record is None:
                live = await services.registry.snapshot(agent_id=agent_id)
                if any(call["call_id"] == frame.call_id for call in live):
                    return  # live on another process: checked when impressions are joined
                raise ProtocolError(
                    "unknown_call", f"no live or stored call {frame.call_id}", field="call_id"
                )
            owner, assists = record["agent_id"], record.get("assists") or []
        if owner != agent_id:
            raise ProtocolError("not_your_call", f"call {frame.call_id} is not agent {agent_id}'s call")
        shown = next(
            (a for a in assists if assist_key(a.get("utterance_id"), a["timestamp"]) == frame.utterance_id),
            None,
        )
        if shown is None:
            raise ProtocolError(
                "unknown_utterance", f"no assist for utterance {frame.utterance_id!r}", field="utterance_id"
            )
        if frame.target == "article" and frame.article_id not in {a["id"] for a in shown["articles"]}:
            raise ProtocolError(
                "unknown_article",
                f"article {frame.article_id!r} was not shown for that utterance",
                field="article_id",
            )

    # ------------------------------------------------------------------ adoption out

    async def get_adoption(self, request: Request) -> JSONResponse:
        params = request.query_params
        try:
            since, until = (
                _time_param(params.get("since"), "since"),
                _time_param(params.get("until"), "until"),
            )
        except ValueError as exc:
            return _error(422, "invalid_query", str(exc))
        filters = {name: params.get(name) for name in ("agent_id", "team", "intent")}
        figures = await self.services.db.run(lambda conn: adoption(conn, since=since, until=until, **filters))
        return JSONResponse(figures)


def impressions(record: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Impression rows of one stored call record: its suggestions and articles, per utterance."""
    rows: list[tuple[Any, ...]] = []
    base = (record["agent_id"], record.get("team"), record["ended_at"])
    for shown in record.get("assists") or []:
        key = assist_key(shown.get("utterance_id"), shown["timestamp"])
        intent = shown.get("intent") or "unknown"
        action = shown.get("suggested_action") or ""
        rows.append(
            (record["call_id"], key, "suggestion", "", suggestion_unit(intent, action), intent, action, *base)
        )
        for article in shown.get("articles") or []:
            rows.append(
                (
                    record["call_id"],
                    key,
                    "article",
                    article["id"],
                    article["id"],
                    intent,
                    article.get("title"),
                    *base,
                )
            )
    return rows


def adoption(
    conn: sqlite3.Connection,
    *,
    since: float | None = None,
    until: float | None = None,
    agent_id: str | None = None,
    team: str | None = None,
    intent: str | None = None,
) -> dict[str, Any]:
    """Shown / used / helpful per intent (suggestions) and per article, over ended calls."""
    clauses, params = ["1 = 1"], []
    for clause, value in (
        ("i.ended_at >= ?", since),
        ("i.ended_at < ?", until),
        ("i.agent_id = ?", agent_id),
        ("i.team = ?", team),
        ("i.intent = ?", intent),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = " AND ".join(clauses)
    shown_by_intent = {
        row[0]: row[1]
        for row in conn.execute(
            f"SELECT i.intent, COUNT(DISTINCT i.call_id || char(0) || i.unit) FROM assist_impressions i"
            f" WHERE i.target = 'suggestion' AND {where} GROUP BY i.intent",
            params,
        )
    }
    titles: dict[str, str] = {}
    shown_by_article: dict[str, int] = {}
    for article_id, title, shown in conn.execute(
        f"SELECT i.article_id, MAX(i.title), COUNT(DISTINCT i.call_id) FROM assist_impressions i"
        f" WHERE i.target = 'article' AND {where} GROUP BY i.article_id",
        params,
    ):
        titles[article_id], shown_by_article[article_id] = title, shown
    calls = conn.execute(f"SELECT COUNT(DISTINCT i.call_id) FROM assist_impressions i WHERE {where}", params)
    call_count = int(calls.fetchone()[0])

    # Latest 'used' and latest rating per unit (a unit may have feedback on several utterances).
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in conn.execute(
        "SELECT i.call_id, i.target, i.unit, i.intent, i.article_id, f.used, f.used_at, f.rating, f.rated_at"
        " FROM assist_feedback f JOIN assist_impressions i"
        " ON f.call_id = i.call_id AND f.utterance_id = i.utterance_id AND f.target = i.target"
        f" AND f.article_id = i.article_id WHERE {where}",
        params,
    ):
        unit = latest.setdefault(
            (row["call_id"], row["target"], row["unit"]),
            {
                "intent": row["intent"],
                "article_id": row["article_id"],
                "used": (0.0, False),
                "rating": (0.0, None),
            },
        )
        if row["used_at"] is not None and row["used_at"] >= unit["used"][0]:
            unit["used"] = (row["used_at"], bool(row["used"]))
        if row["rated_at"] is not None and row["rated_at"] >= unit["rating"][0]:
            unit["rating"] = (row["rated_at"], row["rating"])

    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (_call, target, _unit), unit in latest.items():
        group = (target, unit["intent"] if target == "suggestion" else unit["article_id"])
        counts[group][0] += unit["used"][1]
        counts[group][1] += unit["rating"][1] == "helpful"
        counts[group][2] += unit["rating"][1] == "not_helpful"

    def rates(target: str, name: str, shown: int) -> Rates:
        used, helpful, not_helpful = counts.get((target, name), [0, 0, 0])
        return Rates(shown, used, helpful, not_helpful)

    by_intent = [
        {"intent": name, **rates("suggestion", name, shown).as_dict()}
        for name, shown in sorted(shown_by_intent.items(), key=lambda item: (-item[1], item[0]))
    ]
    by_article = [
        {"article_id": name, "title": titles[name], **rates("article", name, shown).as_dict()}
        for name, shown in sorted(shown_by_article.items(), key=lambda item: (-item[1], item[0]))
    ]

    def total(rows: list[dict[str, Any]]) -> dict[str, Any]:
        sums = [sum(row[k] for row in rows) for k in ("shown", "used", "helpful", "not_helpful")]
        return Rates(*sums).as_dict()

    return {
        "window": {"since": since, "until": until},
        "filters": {k: v for k, v in (("agent_id", agent_id), ("team", team), ("intent", intent)) if v},
        "calls": call_count,
        "suggestions": total(by_intent),
        "articles": total(by_article),
        "by_intent": by_intent,
        "by_article": by_article,
    }


def _time_param(raw: str | None, name: str) -> float | None:
    if raw in (None, ""):
        return None
    try:
        return float(raw)  # type: ignore[arg-type]
    except ValueError:
        try:
            return datetime.fromisoformat(raw).timestamp()  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"'{name}' must be unix seconds or an ISO 8601 date-time") from None


_error = error


def _create_tables(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)  # no cursor back to the event loop (see FeedbackExtension)
