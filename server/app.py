"""App factory: one lifespan owns every resource; models load in the background so
``/healthz`` can answer 503 while loading and 200 once ready."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from assist.config import AssistConfig
from assist.embedding import Embedder
from server import log_redaction, ws
from server.auth import OPEN_MODE_BANNER, Authenticator, Principal, check_bind
from server.auth_api import auth_routes
from server.bus import create_bus
from server.bus_metrics import bus_metrics
from server.calls import CallManager
from server.extensions import Extension, default_extensions
from server.guard import SecurityGuard, install_log_redaction, principal_of
from server.json_body import error
from server.metrics import GcPauseTimer, Metrics, gauge_family
from server.policy import check_policy
from server.registry import LiveRegistry, MemoryRegistry
from server.retention import purge_once, run_retention
from server.scoping import may_see
from server.services import Services
from server.settings import Settings
from server.store import Database, SqliteCallStore

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
RELAY_INTERVAL_S = 5.0


def _create_registry(settings: Settings) -> LiveRegistry:
    if settings.bus_url.startswith("memory://"):
        return MemoryRegistry()
    from server.redis_registry import RedisRegistry

    return RedisRegistry(settings.bus_url, process=settings.process_name, ttl_s=settings.registry_ttl_seconds)


async def _load_models(services: Services, embedder: Embedder | None) -> None:
    """Blocking model work runs in a thread; the event loop keeps serving /healthz."""
    from assist.embedding import create_embedder
    from assist.engine import AssistEngine, EngineStats

    metrics, settings = services.metrics, services.settings
    stats = EngineStats(
        on_batch=lambda size, seconds: (
            metrics.batch_size.observe(size),
            metrics.batch_seconds.observe(seconds),
        ),
        on_finding=lambda f: (
            metrics.analysis_latency.labels(f.name).observe(f.elapsed_ms / 1000)
            if f.ok
            else metrics.analysis_failures.labels(f.name, f.error or "error").inc()
        ),
    )

    def build() -> AssistEngine:
        model = embedder or create_embedder(
            settings.embedder,
            settings.model_path,
            cache_dir=settings.cache_dir,
            threads=settings.model_threads,
        )
        services.embedder = model
        return AssistEngine.build(
            services.config,
            model,
            cache_dir=settings.cache_dir,
            knowledge_dir=settings.kb_dir,
            analysis_budget_s=settings.analysis_timeout_ms / 1000,
            max_batch=settings.embed_batch_max,
            stats=stats,
            model_thread_priority=settings.model_priority(),
        )

    try:
        engine = await asyncio.to_thread(build)
    except Exception as exc:
        services.load_error = f"{type(exc).__name__}: {exc}"
        log.exception("loading models failed")
        return
    engine.start()
    services.engine = engine
    services.calls = CallManager(engine, services.bus, services.store, services.registry, metrics, settings)
    if settings.gc_freeze:
        # Models, indexes and config are long-lived: keep full collections from re-walking them.
        gc.collect()
        gc.freeze()
    services.ready_after = time.monotonic() - services.started
    services.ready.set()
    log.info("ready in %.1f s", services.ready_after)


async def _relay(services: Services) -> None:
    """Outbox relay: stored calls whose call.ended missed the bus are announced again."""
    while True:
        await asyncio.sleep(RELAY_INTERVAL_S)
        if services.calls is not None:
            try:
                await services.calls.relay_unpublished()
            except Exception as exc:  # bus or store down: the next round retries
                log.warning("outbox relay failed (%s); retrying", exc)


def _bus_metrics(services: Services) -> Iterable[Metric]:
    yield from bus_metrics(services.bus)
    # Leak checks (bench/soak.py): tasks left behind after every call has ended.
    yield gauge_family("callassist_asyncio_tasks", "Asyncio tasks alive in this process", _task_count())
    if services.engine is not None:
        yield gauge_family(
            "callassist_embed_queue_depth", "Utterances waiting for the embedder", services.engine.pending
        )


def _task_count() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # scraped outside the loop
        return 0


def create_app(
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    config: AssistConfig | None = None,
    extensions: list[Extension] | None = None,
) -> Starlette:
    """Build the app. Tests pass a shared ``embedder`` so each app need not reload the model."""
    settings = settings or Settings()
    config = config or AssistConfig.load(settings.config)
    extensions = default_extensions() if extensions is None else extensions
    auth = Authenticator.from_settings(settings)  # a bad auth file stops the start here
    check_bind(settings.host, auth.enabled)
    install_log_redaction()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        log_redaction.install()  # the handlers exist by now (uvicorn configured logging first)
        metrics = Metrics()
        bus = create_bus(settings.bus_url)
        db = Database(settings.store_path)
        store = SqliteCallStore(db)
        services = Services(settings, metrics, bus, db, store, _create_registry(settings), config)
        app.state.services = services
        gc_timer = GcPauseTimer(metrics.gc_pauses, metrics.gc_collected)
        gc.callbacks.append(gc_timer)
        thresholds = gc.get_threshold()
        gc.set_threshold(thresholds[0], thresholds[1], settings.gc_full_after)
        metrics.add_collector(lambda: _bus_metrics(services))
        await db.open()
        await store.open()
        await bus.start()
        await services.registry.start()
        loader = asyncio.create_task(_load_models(services, embedder), name="load-models")
        relay = asyncio.create_task(_relay(services), name="outbox-relay")
        if not auth.enabled:
            log.warning(OPEN_MODE_BANNER)
        if settings.retention_days > 0:
            log.info("retention: stored calls are deleted %g days after they ended", settings.retention_days)
        else:
            log.info("retention off: stored calls are kept until deleted (CALLASSIST_RETENTION_DAYS)")
        started: list[Extension] = []
        retention: asyncio.Task[None] | None = None
        try:
            for extension in extensions:
                services.extensions[extension.name] = extension
                await extension.start(services)
                started.append(extension)
            try:  # expired calls go before the first request (the extensions' tables exist now)
                await purge_once(services)
            except Exception as exc:
                log.warning("retention purge at start failed (%s); the periodic purge retries", exc)
            retention = asyncio.create_task(run_retention(services), name="retention")
            yield {"services": services}
        finally:
            gc.callbacks.remove(gc_timer)
            gc.set_threshold(*thresholds)
            for task in (loader, relay, *([retention] if retention else [])):
                task.cancel()
            await asyncio.gather(loader, relay, *([retention] if retention else []), return_exceptions=True)
            if services.calls is not None:
                await services.calls.close()
            for extension in reversed(started):
                try:
                    await extension.stop()
                except Exception:
                    log.exception("extension %s failed to stop", extension.name)
            if services.engine is not None:
                await services.engine.close()
            await services.registry.close()
            await bus.close()
            await db.close()

    routes = [route for extension in extensions for route in extension.routes()] + _routes()
    routes += auth_routes(
        auth, session_ttl_s=settings.session_ttl_seconds, token_ttl_s=settings.token_ttl_seconds
    )
    check_policy(routes)  # every route declares who may call it (server/policy.py)
    middleware = [
        Middleware(
            SecurityGuard,
            auth=auth,
            routes=routes,
            allowed_origins=settings.allowed_origins,
            cors_origins=settings.cors_origins,
            max_connections=settings.max_connections,
            max_connections_per_token=settings.max_connections_per_token,
        )
    ]
    if settings.cors_origins:  # closed unless configured
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["Authorization", "Content-Type"],
            ),
        )
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.auth = auth
    return app


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def healthz(request: Request) -> JSONResponse:
    services = _services(request)
    if services.load_error:
        return JSONResponse({"status": "failed", "error": services.load_error}, status_code=503)
    if not services.ready.is_set():
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse(
        {
            "status": "ready",
            "ready_after_s": round(services.ready_after or 0.0, 2),
            "process": services.settings.process_name,
            "bus": services.bus.url.split("@")[-1],
            "bus_connected": services.bus.connected,
            "live_calls": len(services.calls.calls) if services.calls else 0,
            # As the kernel reports it: "normal" although "idle" was asked means it was refused.
            "model_thread_priority": services.engine.model_thread_priority if services.engine else None,
        }
    )


async def metrics_endpoint(request: Request) -> Response:
    return Response(_services(request).metrics.render(), media_type="text/plain; version=0.0.4")


async def get_call(request: Request) -> JSONResponse:
    services = _services(request)
    call_id = request.path_params["call_id"]
    record = await services.store.get_call(call_id)
    principal = principal_of(request)
    if record is not None and not may_see(principal, record):
        record = None  # another agent's or team's call: as if it did not exist
    if record is None:
        session = services.calls.local_session(call_id) if services.calls else None
        live = session.summary() if session is not None else None
        if live is None:  # live on another process? The cluster-wide registry knows.
            agent = principal.agent_id if principal.role == "agent" else None
            live = next(
                (c for c in await services.registry.snapshot(agent_id=agent) if c["call_id"] == call_id), None
            )
        if live is not None and may_see(principal, live):
            return error(409, "call_live", f"call {call_id} is still live", call=live)
        return error(404, "unknown_call", f"no stored call {call_id}")
    return JSONResponse(record)


def _float_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)  # type: ignore[arg-type]
    except ValueError:
        from datetime import UTC, datetime

        try:
            moment = datetime.fromisoformat(raw)  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"'{name}' must be unix seconds or an ISO 8601 date-time") from None
        # Without an offset the time is UTC, whatever the server's local time zone.
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


async def list_calls(request: Request) -> JSONResponse:
    services = _services(request)
    try:
        since, until = _float_param(request, "since"), _float_param(request, "until")
        limit = int(request.query_params.get("limit", 100))
        offset = int(request.query_params.get("offset", 0))
    except ValueError as exc:
        return error(422, "invalid_query", str(exc))
    if not 1 <= limit <= 1000 or offset < 0:
        return error(422, "invalid_query", "'limit' must be 1..1000 and 'offset' >= 0")
    agent_id = request.query_params.get("agent_id")
    principal = principal_of(request)
    if principal.role == "agent":
        if agent_id not in (None, principal.agent_id):
            return error(403, "forbidden", "an agent token sees only its own calls")
        agent_id = principal.agent_id
    calls = await services.store.list_calls(
        since=since,
        until=until,
        agent_id=agent_id,
        teams=principal.teams or None,
        customer_id=request.query_params.get("customer_id"),
        limit=limit,
        offset=offset,
    )
    return JSONResponse({"calls": calls, "limit": limit, "offset": offset})


async def live_calls(request: Request) -> JSONResponse:
    principal = principal_of(request)
    registry = _services(request).registry
    if principal.role == "agent":
        return JSONResponse({"calls": await registry.snapshot(agent_id=principal.agent_id)})
    return JSONResponse({"calls": [c for c in await registry.snapshot() if may_see(principal, c)]})


async def run_demo(request: Request) -> JSONResponse:
    """Replay the bundled scripted calls through this server's own WebSocket protocol."""
    from server.demo import load_demo_calls, replay_calls

    services = _services(request)
    if not services.ready.is_set():
        return error(503, "loading", "models are still loading")
    speed = float(request.query_params.get("speed", "1"))
    if not 0.1 <= speed <= 100:
        return error(422, "invalid_query", "'speed' must be between 0.1 and 100")
    base = f"ws://{request.url.hostname}:{request.url.port}"
    scripts = load_demo_calls()
    auth: Authenticator = request.app.state.auth
    # The replay is an integration client of this very server: it gets its own short-lived token.
    token = auth.mint(Principal("demo-replay", "integration"), 3600)[0] if auth.enabled else None
    task = asyncio.create_task(replay_calls(base, scripts, speed=speed, token=token), name="demo-replay")
    services.tasks.add(task)
    task.add_done_callback(services.tasks.discard)
    return JSONResponse({"started": [s.id for s in scripts], "speed": speed}, status_code=202)


def _page(name: str) -> Route:
    async def page(request: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / name)

    return Route("/" if name == "index.html" else f"/{name.removesuffix('.html')}", page, name=name)


def _routes() -> list[BaseRoute]:
    return [
        _page("index.html"),
        _page("agent.html"),
        _page("supervisor.html"),
        Route("/healthz", healthz),
        Route("/metrics", metrics_endpoint),
        Route("/v1/calls", list_calls),
        Route("/v1/calls/{call_id}", get_call),
        Route("/v1/live/calls", live_calls),
        Route("/v1/demo/run", run_demo, methods=["POST"]),
        WebSocketRoute("/v1/calls/{call_id}", ws.call_socket),
        WebSocketRoute("/v1/agents/{agent_id}", ws.agent_socket),
        WebSocketRoute("/v1/supervisor", ws.supervisor_socket),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
