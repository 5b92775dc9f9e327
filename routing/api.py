"""HTTP API under /v1/routing (see docs/routing.md for the bodies and answers)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from routing.errors import InvalidInput, RoutingError, StateUnavailable
from routing.router import Router

MAX_BODY_BYTES = 64 * 1024

Handler = Callable[[Request, Router], Awaitable[JSONResponse]]


def _router(request: Request) -> Router:
    extension = request.app.state.services.extensions.get("routing")
    router = getattr(extension, "router", None)
    if router is None:
        raise StateUnavailable("routing is not running")
    return router  # type: ignore[no-any-return]


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"body is not JSON: {exc.msg}") from None


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        try:
            return await handler(request, _router(request))
        except RoutingError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        except (ConnectionError, TimeoutError, OSError) as exc:
            error = StateUnavailable(f"routing state unavailable: {type(exc).__name__}")
            return JSONResponse(error.body(), status_code=error.status)

    return endpoint


async def put_agent(request: Request, router: Router) -> JSONResponse:
    return JSONResponse(await router.put_agent(request.path_params["agent_id"], await _json(request)))


async def get_agent(request: Request, router: Router) -> JSONResponse:
    return JSONResponse(await router.get_agent(request.path_params["agent_id"]))


async def list_agents(request: Request, router: Router) -> JSONResponse:
    return JSONResponse({"agents": await router.agents()})


async def post_call(request: Request, router: Router) -> JSONResponse:
    result = await router.route_call(await _json(request))
    return JSONResponse(result, status_code=200 if result["status"] == "assigned" else 202)


async def get_call(request: Request, router: Router) -> JSONResponse:
    return JSONResponse(await router.get_call(request.path_params["call_id"]))


async def delete_call(request: Request, router: Router) -> JSONResponse:
    return JSONResponse(await router.abandon(request.path_params["call_id"]))


async def accept_callback(request: Request, router: Router) -> JSONResponse:
    body = await _json(request)
    number = body.get("number") if isinstance(body, dict) else None
    if number is not None and (not isinstance(number, str) or len(number) > 64):
        raise InvalidInput("number must be a string of at most 64 characters", field="number")
    return JSONResponse(await router.accept_callback(request.path_params["call_id"], number))


async def get_queue(request: Request, router: Router) -> JSONResponse:
    try:
        limit = int(request.query_params.get("limit", 1000))
    except ValueError:
        limit = -1
    if not 1 <= limit <= 10_000:
        raise InvalidInput("'limit' must be 1..10000", field="limit")
    return JSONResponse(await router.queue(limit))


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/routing/agents", _endpoint(list_agents), methods=["GET"]),
        Route("/v1/routing/agents/{agent_id}", _endpoint(put_agent), methods=["PUT"]),
        Route("/v1/routing/agents/{agent_id}", _endpoint(get_agent), methods=["GET"]),
        Route("/v1/routing/calls", _endpoint(post_call), methods=["POST"]),
        Route("/v1/routing/calls/{call_id}", _endpoint(get_call), methods=["GET"]),
        Route("/v1/routing/calls/{call_id}", _endpoint(delete_call), methods=["DELETE"]),
        Route("/v1/routing/calls/{call_id}/callback", _endpoint(accept_callback), methods=["POST"]),
        Route("/v1/routing/queue", _endpoint(get_queue), methods=["GET"]),
    ]
