"""Knowledge-base REST API and upkeep, plugged in as a server extension.

- ``GET /v1/kb/articles``, ``GET|PUT|DELETE /v1/kb/articles/{id}``, ``POST /v1/kb/search``,
  ``GET /v1/kb/stats``.
- A PUT or DELETE is searchable by live calls when it returns (the index is updated in
  place, see ``kb_index.index``). Edits made by other processes or the CLI are picked up
  from the store's change log every ``poll_interval_s``.
- The FAISS snapshot is rewritten in the background after edits, so restarts stay fast.

All blocking work (embedding, SQLite, FAISS) runs on a small dedicated executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client.core import Metric
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from kb_index.articles import MAX_BODY_CHARS, ArticleError, make_article
from kb_index.index import Filters, KnowledgeIndex
from kb_index.ingest import html_to_markdown
from kb_index.store import StoredArticle
from server.metrics import counter_family, gauge_family

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_REQUEST_BYTES = 4 * MAX_BODY_CHARS + 64 * 1024  # a maximal article in 4-byte UTF-8, plus fields
MAX_QUERY_CHARS = 2000
MAX_K = 50
ARTICLE_FIELDS = {"id", "title", "body", "url", "tags", "product", "language", "format"}


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    from server.app import error

    return error(status, code, message, **({"field": field} if field else {}))


def _summary(stored: StoredArticle, chunks: int | None = None) -> dict[str, Any]:
    article = stored.article
    data: dict[str, Any] = {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "tags": list(article.tags),
        "product": article.product,
        "language": article.language,
        "content_hash": stored.content_hash,
        "source": "folder" if stored.source else "api",
        "updated_at": stored.updated_at,
    }
    if chunks is not None:
        data["chunks"] = chunks
    return data


def _filters(raw: Any, tags: Iterable[str] = ()) -> Filters:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ArticleError("'filters' must be an object", field="filters")
    unknown = set(raw) - {"product", "language", "tags"}
    if unknown:
        raise ArticleError(f"unknown filter(s) {sorted(unknown)}", field="filters")
    tag_list = raw.get("tags") or list(tags)
    if isinstance(tag_list, str):
        tag_list = [tag_list]
    if not isinstance(tag_list, list) or not all(isinstance(t, str) for t in tag_list):
        raise ArticleError("'filters.tags' must be a list of strings", field="filters.tags")
    for key in ("product", "language"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ArticleError(f"'filters.{key}' must be a string", field=f"filters.{key}")
    return Filters(product=raw.get("product"), language=raw.get("language"), tags=tuple(tag_list))


class KnowledgeBaseExtension:
    name = "kb"

    def __init__(
        self, *, poll_interval_s: float = 0.5, snapshot_interval_s: float = 30.0, max_in_flight: int = 16
    ) -> None:
        self.poll_interval_s = poll_interval_s
        self.snapshot_interval_s = snapshot_interval_s
        self._max_in_flight = max_in_flight
        self._services: Services | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._task: asyncio.Task[None] | None = None
        self.updates = {"put": 0, "delete": 0, "refresh": 0}

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, services: Services) -> None:
        self._services = services
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="callassist-kb")
        self._slots = asyncio.Semaphore(self._max_in_flight)
        services.metrics.add_collector(self._metrics)
        self._task = asyncio.create_task(self._upkeep(), name="kb-upkeep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        index = self._index()
        if index is not None and index.dirty and self._executor is not None:
            await self._run(index.save_snapshot)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    async def _upkeep(self) -> None:
        """Follow other processes' edits; rewrite the vector snapshot after changes."""
        assert self._services is not None
        await self._services.ready.wait()
        last_snapshot = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_interval_s)
            index = self._index()
            if index is None:
                continue
            try:
                self.updates["refresh"] += await self._run(index.refresh)
                if index.dirty and time.monotonic() - last_snapshot >= self.snapshot_interval_s:
                    await self._run(index.save_snapshot)
                    last_snapshot = time.monotonic()
            except Exception:
                log.warning("knowledge-base upkeep failed; retrying", exc_info=True)

    def _index(self) -> KnowledgeIndex | None:
        engine = self._services.engine if self._services else None
        return engine.knowledge if engine is not None else None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._executor is not None and self._slots is not None
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _metrics(self) -> Iterable[Metric]:
        index = self._index()
        if index is not None:
            yield gauge_family(
                "callassist_kb_articles", "Articles in the knowledge base", index.article_count
            )
            yield gauge_family("callassist_kb_chunks", "Chunks in the knowledge-base index", len(index))
        yield counter_family("callassist_kb_updates", "Knowledge-base changes applied", self.updates, "kind")

    # -- routes -----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/kb/articles", self._guard(self.list_articles), methods=["GET"]),
            Route("/v1/kb/articles/{article_id}", self._guard(self.get_article), methods=["GET"]),
            Route("/v1/kb/articles/{article_id}", self._guard(self.put_article), methods=["PUT"]),
            Route("/v1/kb/articles/{article_id}", self._guard(self.delete_article), methods=["DELETE"]),
            Route("/v1/kb/search", self._guard(self.search), methods=["POST"]),
            Route("/v1/kb/stats", self._guard(self.stats), methods=["GET"]),
        ]

    def _guard(
        self, handler: Callable[[Request, KnowledgeIndex], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            index = self._index()
            if index is None:
                return _error(503, "loading", "the knowledge base is still loading")
            try:
                return await handler(request, index)
            except ArticleError as exc:
                status = 413 if exc.code == "article_too_large" else 422
                return _error(status, exc.code, str(exc), exc.field)

        return endpoint

    async def _json(self, request: Request) -> dict[str, Any] | JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
            return _error(413, "request_too_large", f"request body over {MAX_REQUEST_BYTES} bytes")
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > MAX_REQUEST_BYTES:
                return _error(413, "request_too_large", f"request body over {MAX_REQUEST_BYTES} bytes")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "invalid_json", "request body must be a JSON object")
        if not isinstance(data, dict):
            return _error(400, "invalid_json", "request body must be a JSON object")
        return data

    async def list_articles(self, request: Request, index: KnowledgeIndex) -> Response:
        params = request.query_params
        try:
            limit = int(params.get("limit", 100))
            offset = int(params.get("offset", 0))
        except ValueError:
            return _error(422, "invalid_query", "'limit' and 'offset' must be integers")
        if not 1 <= limit <= 1000 or offset < 0:
            return _error(422, "invalid_query", "'limit' must be 1..1000 and 'offset' >= 0")
        filters = Filters(params.get("product"), params.get("language"), tuple(params.getlist("tag")))
        items = index.list_articles(filters)
        return JSONResponse(
            {
                "articles": [_summary(s) for s in items[offset : offset + limit]],
                "total": len(items),
                "limit": limit,
                "offset": offset,
            }
        )

    async def get_article(self, request: Request, index: KnowledgeIndex) -> Response:
        article_id = request.path_params["article_id"]
        stored = index.get(article_id)
        if stored is None:
            return _error(404, "unknown_article", f"no article {article_id!r}")
        chunks = index.article_chunks(article_id)
        return JSONResponse(
            {
                **_summary(stored, len(chunks)),
                "body": stored.article.body,
                "anchors": list(dict.fromkeys(c.anchor for c in chunks)),
            }
        )

    async def put_article(self, request: Request, index: KnowledgeIndex) -> Response:
        article_id = request.path_params["article_id"]
        data = await self._json(request)
        if isinstance(data, JSONResponse):
            return data
        unknown = set(data) - ARTICLE_FIELDS
        if unknown:
            raise ArticleError(f"unknown field(s) {sorted(unknown)}", field=sorted(unknown)[0])
        if "id" in data and data["id"] != article_id:
            raise ArticleError("'id' in the body differs from the id in the path", field="id")
        for key in ("title", "body"):
            if key in data and not isinstance(data[key], str):
                raise ArticleError(f"'{key}' must be a string", field=key)
        fmt = data.pop("format", "markdown")
        if fmt not in ("markdown", "html", "text"):
            raise ArticleError("'format' must be markdown, html or text", field="format")
        if fmt == "html" and isinstance(data.get("body"), str):
            data["body"], _ = html_to_markdown(data["body"])
        article = make_article({**data, "id": article_id}, source=f"article {article_id!r}")
        created, report = await self._run(index.upsert, article)
        self.updates["put"] += 1
        stored = index.get(article_id)
        assert stored is not None
        return JSONResponse(
            {
                "article": _summary(stored, len(index.article_chunks(article_id))),
                "created": created,
                "changed": bool(report.added or report.updated),
                "chunks_embedded": report.chunks_embedded,
                "chunks_cached": report.chunks_cached,
            },
            status_code=201 if created else 200,
        )

    async def delete_article(self, request: Request, index: KnowledgeIndex) -> Response:
        article_id = request.path_params["article_id"]
        if not await self._run(index.delete, article_id):
            return _error(404, "unknown_article", f"no article {article_id!r}")
        self.updates["delete"] += 1
        return Response(status_code=204)

    async def search(self, request: Request, index: KnowledgeIndex) -> Response:
        data = await self._json(request)
        if isinstance(data, JSONResponse):
            return data
        assert self._services is not None
        defaults = self._services.config.knowledge_base
        query = data.get("query")
        if not isinstance(query, str) or not query.strip():
            return _error(422, "invalid_query", "'query' is required and must be a non-empty string", "query")
        if len(query) > MAX_QUERY_CHARS:
            return _error(413, "query_too_large", f"'query' is over {MAX_QUERY_CHARS} characters", "query")
        k = data.get("k", defaults.top_k)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            return _error(422, "invalid_query", f"'k' must be an integer 1..{MAX_K}", "k")
        min_score = data.get("min_score", defaults.min_score)
        if not isinstance(min_score, int | float) or isinstance(min_score, bool) or not -1 <= min_score <= 1:
            return _error(422, "invalid_query", "'min_score' must be a number in [-1, 1]", "min_score")
        mode = data.get("mode", defaults.search)
        if mode not in ("hybrid", "dense", "lexical"):
            return _error(422, "invalid_query", "'mode' must be hybrid, dense or lexical", "mode")
        filters = _filters(data.get("filters"))
        started = time.perf_counter()
        hits = await self._run(
            lambda: index.search_text([query], k=k, min_score=float(min_score), filters=filters, mode=mode)[0]
        )
        return JSONResponse(
            {
                "query": query,
                "mode": mode,
                "hits": [h.to_api_dict() for h in hits],
                "took_ms": round((time.perf_counter() - started) * 1000, 2),
            }
        )

    async def stats(self, request: Request, index: KnowledgeIndex) -> Response:
        return JSONResponse(await self._run(index.stats))
