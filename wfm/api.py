"""REST for workforce management, plugged into the server as an extension.

- ``POST /v1/wfm/staffing``: interval volumes -> agents per interval (Erlang C, or Erlang A with a
  patience), optionally a shift schedule.
- ``GET /v1/wfm/forecast?date=YYYY-MM-DD``: forecast from the call store's ``calls`` table.

Forecasting, Erlang A searches and the integer program are CPU work: they run in worker threads,
at most ``MAX_CONCURRENT_JOBS`` at a time, so the event loop keeps serving live calls.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wfm.errors import WfmInputError

if TYPE_CHECKING:
    from server.services import Services

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_INTERVALS = 20_000
MAX_CONCURRENT_JOBS = 2
T = TypeVar("T")


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def _invalid(exc: WfmInputError) -> JSONResponse:
    return JSONResponse({"error": exc.as_dict()}, status_code=422)


class WfmExtension:
    name = "wfm"

    def __init__(self) -> None:
        self._jobs = asyncio.Semaphore(MAX_CONCURRENT_JOBS)
        self._services: Services | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/wfm/staffing", self.staffing, methods=["POST"]),
            Route("/v1/wfm/forecast", self.forecast, methods=["GET"]),
        ]

    async def start(self, services: Services) -> None:
        self._services = services

    async def stop(self) -> None:
        self._services = None

    async def _run(self, work: Callable[[], T]) -> T:
        async with self._jobs:
            return await asyncio.to_thread(work)

    # ------------------------------------------------------------ POST /v1/wfm/staffing

    async def staffing(self, request: Request) -> Response:
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            return _error(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "invalid_json", "body must be a JSON object")
        if not isinstance(body, dict):
            return _error(400, "invalid_json", "body must be a JSON object")
        try:
            return JSONResponse(await self._run(lambda: staffing_response(body)))
        except WfmInputError as exc:
            return _invalid(exc)

    # ------------------------------------------------------------ GET /v1/wfm/forecast

    async def forecast(self, request: Request) -> Response:
        services: Services = request.app.state.services
        params = request.query_params
        try:
            day = _parse_date(params.get("date"))
            tz = _zone(params.get("tz"))
            interval = int(params.get("interval", "30"))
            weeks = int(params.get("weeks", "52"))
            if not 1 <= weeks <= 260:
                raise WfmInputError("'weeks' must be 1..260", field="weeks")
            fmt = params.get("format", "json")
            if fmt not in ("json", "csv"):
                raise WfmInputError("'format' must be json or csv", field="format")
        except ValueError as exc:
            return _invalid(
                exc if isinstance(exc, WfmInputError) else WfmInputError(str(exc), field="interval")
            )
        since = datetime.combine(day - timedelta(weeks=weeks), datetime.min.time(), tz).timestamp()
        until = datetime.combine(day, datetime.min.time(), tz).timestamp()

        def read(conn: sqlite3.Connection) -> list[tuple[float, float]]:
            rows = conn.execute(
                "SELECT started_at, duration FROM calls WHERE started_at >= ? AND started_at < ?",
                (since, until),
            )
            return [(float(a), float(b)) for a, b in rows]

        calls = await services.db.run(read)
        try:
            rows = await self._run(lambda: forecast_rows(calls, day, tz, interval, dict(params)))
        except WfmInputError as exc:
            return _invalid(exc)
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            return Response(buffer.getvalue(), media_type="text/csv")
        return JSONResponse(
            {
                "date": day.isoformat(),
                "interval_minutes": interval,
                "history_calls": len(calls),
                "intervals": rows,
            }
        )


def _parse_date(raw: str | None) -> date:
    if not raw:
        raise WfmInputError("'date' is required (YYYY-MM-DD)", field="date")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise WfmInputError(f"'date' must be YYYY-MM-DD, got {raw!r}", field="date") from None


def _zone(name: str | None) -> Any:
    if not name:
        return datetime.now().astimezone().tzinfo
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WfmInputError(f"unknown time zone {name!r}", field="tz") from None


def _float_param(params: dict[str, str], name: str, default: float | None = None) -> float | None:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)  # type: ignore[arg-type]
    except ValueError:
        raise WfmInputError(f"'{name}' must be a number, got {raw!r}", field=name) from None


def forecast_rows(
    calls: list[tuple[float, float]], day: date, tz: Any, interval: int, params: dict[str, str]
) -> list[dict[str, Any]]:
    from wfm.forecast import AhtProfile, Forecaster, ShrinkagePolicy
    from wfm.history import history_from_calls
    from wfm.methods import DEFAULT_METHOD, method
    from wfm.plan import parse_target

    target_spec = {
        k: params[k]
        for k in ("service_level", "answer_seconds", "asa_seconds", "max_occupancy", "max_abandon")
        if k in params
    }
    history = history_from_calls(calls, tz=tz, interval_minutes=interval)
    forecaster = Forecaster(
        method=method(params.get("method", DEFAULT_METHOD)),
        target=parse_target(target_spec),
        shrinkage=ShrinkagePolicy(base=_float_param(params, "shrinkage", 0.30) or 0.0),
        aht=AhtProfile(default_seconds=_float_param(params, "aht_seconds", 300.0) or 0.0),
        patience_seconds=_float_param(params, "patience_seconds"),
    )
    return [row.as_dict() for row in forecaster.forecast_day(history, day)]


def staffing_response(body: dict[str, Any]) -> dict[str, Any]:
    """The whole POST /v1/wfm/staffing computation (pure; runs in a worker thread)."""
    from wfm.plan import check_spacing, parse_demand, parse_target, plan_staffing, totals

    intervals = body.get("intervals")
    if isinstance(intervals, list) and len(intervals) > MAX_INTERVALS:
        raise WfmInputError(f"at most {MAX_INTERVALS} intervals per request", field="intervals")
    target_spec = body.get("target", {})
    if not isinstance(target_spec, dict):
        raise WfmInputError("'target' must be an object", field="target")
    target = parse_target(target_spec)
    default_aht = body.get("aht_seconds")
    if default_aht is not None and not isinstance(default_aht, (int, float)):
        raise WfmInputError("'aht_seconds' must be a number", field="aht_seconds")
    demand = parse_demand(intervals, default_aht=default_aht)  # type: ignore[arg-type]
    requested = body.get("interval_minutes")
    if requested is not None and (not isinstance(requested, int) or requested <= 0):
        raise WfmInputError("'interval_minutes' must be a positive integer", field="interval_minutes")
    interval = check_spacing([d.interval_start for d in demand], requested)
    shrinkage = body.get("shrinkage", 0.0)
    patience = body.get("patience_seconds")
    if not isinstance(shrinkage, (int, float)) or (
        patience is not None and not isinstance(patience, (int, float))
    ):
        raise WfmInputError("'shrinkage' and 'patience_seconds' must be numbers", field="shrinkage")
    rows = plan_staffing(
        demand, target, interval_minutes=interval, shrinkage=float(shrinkage), patience_seconds=patience
    )
    response: dict[str, Any] = {
        "interval_minutes": interval,
        "model": "erlang_a" if patience is not None else "erlang_c",
        "totals": totals(rows, interval),
        "intervals": rows,
    }
    if body.get("schedule"):
        from wfm.schedule import build_schedule, parse_shift_rules

        spec = body["schedule"] if isinstance(body["schedule"], dict) else {}
        rules = parse_shift_rules(spec)
        column = spec.get("cover", "scheduled")
        if column not in ("scheduled", "agents"):
            raise WfmInputError("schedule.cover must be 'scheduled' or 'agents'", field="schedule.cover")
        response["schedule"] = build_schedule(
            [d.interval_start for d in demand], [float(r[column]) for r in rows], rules
        ).as_dict()
    return response
