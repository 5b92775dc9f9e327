"""The analytics service inside the server: ingests stored calls, runs the analysis on a
schedule, raises emerging-issue alerts and opens retention cases through routing.

Threads and connections: ingestion, answers and actions use the server's ``Database`` (short
statements); the analysis run (load a 90-day window, cluster, score) uses a second connection to
the same SQLite file on its own thread, so a long scan never holds up the core's writes of
ended calls. Analytics writes keep their transactions short (cluster updates go in chunks).

Delivery: ingestion follows the ``calls`` table by rowid (the store is the source of truth; a
cursor in ``analytics_state``) and is idempotent by call id, so a crash re-reads at most one
batch. Alerts are keyed ``emerging:{cluster}:{day}``, retention cases are at most one per
customer per cooling-off period: both checked and written in one transaction, so restarts and
several server processes never duplicate them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analytics import customers
from analytics import store as st
from analytics.config import DAY_S, AnalyticsConfig, AnalyticsSettings
from analytics.engine import Analytics, Snapshot
from analytics.errors import NotReady
from analytics.records import CallFacts, facts_from_record
from server import keys
from server.store import Database

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from server.services import Services

log = logging.getLogger(__name__)
REALERT_S = DAY_S
CLUSTER_UPDATE_CHUNK = 20_000


def _group_key(basis: str, group_id: int) -> int:
    """Clusters keep their ids; article groups are stored negative so the two never collide."""
    return group_id if basis == "cluster" else -1 - group_id


class AnalyticsService:
    def __init__(self, services: Services, config: AnalyticsConfig, settings: AnalyticsSettings) -> None:
        self.services = services
        self.config = config
        self.settings = settings
        self.engine = Analytics(config)
        self.db: Database = services.db
        path = Path(services.settings.store_path)
        in_memory = str(path) == ":memory:"
        self.scan_db = services.db if in_memory else Database(path)  # analysis runs (long scans)
        self.read_db = services.db if in_memory else Database(path)  # answers (names, call ids)
        self.snapshot: Snapshot | None = None
        self.last_run: dict[str, Any] | None = None
        self.counters: dict[str, int] = {
            "ingested": 0,
            "bad_records": 0,
            "runs": 0,
            "alerts": 0,
            "cases_opened": 0,
            "cases_routed": 0,
        }
        self._run_lock = asyncio.Lock()
        self._sync_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle

    def _metrics(self) -> Iterable[Metric]:
        from server.metrics import counter_family, gauge_family

        yield counter_family(
            "callassist_analytics_events",
            "Analytics: calls ingested, runs, alerts, retention cases",
            dict(self.counters),
            "event",
        )
        if self.last_run is not None:
            yield gauge_family(
                "callassist_analytics_run_seconds",
                "Duration of the last analysis run",
                self.last_run["seconds"],
            )
            yield gauge_family(
                "callassist_analytics_window_calls",
                "Calls in the last analysis window",
                self.last_run["calls"],
            )

    async def start(self) -> None:
        self.services.metrics.add_collector(self._metrics)
        await self.db.run(st.open_schema)
        for db in (self.scan_db, self.read_db):
            if db is not self.db:
                await db.open()
        await self.db.run(self.engine.load_model)
        self._tasks = [asyncio.create_task(self._sync_loop(), name="analytics-sync")]
        if self.settings.interval_s > 0:
            self._tasks.append(asyncio.create_task(self._run_loop(), name="analytics-run"))
        if self.config.retention.enabled:
            self._tasks.append(asyncio.create_task(self._dispatch_loop(), name="analytics-retention"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for db in (self.scan_db, self.read_db):
            if db is not self.db:
                await db.close()

    # ------------------------------------------------------------------ ingestion

    async def _sync_loop(self) -> None:
        await self.services.ready.wait()  # summaries are embedded with the server's model
        while True:
            try:
                started = time.monotonic()
                fetched = await self.sync_once()
                if fetched >= self.settings.sync_batch:
                    # A backlog: keep going, but leave the CPU to live calls half the time.
                    await asyncio.sleep(time.monotonic() - started)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("analytics: ingesting stored calls failed; retrying", exc_info=True)
            await asyncio.sleep(self.settings.sync_interval_s)

    async def sync_once(self) -> int:
        """Ingest the next batch of stored calls. Returns how many records were read."""
        async with self._sync_lock:
            limit = self.settings.sync_batch

            def fetch(conn: sqlite3.Connection) -> tuple[int, list[tuple[int, str]]]:
                cursor = int(st.get_state(conn, "calls_cursor", 0))
                rows = conn.execute(
                    "SELECT rowid, record FROM calls WHERE rowid > ? ORDER BY rowid LIMIT ?", (cursor, limit)
                ).fetchall()
                return cursor, [(int(r[0]), r[1]) for r in rows]

            _, rows = await self.db.run(fetch)
            if not rows:
                return 0
            facts: list[CallFacts] = []
            for rowid, raw in rows:
                try:
                    facts.append(
                        facts_from_record(
                            json.loads(raw),
                            cancellation_intents=self.config.cancellation_intents,
                            cancellation_patterns=self.config.cancellation_patterns,
                        )
                    )
                except (KeyError, TypeError, ValueError):
                    self.counters["bad_records"] += 1
                    log.warning("analytics: skipping malformed stored call (rowid %s)", rowid)
            facts = await self._with_routing_waits(facts)
            vectors = await self._embed([f.summary for f in facts])
            last = rows[-1][0]

            def write(conn: sqlite3.Connection) -> int:
                added = self.engine.ingest(conn, facts, vectors)
                st.put_state(conn, "calls_cursor", last)
                return added

            self.counters["ingested"] += await self.db.run(write)
            return len(rows)

    async def _embed(self, texts: list[str]) -> np.ndarray | None:
        embedder = self.services.embedder
        if embedder is None or not texts:
            return None
        return await asyncio.to_thread(embedder.encode, texts)

    async def _with_routing_waits(self, facts: list[CallFacts]) -> list[CallFacts]:
        """Service level needs each call's wait: ask routing about calls it routed."""
        router = getattr(self.services.extensions.get("routing"), "router", None)
        if router is None:
            return facts
        out = []
        for f in facts:
            if f.wait_s is None:
                try:
                    routed = await router.get_call(f.call_id)
                except Exception:  # not routed by us, or routing state unreachable: no wait known
                    routed = None
                if routed and routed.get("state") == "assigned" and routed.get("waited_s") is not None:
                    f = CallFacts(**{**f.to_dict(), "wait_s": float(routed["waited_s"])})
            out.append(f)
        return out

    # ------------------------------------------------------------------ analysis

    async def _run_loop(self) -> None:
        await self.services.ready.wait()
        while True:
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("analytics: analysis run failed; retrying at the next interval", exc_info=True)
            await asyncio.sleep(self.settings.interval_s)

    async def run(
        self, now: float | None = None, *, refit: bool | None = None, sync: bool = True
    ) -> dict[str, Any]:
        """Ingest what is new, analyse the window ending at ``now`` (default: the clock) and act."""
        async with self._run_lock:
            if sync:
                while await self.sync_once() >= self.settings.sync_batch:
                    pass
            started = time.perf_counter()
            snapshot = await self.scan_db.run(lambda conn: self._analyse(conn, now, refit))
            self.snapshot = snapshot
            alerts = await self._raise_alerts(snapshot)
            cases = await self._open_cases(snapshot)
            self.counters["runs"] += 1
            self.last_run = {
                "now": snapshot.now,
                "calls": len(snapshot.frame),
                "clusters": len(snapshot.model) if snapshot.model is not None else 0,
                "refit": snapshot.refit,
                "emerging": [e.payload() for e in snapshot.emerging],
                "alerts_raised": alerts,
                "cases_opened": cases,
                "seconds": round(time.perf_counter() - started, 3),
                "timings": snapshot.timings,
            }
        if cases:
            await self.dispatch_cases()
        return self.last_run

    def _analyse(self, conn: sqlite3.Connection, now: float | None, refit: bool | None) -> Snapshot:
        snapshot = self.engine.run(conn, now, refit=refit)
        return snapshot

    def require(self) -> Snapshot:
        if self.snapshot is None:
            raise NotReady("no analysis has run yet: POST /v1/analytics/run or wait for the schedule")
        return self.snapshot

    async def answer(self, work: Any) -> Any:
        """Render from the latest snapshot on the answers' own connection (names, call ids), so
        neither the core's writes nor a running analysis hold it up."""
        snapshot = self.require()
        return await self.read_db.run(lambda conn: work(conn, snapshot))

    async def compute(self, work: Any) -> Any:
        """Pure numpy work on the latest snapshot, off the event loop."""
        snapshot = self.require()
        return await asyncio.to_thread(work, snapshot)

    # ------------------------------------------------------------------ emerging-issue alerts

    async def _raise_alerts(self, snapshot: Snapshot) -> int:
        if not snapshot.emerging:
            return 0
        model = snapshot.model
        baseline_days = self.config.emerging.baseline_days

        def record(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            names = self.engine.names.lookup(
                conn,
                [e.article for e in snapshot.emerging]
                + [e.group_id for e in snapshot.emerging if e.basis == "article"],
            )
            fresh = []
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                for issue in snapshot.emerging:
                    article = names.get(issue.article)
                    if issue.basis == "cluster" and model is not None:
                        info = model.info(issue.group_id)
                        label = info["label"]
                    else:
                        info = {"cluster_id": None, "label": names.get(issue.group_id), "samples": []}
                        label = f"article “{info['label']}”"
                    # One event, one alert: not again for this group, nor for another lens on the
                    # same calls (same main article), within a day.
                    recent = conn.execute(
                        "SELECT 1 FROM analytics_alerts WHERE kind = 'emerging_issue' AND raised_at > ?"
                        " AND (cluster_id = ? OR json_extract(payload, '$.article') = ?)",
                        (snapshot.now - REALERT_S, _group_key(issue.basis, issue.group_id), article),
                    ).fetchone()
                    if recent is not None:
                        continue
                    payload = {
                        "type": "alert",
                        "alert_id": f"emerging:{issue.basis}:{issue.group_id}:{issue.day}",
                        "call_id": None,
                        "agent_id": None,
                        "kind": "emerging_issue",
                        "severity": "high",
                        "message": (
                            f"Emerging issue {label}: {issue.share:.0%} of today's calls ({issue.calls_today}) "
                            f"vs {issue.baseline_share:.1%} over the last {baseline_days} days"
                        ),
                        "timestamp": None,
                        "detected_at": snapshot.now,
                        "label": info.get("label"),
                        "top_terms": info.get("top_terms", []),
                        "samples": info.get("samples", []),
                        "article": article,
                        **issue.payload(),
                    }
                    cursor = conn.execute(
                        "INSERT OR IGNORE INTO analytics_alerts (alert_id, kind, cluster_id, day, raised_at, payload)"
                        " VALUES (?, 'emerging_issue', ?, ?, ?, ?)",
                        (
                            payload["alert_id"],
                            _group_key(issue.basis, issue.group_id),
                            issue.day,
                            snapshot.now,
                            json.dumps(payload),
                        ),
                    )
                    if cursor.rowcount == 1:
                        fresh.append(payload)
            return fresh

        fresh = await self.db.run(record)
        for payload in fresh:
            await self.services.bus.publish([keys.SUPERVISOR_CHANNEL], payload)
            log.warning("analytics: %s", payload["message"])
        self.counters["alerts"] += len(fresh)
        return len(fresh)

    async def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        def fetch(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT payload FROM analytics_alerts ORDER BY raised_at DESC LIMIT ?", (limit,)
            )
            return [json.loads(r[0]) for r in rows]

        return await self.db.run(fetch)

    # ------------------------------------------------------------------ retention outreach

    async def _open_cases(self, snapshot: Snapshot) -> int:
        retention = self.config.retention
        if not retention.enabled:
            return 0
        candidates = self.engine.retention_candidates(snapshot)
        if not candidates:
            return 0
        cooling = retention.cooling_off_days * DAY_S

        def open_cases(conn: sqlite3.Connection) -> int:
            names = self.engine.names.lookup(conn, [k for k, _, _ in candidates])
            opened = 0
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                for key, _score, clv in candidates:
                    customer_id = names.get(key)
                    if customer_id is None:
                        continue
                    last = conn.execute(
                        "SELECT MAX(opened_at) FROM analytics_retention_cases WHERE customer_id = ?",
                        (customer_id,),
                    ).fetchone()[0]
                    if last is not None and snapshot.now - float(last) < cooling:
                        continue
                    index = int(np.flatnonzero(snapshot.churn.customer == key)[0])
                    explanation = self.engine.explain(snapshot, index)
                    conn.execute(
                        "INSERT INTO analytics_retention_cases (case_id, customer_id, opened_at, score, clv, status,"
                        " factors) VALUES (?,?,?,?,?,'waiting',?)",
                        (
                            f"retention-{customer_id}-{int(snapshot.now)}",
                            customer_id,
                            snapshot.now,
                            explanation["score"],
                            clv,
                            json.dumps(explanation),
                        ),
                    )
                    opened += 1
            return opened

        opened = await self.db.run(open_cases)
        self.counters["cases_opened"] += opened
        return opened

    async def _dispatch_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.retention.dispatch_interval_s)
            try:
                await self.dispatch_cases()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("analytics: dispatching retention cases failed; retrying", exc_info=True)

    async def dispatch_cases(self) -> int:
        """Hand waiting cases to routing: at once, or (``require_specialist``) when an agent with
        the retention specialization is free, so routing's specialization hold gives it to them."""
        extension = self.services.extensions.get("routing")
        router = getattr(extension, "router", None)
        if router is None:
            return 0
        retention = self.config.retention

        def waiting(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT case_id, customer_id, score, clv FROM analytics_retention_cases WHERE status = 'waiting'"
                " ORDER BY clv DESC, opened_at LIMIT 200"
            ).fetchall()
            out = [dict(zip(("case_id", "customer_id", "score", "clv"), tuple(r), strict=True)) for r in rows]
            profiles = customers.get_many(conn, [c["customer_id"] for c in out])
            for case in out:
                case["profile"] = profiles.get(case["customer_id"])
            return out

        cases = await self.db.run(waiting)
        if not cases:
            return 0
        free: list[dict[str, Any]] | None = None
        if retention.require_specialist:
            free = [
                a
                for a in await router.agents()
                if a.get("status") == "available"
                and retention.specialization in (a.get("specializations") or [])
            ]
        routed = 0
        for case in cases:
            profile = case["profile"]
            language = (profile.language if profile and profile.language else retention.default_language)[:2]
            if free is not None:
                agent = next((a for a in free if language in a.get("languages", [])), None)
                if agent is None:
                    continue
                free.remove(agent)
            result = await self._route(extension, router, case, profile, language)
            if result is not None:
                routed += 1
        self.counters["cases_routed"] += routed
        return routed

    async def _route(
        self, extension: Any, router: Any, case: dict[str, Any], profile: Any, language: str
    ) -> dict[str, Any] | None:
        tiers = getattr(router.config, "tiers", {})
        tier = profile.tier if profile and profile.tier in tiers else "standard"
        caller = {
            "call_id": case["case_id"],
            "customer_id": case["customer_id"],
            "language": language,
            "issue_category": self.config.retention.specialization,
            "tier": tier,
            "clv": float(case["clv"] or 0.0),
            "repeat_caller": True,
        }
        if profile is not None and profile.product:
            caller["product"] = profile.product
        number = profile.phone if profile is not None and profile.phone else f"customer:{case['customer_id']}"
        try:
            result: dict[str, Any] = await extension.route_call(caller, callback_number=number)
        except Exception as exc:
            code = getattr(exc, "code", type(exc).__name__)
            log.warning("analytics: routing retention case %s failed: %s", case["case_id"], exc)
            if code in ("invalid_input", "conflict"):
                await self._set_case(case["case_id"], "failed", detail={"error": str(exc), "code": code})
            return None
        status = "routed" if result.get("status") == "assigned" else "queued"
        await self._set_case(
            case["case_id"], status, routing_call_id=case["case_id"], agent_id=result.get("agent_id")
        )
        event = {
            "type": "retention.case",
            "case_id": case["case_id"],
            "customer_id": case["customer_id"],
            "status": status,
            "agent_id": result.get("agent_id"),
            "score": case["score"],
            "clv": case["clv"],
        }
        await self.services.bus.publish([keys.SUPERVISOR_CHANNEL], event, droppable=True)
        return result

    async def _set_case(self, case_id: str, status: str, **fields: Any) -> None:
        detail = fields.pop("detail", None)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE analytics_retention_cases SET status = ?, routing_call_id = COALESCE(?, routing_call_id),"
                " agent_id = COALESCE(?, agent_id), routed_at = ?, detail = COALESCE(?, detail) WHERE case_id = ?",
                (
                    status,
                    fields.get("routing_call_id"),
                    fields.get("agent_id"),
                    time.time(),
                    json.dumps(detail) if detail else None,
                    case_id,
                ),
            )

        await self.db.run(write)

    async def cases(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        def fetch(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            sql = "SELECT * FROM analytics_retention_cases"
            params: tuple[Any, ...] = ()
            if status:
                sql += " WHERE status = ?"
                params = (status,)
            rows = conn.execute(sql + " ORDER BY opened_at DESC LIMIT ?", (*params, limit)).fetchall()
            out = []
            for r in rows:
                case = dict(r)
                case["factors"] = json.loads(case["factors"])
                case["detail"] = json.loads(case["detail"]) if case.get("detail") else None
                out.append(case)
            return out

        return await self.db.run(fetch)
