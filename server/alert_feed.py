"""The wall board's alert feed: recent supervisor alerts and who acknowledged them.

The supervisor socket streams alerts as they happen, but a wall board that reloads (a TV that
rebooted, a supervisor opening a laptop) would start with an empty feed. This extension listens
on the ``supervisor`` channel like any board does — so with a Redis bus every process sees every
alert — keeps the most recent ones in a bounded ring, and stores acknowledgements in SQLite.

- ``GET /v1/supervisor/alerts``: the recent alerts, newest first, each with its ``ack`` (or null).
- ``POST /v1/supervisor/alerts/{alert_id}/ack`` (body optional: ``{"by": "name"}``): the first
  acknowledgement wins and later ones return it unchanged (idempotent); every board hears
  ``{"type": "alert_ack", "alert_id", "call_id", "by", "at"}`` on the supervisor socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from server import keys
from server.guard import principal_of
from server.json_body import error, json_object
from server.outbox import Outbox

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)
RECENT_ALERTS = 1000
LISTEN_QUEUE = 4096
MAX_BODY_BYTES = 4096
_ALERT_ID = re.compile(r"^[A-Za-z0-9._:@\-]{1,160}$")
_BY = re.compile(r"^[^\x00-\x1f]{1,80}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_acks (
    alert_id TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    acked_by TEXT NOT NULL,
    acked_at REAL NOT NULL
);
"""


class AlertFeedExtension:
    name = "alerts"

    def __init__(self, capacity: int = RECENT_ALERTS) -> None:
        self.capacity = capacity
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._services: Services | None = None
        self._task: asyncio.Task[None] | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/supervisor/alerts", self.list_alerts, methods=["GET"]),
            Route("/v1/supervisor/alerts/{alert_id}/ack", self.ack, methods=["POST"]),
        ]

    async def start(self, services: Services) -> None:
        self._services = services
        await services.db.run(_create_tables)
        outbox = self._outbox()
        await services.bus.subscribe(keys.SUPERVISOR_CHANNEL, outbox)
        self._task = asyncio.create_task(self._listen(outbox), name="alert-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._services = None

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("alert feed not started")
        return self._services

    def _outbox(self) -> Outbox:
        return Outbox(LISTEN_QUEUE)

    async def _listen(self, outbox: Outbox) -> None:
        bus = self.services.bus
        try:
            while True:
                message = await outbox.get()
                if message is None:  # fell behind (never expected in-process): start afresh
                    log.warning("alert feed fell behind; resubscribing")
                    await bus.unsubscribe(keys.SUPERVISOR_CHANNEL, outbox)
                    outbox = self._outbox()
                    await bus.subscribe(keys.SUPERVISOR_CHANNEL, outbox)
                    continue
                try:
                    event = json.loads(message.text)
                except ValueError:
                    log.warning("undecodable supervisor message skipped")
                    continue
                if event.get("type") == "alert" and isinstance(event.get("alert_id"), str):
                    self._remember({**event, "received_at": round(time.time(), 3)})
        finally:
            await bus.unsubscribe(keys.SUPERVISOR_CHANNEL, outbox)

    def _remember(self, alert: dict[str, Any]) -> None:
        self.recent[alert["alert_id"]] = alert
        self.recent.move_to_end(alert["alert_id"])
        while len(self.recent) > self.capacity:
            self.recent.popitem(last=False)

    # ------------------------------------------------------------------ HTTP

    async def list_alerts(self, request: Request) -> JSONResponse:
        alerts = list(reversed(self.recent.values()))
        call_id = request.query_params.get("call_id")
        if call_id:
            alerts = [a for a in alerts if a["call_id"] == call_id]
        ids = [a["alert_id"] for a in alerts]
        acks = await self.services.db.run(lambda conn: _acks(conn, ids))
        return JSONResponse({"alerts": [{**a, "ack": acks.get(a["alert_id"])} for a in alerts]})

    async def ack(self, request: Request) -> JSONResponse:
        alert_id = request.path_params["alert_id"]
        if not _ALERT_ID.match(alert_id):
            return _error(422, "invalid_field", "invalid alert id", field="alert_id")
        body = await json_object(request, MAX_BODY_BYTES, empty=True)
        if isinstance(body, JSONResponse):
            return body
        by = body.get("by", "supervisor")
        if not isinstance(by, str) or not _BY.match(by.strip()):
            return _error(422, "invalid_field", "'by' must be 1-80 printable characters", field="by")
        by = by.strip()
        principal = principal_of(request)
        if principal.via != "open":  # with auth on, the acknowledger is who signed in, not what they claim
            by = principal.name
        call_id = await self._call_of(alert_id)
        if call_id is None:
            return _error(404, "unknown_alert", f"no recent alert {alert_id}")
        now = round(time.time(), 3)

        def insert(conn: sqlite3.Connection) -> tuple[bool, dict[str, Any]]:
            created = conn.execute(
                "INSERT OR IGNORE INTO alert_acks (alert_id, call_id, acked_by, acked_at) VALUES (?,?,?,?)",
                (alert_id, call_id, by, now),
            ).rowcount
            return bool(created), _acks(conn, [alert_id])[alert_id]

        created, ack = await self.services.db.run(insert)
        event = {"type": "alert_ack", "alert_id": alert_id, "call_id": call_id, **ack}
        if created:
            await self.services.bus.publish([keys.SUPERVISOR_CHANNEL], event)
        return JSONResponse(event)

    async def _call_of(self, alert_id: str) -> str | None:
        """The call an alert belongs to, if it is a real one: recent, live here, or stored."""
        if alert_id in self.recent:
            return str(self.recent[alert_id]["call_id"])
        call_id = alert_id.rpartition(":")[0]
        if not call_id:
            return None
        calls = self.services.calls
        session = calls.local_session(call_id) if calls else None
        alerts = session.supervisor_alerts if session else None
        if alerts is None:
            record = await self.services.store.get_call(call_id)
            alerts = (record or {}).get("supervisor_alerts") or []
        return call_id if any(a.get("alert_id") == alert_id for a in alerts) else None


def _acks(conn: sqlite3.Connection, alert_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(alert_ids), 500):  # SQLite's bound-parameter limit
        chunk = alert_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT alert_id, acked_by, acked_at FROM alert_acks WHERE alert_id IN ({marks})", chunk
        ):
            found[row["alert_id"]] = {"by": row["acked_by"], "at": row["acked_at"]}
    return found


_error = error


def _create_tables(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)  # no cursor back to the event loop (see FeedbackExtension)
