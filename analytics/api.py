"""HTTP API (see docs/analytics.md for every answer):

- ``GET /v1/analytics/kpis`` (``period_days``): FCR, AHT, service level, QA distribution, repeat
  rate, top clusters, churn summary, emerging issues, daily series.
- ``GET /v1/analytics/clusters``, ``/repeats``, ``/churn``, ``/churn/{customer_id}``,
  ``/alerts``, ``/retention/cases``, ``/status``; ``POST /v1/analytics/run`` (``now``, ``refit``).
- ``GET|POST /v1/analytics/roi``: the ROI model (query parameters or a JSON body; ``from_store=true``
  derives seats, calls per agent per day, AHT after and at-risk customers from measured KPIs).
- ``PUT|GET /v1/customers/{customer_id}``, ``POST /v1/customers/import?format=csv|json``.
- ``GET /kpis``: the KPI dashboard page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from analytics import customers, roi
from analytics.config import DAY_S
from analytics.errors import AnalyticsError, InvalidInput, NotFound, NotReady
from analytics.service import AnalyticsService

MAX_BODY_BYTES = 64 * 1024
MAX_IMPORT_BYTES = 32 * 1024 * 1024
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

Handler = Callable[[Request, AnalyticsService], Awaitable[Response]]


def _service(request: Request) -> AnalyticsService:
    extension = request.app.state.services.extensions.get("analytics")
    service = getattr(extension, "service", None)
    if service is None:
        raise NotReady("analytics is not running")
    return service  # type: ignore[no-any-return]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, _service(request))
        except AnalyticsError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

    return endpoint


def _clean(value: Any) -> Any:
    """JSON has no NaN or inf: they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(_clean(data), status_code=status)


def _number(request: Request, name: str, default: float | None, lo: float, hi: float) -> float | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidInput(f"'{name}' must be a number", field=name) from None
    if not (lo <= value <= hi) or not math.isfinite(value):
        raise InvalidInput(f"'{name}' must be between {lo:g} and {hi:g}", field=name)
    return value


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    value = _number(request, name, default, lo, hi)
    if value is None or value != int(value):
        raise InvalidInput(f"'{name}' must be a whole number", field=name)
    return int(value)


def _bool(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if raw.lower() in ("1", "true", "yes"):  # type: ignore[union-attr]
        return True
    if raw.lower() in ("0", "false", "no"):  # type: ignore[union-attr]
        return False
    raise InvalidInput(f"'{name}' must be true or false", field=name)


async def _body(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    body = await request.body()
    if len(body) > limit:
        raise InvalidInput(f"body larger than {limit} bytes")
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("body is not JSON") from None


# ------------------------------------------------------------------------------------- analytics


async def kpis(request: Request, service: AnalyticsService) -> Response:
    period = _number(request, "period_days", None, 1, 365)
    out = await service.compute(lambda snap: service.engine.kpis(snap, period))
    out["alerts"] = await service.alerts(20)
    return _json(out)


async def clusters(request: Request, service: AnalyticsService) -> Response:
    period = _number(request, "period_days", None, 1, 365)
    limit = _int(request, "limit", 50, 1, 1000)
    return _json(await service.compute(lambda snap: service.engine.clusters(snap, period, limit)))


async def repeat_callers(request: Request, service: AnalyticsService) -> Response:
    lookback = _number(request, "lookback_days", None, 1, service.config.window_days)
    threshold = _int(request, "threshold", service.config.repeats.threshold, 2, 100)
    same_issue = _bool(request, "same_issue")
    limit = _int(request, "limit", 50, 1, 1000)
    offset = _int(request, "offset", 0, 0, 10_000_000)
    return _json(
        await service.answer(
            lambda conn, snap: service.engine.repeats(
                conn,
                snap,
                lookback_days=lookback,
                threshold=threshold if threshold != service.config.repeats.threshold else None,
                same_issue=same_issue,
                limit=limit,
                offset=offset,
            )
        )
    )


async def churn(request: Request, service: AnalyticsService) -> Response:
    min_score = _number(request, "min_score", 0.0, 0, 1) or 0.0
    urgency = request.query_params.get("urgency")
    if urgency not in (None, "", "high", "medium", "low"):
        raise InvalidInput("'urgency' must be high, medium or low", field="urgency")
    limit = _int(request, "limit", 50, 1, 1000)
    offset = _int(request, "offset", 0, 0, 10_000_000)
    return _json(
        await service.answer(
            lambda conn, snap: service.engine.churn(
                conn, snap, min_score=min_score, urgency=urgency or None, limit=limit, offset=offset
            )
        )
    )


async def customer_churn(request: Request, service: AnalyticsService) -> Response:
    customer_id = request.path_params["customer_id"]
    result = await service.answer(lambda conn, snap: service.engine.customer_churn(conn, snap, customer_id))
    if result is None:
        raise NotFound(
            f"customer {customer_id} has no calls in the last {service.config.churn.window_days:g} days",
            field="customer_id",
        )
    return _json(result)


async def alerts(request: Request, service: AnalyticsService) -> Response:
    limit = _int(request, "limit", 100, 1, 1000)
    return _json({"alerts": await service.alerts(limit)})


async def cases(request: Request, service: AnalyticsService) -> Response:
    status = request.query_params.get("status") or None
    if status not in (None, "waiting", "routed", "queued", "failed"):
        raise InvalidInput("'status' must be waiting, queued, routed or failed", field="status")
    limit = _int(request, "limit", 100, 1, 1000)
    return _json({"cases": await service.cases(status, limit)})


async def status(request: Request, service: AnalyticsService) -> Response:
    model = service.engine.model
    return _json(
        {
            "counters": service.counters,
            "last_run": service.last_run,
            "clustering": {
                "method": service.config.clustering.method,
                "clusters": len(model) if model is not None else 0,
                "fitted_at": model.fitted_at if model is not None else None,
                "fit": model.stats if model is not None else None,
            },
        }
    )


async def run(request: Request, service: AnalyticsService) -> Response:
    body = await _body(request)
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object")
    now = body.get("now")
    if now is not None and (isinstance(now, bool) or not isinstance(now, int | float) or now <= 0):
        raise InvalidInput("'now' must be unix seconds", field="now")
    refit = body.get("refit")
    if refit is not None and not isinstance(refit, bool):
        raise InvalidInput("'refit' must be true or false", field="refit")
    return _json(await service.run(now, refit=refit))


# ------------------------------------------------------------------------------------------- ROI


async def roi_endpoint(request: Request, service: AnalyticsService) -> Response:
    data: dict[str, Any] = {}
    if request.method == "POST":
        body = await _body(request)
        if not isinstance(body, dict):
            raise InvalidInput("body must be a JSON object of ROI inputs")
        data.update(body)
    from_store = bool(data.pop("from_store", False)) or bool(_bool(request, "from_store"))
    for key, value in request.query_params.items():
        if key == "from_store":
            continue
        if key not in roi.RoiInputs.model_fields:
            raise InvalidInput(f"unknown ROI input '{key}'", field=key)
        data[key] = value
    measured: dict[str, Any] = {}
    if from_store:
        measured = await service.compute(lambda snap: measured_inputs(service, snap))
        for key, value in measured.items():
            data.setdefault(key, value)
    result = roi.compute(roi.RoiInputs.parse(data))
    result["measured_inputs"] = measured
    result["seed"] = roi.seed_check()
    return _json(result)


def measured_inputs(service: AnalyticsService, snapshot: Any) -> dict[str, Any]:
    """ROI inputs measured in the store over the KPI period: seats (agents who took calls),
    calls per agent per working day, AHT after (minutes), at-risk customers (churn >= medium)."""
    frame = snapshot.frame
    period = service.config.kpis.period_days * DAY_S
    inside = (frame.ended_at >= snapshot.now - period) & (frame.ended_at < snapshot.now)
    if not inside.any():
        raise NotReady("no calls in the KPI period to measure ROI inputs from")
    agents = int(np.unique(frame.agent[inside]).size)
    days = np.unique(np.floor(frame.ended_at[inside] / DAY_S)).size
    levels = snapshot.churn.urgency(service.config.churn)
    return {
        "seats": agents,
        "calls_per_agent_per_day": round(float(inside.sum()) / agents / max(days, 1), 2),
        "aht_after_min": round(float(frame.duration[inside].mean()) / 60, 3),
        "at_risk_customers": int(((levels == "high") | (levels == "medium")).sum()),
    }


# ------------------------------------------------------------------------------------- customers


async def put_customer(request: Request, service: AnalyticsService) -> Response:
    profile = customers.validate(await _body(request), request.path_params["customer_id"])
    await service.db.run(lambda conn: customers.upsert(conn, [profile]))
    stored = await service.db.run(lambda conn: customers.get(conn, profile.customer_id))
    return _json(stored.public() if stored else profile.public())


async def get_customer(request: Request, service: AnalyticsService) -> Response:
    customer_id = request.path_params["customer_id"]
    profile = await service.db.run(lambda conn: customers.get(conn, customer_id))
    if profile is None:
        raise NotFound(f"no profile for customer {customer_id}", field="customer_id")
    out: dict[str, Any] = profile.public()
    if service.snapshot is not None:
        out["churn"] = await service.answer(
            lambda conn, snap: service.engine.customer_churn(conn, snap, customer_id)
        )
    return _json(out)


async def import_customers(request: Request, service: AnalyticsService) -> Response:
    fmt = request.query_params.get("format")
    if fmt is None:
        kind = request.headers.get("content-type", "")
        fmt = "csv" if "csv" in kind else "json"
    if int(request.headers.get("content-length") or 0) > MAX_IMPORT_BYTES:
        raise InvalidInput(f"body larger than {MAX_IMPORT_BYTES} bytes: split the file or use the CLI")
    raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise InvalidInput(f"body larger than {MAX_IMPORT_BYTES} bytes: split the file or use the CLI")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file must be UTF-8") from None
    profiles, ignored = customers.parse_import(text, fmt)
    imported = await service.db.run(lambda conn: customers.upsert(conn, profiles))
    return _json({"imported": imported, "ignored_columns": ignored})


async def page(request: Request) -> FileResponse:
    return FileResponse(STATIC_DIR / "kpis.html")


def routes() -> list[BaseRoute]:
    return [
        Route("/kpis", page, name="kpis.html"),
        Route("/v1/analytics/kpis", _endpoint(kpis), methods=["GET"]),
        Route("/v1/analytics/clusters", _endpoint(clusters), methods=["GET"]),
        Route("/v1/analytics/repeats", _endpoint(repeat_callers), methods=["GET"]),
        Route("/v1/analytics/churn", _endpoint(churn), methods=["GET"]),
        Route("/v1/analytics/churn/{customer_id}", _endpoint(customer_churn), methods=["GET"]),
        Route("/v1/analytics/alerts", _endpoint(alerts), methods=["GET"]),
        Route("/v1/analytics/retention/cases", _endpoint(cases), methods=["GET"]),
        Route("/v1/analytics/status", _endpoint(status), methods=["GET"]),
        Route("/v1/analytics/run", _endpoint(run), methods=["POST"]),
        Route("/v1/analytics/roi", _endpoint(roi_endpoint), methods=["GET", "POST"]),
        Route("/v1/customers/import", _endpoint(import_customers), methods=["POST"]),
        Route("/v1/customers/{customer_id}", _endpoint(put_customer), methods=["PUT"]),
        Route("/v1/customers/{customer_id}", _endpoint(get_customer), methods=["GET"]),
    ]
