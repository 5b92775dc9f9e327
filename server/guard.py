"""The ASGI guard in front of every route: HTTP and WebSocket scopes are authenticated and
authorized the same way, before any endpoint (or WebSocket accept) runs.

Order: host check (open mode: loopback hosts only, against DNS rebinding) -> WebSocket Origin
allowlist (cross-site WebSocket hijacking) -> credential -> route policy (``server/policy.py``)
-> WebSocket connection limits. Refused WebSockets get an HTTP 401/403/429/503 denial
response before the handshake completes (close 1008 where the server cannot send one).
Security headers are added to every HTTP response.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import DEV_PRINCIPAL, Authenticator, Principal, is_loopback
from server.policy import POLICY, PUBLIC, TEAM_SCOPED, WS, route_keys

log = logging.getLogger(__name__)
PRINCIPAL_KEY = "callassist.principal"
SESSION_COOKIE = "callassist_session"
SUBPROTOCOL = "callassist.v1"
BEARER_PREFIX = "bearer."


def principal_of(connection: HTTPConnection) -> Principal:
    """The caller the guard let through (DEV_PRINCIPAL in open development mode)."""
    return connection.scope.get(PRINCIPAL_KEY) or DEV_PRINCIPAL  # type: ignore[no-any-return]


class RedactTokens(logging.Filter):
    """uvicorn logs request paths with their query string: never write a token to a log."""

    PATTERN = re.compile(r"((?:^|[?&])(?:token|access_token)=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.PATTERN.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = self.PATTERN.sub(r"\1[redacted]", record.msg)
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


class SecurityGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        auth: Authenticator,
        routes: Sequence[BaseRoute],
        allowed_origins: Sequence[str] = (),
        cors_origins: Sequence[str] = (),
        max_connections: int = 1000,
        max_connections_per_token: int = 100,
    ) -> None:
        self.app = app
        self.auth = auth
        self.routes = list(routes)
        self.allowed_origins = {o.rstrip("/").lower() for o in (*allowed_origins, *cors_origins)}
        self.max_connections = max_connections
        self.max_connections_per_token = max_connections_per_token
        self.open_connections: Counter[str] = Counter()

    # ------------------------------------------------------------------ entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        websocket = scope["type"] == "websocket"
        headers = _headers(scope)
        refusal = self._check(scope, headers, websocket)
        if refusal is not None:
            status, code, message = refusal
            self._count(scope, "auth_rejections", code)
            await _deny(scope, send, status, code, message, websocket)
            return
        if not websocket:
            await self.app(scope, receive, _with_security_headers(scope, headers, send))
            return
        principal: Principal | None = scope.get(PRINCIPAL_KEY)
        token_id = principal.token_id if principal is not None else "anonymous"
        if sum(self.open_connections.values()) >= self.max_connections:
            self._count(scope, "limit_rejections", "connections_total")
            await _deny(scope, send, 503, "too_many_connections", "server connection limit reached", True)
            return
        # Open mode has no credentials to tell apart; an integration key opens one socket per
        # live call (hundreds), so only the total bounds it.
        per_token = self.auth.enabled and (principal is None or principal.role != "integration")
        if per_token and self.open_connections[token_id] >= self.max_connections_per_token:
            self._count(scope, "limit_rejections", "connections_per_token")
            await _deny(
                scope, send, 429, "too_many_connections", "connection limit for this credential", True
            )
            return
        self.open_connections[token_id] += 1
        try:
            await self.app(scope, receive, _with_subprotocol(scope, send))
        finally:
            self.open_connections[token_id] -= 1
            if self.open_connections[token_id] <= 0:
                del self.open_connections[token_id]

    # ------------------------------------------------------------------ decisions

    def _check(self, scope: Scope, headers: dict[str, str], websocket: bool) -> tuple[int, str, str] | None:
        host = headers.get("host", "")
        if not self.auth.enabled and not is_loopback(_hostname(host)):
            return 403, "open_mode_loopback_only", "open development mode answers loopback host names only"
        if websocket and not self._origin_allowed(headers.get("origin"), host, scope):
            return 403, "origin_not_allowed", "this Origin may not open WebSockets here"
        unsafe = scope.get("method") not in (None, "GET", "HEAD", "OPTIONS")
        if unsafe and not self._origin_allowed(headers.get("origin"), host, scope):
            # Cross-site form/fetch writes (CSRF), even in open mode; CORS-allowed origins pass.
            return 403, "origin_not_allowed", "cross-site request refused"
        key, path_params = self._match(scope, websocket)
        if key is None:
            return None  # no route: the app answers 404/405
        roles = POLICY.get(key)
        if roles is None:  # check_policy makes this unreachable; fail closed anyway
            return 403, "forbidden", "no authorization policy for this route"
        if not self.auth.enabled:
            scope[PRINCIPAL_KEY] = DEV_PRINCIPAL
            return None
        token = _token(scope, headers, websocket)
        principal = self.auth.authenticate(token) if token else None
        if principal is not None:
            scope[PRINCIPAL_KEY] = principal
        if PUBLIC in roles:
            return None
        if principal is None:
            reason = "invalid or expired credential" if token else "a credential is required"
            return 401, "unauthenticated", reason
        if principal.role not in roles:
            return 403, "forbidden", f"role '{principal.role}' may not use this endpoint"
        if principal.teams and key not in TEAM_SCOPED:
            return 403, "forbidden", "not available to a team-scoped supervisor (it spans all teams)"
        own = path_params.get("agent_id")
        if principal.role == "agent" and own is not None and own != principal.agent_id:
            return 403, "forbidden", "an agent token may only use its own agent id"
        return None

    def _origin_allowed(self, origin: str | None, host: str, scope: Scope) -> bool:
        if origin is None:
            return True  # not a browser; it still needs a credential when auth is on
        origin = origin.rstrip("/").lower()
        if origin in self.allowed_origins:
            return True
        # Same origin. Either scheme: behind a TLS-terminating proxy the browser says https
        # while the request reaching us is http; the host part is what tells sites apart.
        return origin in (f"http://{host.lower()}", f"https://{host.lower()}")

    def _match(self, scope: Scope, websocket: bool) -> tuple[tuple[str, str] | None, dict[str, Any]]:
        for route in self.routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                if isinstance(route, Mount):
                    return route_keys(route)[0], {}
                method = WS if websocket else ("GET" if scope["method"] == "HEAD" else scope["method"])
                path = route_keys(route)[0][0]
                return (path, method), child.get("path_params", {})
        return None, {}

    @staticmethod
    def _count(scope: Scope, family: str, label: str) -> None:
        app = scope.get("app")
        services = getattr(getattr(app, "state", None), "services", None)
        if services is not None:
            getattr(services.metrics, family).labels(label).inc()


# ---------------------------------------------------------------------- helpers


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _hostname(host: str) -> str:
    return urlsplit(f"//{host}").hostname or ""


def _token(scope: Scope, headers: dict[str, str], websocket: bool) -> str | None:
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    if websocket:
        for protocol in scope.get("subprotocols") or []:
            if protocol.startswith(BEARER_PREFIX):
                return str(protocol[len(BEARER_PREFIX) :])
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0]
    cookie = headers.get("cookie")
    if cookie:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie)
        except Exception:  # a malformed cookie header is no credential
            return None
        if SESSION_COOKIE in jar:
            return jar[SESSION_COOKIE].value
    return None


async def _deny(scope: Scope, send: Send, status: int, code: str, message: str, websocket: bool) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="callassist"'))
    if not websocket:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": code})


def _with_subprotocol(scope: Scope, send: Send) -> Send:
    """A client that offered ``callassist.v1`` (with its bearer token) gets it echoed — never the token."""
    offered = SUBPROTOCOL in (scope.get("subprotocols") or [])

    async def wrapped(message: Message) -> None:
        if offered and message["type"] == "websocket.accept" and not message.get("subprotocol"):
            message = {**message, "subprotocol": SUBPROTOCOL}
        await send(message)

    return wrapped


def _with_security_headers(scope: Scope, request_headers: dict[str, str], send: Send) -> Send:
    path: str = scope.get("path", "")

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {k.lower() for k, _ in headers}
            headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
            content_type = dict(headers).get(b"content-type", b"")
            if content_type.startswith(b"text/html"):
                host = request_headers.get("host", "")
                csp = (
                    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                    f"img-src 'self' data:; connect-src 'self' ws://{host} wss://{host}; "
                    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
                )
                headers += [
                    (b"content-security-policy", csp.encode("latin-1")),
                    (b"x-frame-options", b"DENY"),
                ]
            elif not path.startswith("/static/") and b"cache-control" not in present:
                headers.append((b"cache-control", b"no-store"))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped
