"""REST API of the QA package (under /v1/qa)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from qa.calibration import CalibrationError, calibrate_stored, read_human_scores
from qa.extension import QAExtension
from qa.insights import coaching_patterns, distributions
from qa.scorecard import Scorecard
from server.app import _float_param, error

MAX_CALIBRATION_BYTES = 5 * 1024 * 1024


def _qa(request: Request) -> QAExtension:
    return request.app.state.services.extensions["qa"]  # type: ignore[no-any-return]


def _period(request: Request) -> tuple[float | None, float | None]:
    return _float_param(request, "since"), _float_param(request, "until")


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"'{name}' must be an integer") from None
    if not low <= value <= high:
        raise ValueError(f"'{name}' must be between {low} and {high}")
    return value


async def get_scorecard(request: Request) -> JSONResponse:
    qa = _qa(request)
    assert qa.store is not None
    call_id = request.path_params["call_id"]
    card = await qa.store.get(call_id)
    if card is not None:
        return JSONResponse(card.model_dump(mode="json"))
    services = request.app.state.services
    if await services.store.get_call(call_id) is not None:
        return error(404, "not_scored", f"call {call_id} is stored but not scored yet; retry shortly")
    return error(404, "unknown_call", f"no stored call {call_id}")


async def list_scorecards(request: Request) -> JSONResponse:
    qa = _qa(request)
    assert qa.store is not None
    try:
        since, until = _period(request)
        limit = _int(request, "limit", 100, 1, 1000)
        offset = _int(request, "offset", 0, 0, 10**9)
    except ValueError as exc:
        return error(422, "invalid_query", str(exc))
    full = request.query_params.get("full", "false").lower() in ("1", "true", "yes")
    cards = await qa.store.list(
        agent_id=request.query_params.get("agent_id") or None,
        team=request.query_params.get("team") or None,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
        full=full,
    )
    return JSONResponse({"scorecards": cards, "limit": limit, "offset": offset})


async def distribution(request: Request) -> JSONResponse:
    qa = _qa(request)
    assert qa.store is not None
    try:
        since, until = _period(request)
    except ValueError as exc:
        return error(422, "invalid_query", str(exc))
    rows = await qa.store.scores(since=since, until=until)
    return JSONResponse(distributions(rows, qa.rubric.bands))


async def coaching(request: Request) -> JSONResponse:
    qa = _qa(request)
    assert qa.store is not None
    agent_id = request.path_params["agent_id"]
    try:
        since, until = _period(request)
        min_calls = _int(request, "min_calls", 2, 1, 1000)
        limit = _int(request, "limit", 2000, 1, 20000)
    except ValueError as exc:
        return error(422, "invalid_query", str(exc))
    raw = await qa.store.list(agent_id=agent_id, since=since, until=until, limit=limit, full=True)
    cards = [Scorecard.model_validate(card) for card in raw]
    if not cards:
        return error(404, "no_scorecards", f"no scorecards for agent {agent_id} in this period")
    patterns = coaching_patterns(cards, qa.rubric, min_calls=min_calls)
    overall = [card.overall_score for card in cards]
    return JSONResponse(
        {
            "agent_id": agent_id,
            "calls": len(cards),
            "mean_score": round(sum(overall) / len(overall), 1),
            "patterns": patterns,
        }
    )


async def post_calibration(request: Request) -> JSONResponse:
    qa = _qa(request)
    assert qa.store is not None
    body = await request.body()
    if len(body) > MAX_CALIBRATION_BYTES:
        return error(413, "too_large", f"calibration upload is limited to {MAX_CALIBRATION_BYTES} bytes")
    text = body.decode("utf-8", errors="replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            payload = json.loads(text)
            text = payload["csv"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return error(422, "invalid_body", 'send text/csv, or JSON {"csv": "..."}', field="csv")
    apply = request.query_params.get("apply", "true").lower() not in ("0", "false", "no")
    try:
        rows = read_human_scores(text, qa.rubric)
    except CalibrationError as exc:
        extra: dict[str, Any] = {"field": exc.field} if exc.field else {}
        return error(422, "invalid_csv", str(exc), **extra)
    scorer = qa.scoring.evidence if qa.scoring is not None else None
    report = await calibrate_stored(
        rows,
        qa.store,
        request.app.state.services.store,
        qa.rubric,
        scorer=scorer,
        apply=apply,
        min_agent_samples=qa.settings.min_agent_samples,
    )
    if not report["sample_size"]:
        return error(
            422, "no_matching_calls", "none of the calls in the CSV has a scorecard or a stored record",
            unmatched_calls=report["unmatched_calls"][:50],
        )  # fmt: skip
    return JSONResponse(report)


async def get_calibration(request: Request) -> JSONResponse:
    qa = _qa(request)
    assert qa.store is not None
    return JSONResponse({"offsets": await qa.store.offsets()})


async def get_rubric(request: Request) -> JSONResponse:
    return JSONResponse(_qa(request).rubric.model_dump(mode="json", by_alias=True))


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/qa/scorecards", list_scorecards),
        Route("/v1/qa/scorecards/{call_id}", get_scorecard),
        Route("/v1/qa/distribution", distribution),
        Route("/v1/qa/agents/{agent_id}/coaching", coaching),
        Route("/v1/qa/calibration", post_calibration, methods=["POST"]),
        Route("/v1/qa/calibration", get_calibration, methods=["GET"]),
        Route("/v1/qa/rubric", get_rubric),
    ]
