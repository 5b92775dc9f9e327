"""Auth endpoints: browser sessions (HttpOnly cookie) and short-lived tokens for widgets.

``POST /v1/auth/session`` exchanges an API key or JWT for a cookie holding a short-lived
signed token, so the pages need no secret in their static files; the pages' WebSockets
(same origin) then carry the cookie. ``POST /v1/auth/token`` lets an agent desktop's
backend (integration or admin credential) mint a short-lived agent token for an embedded
widget on another origin.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from server.auth import ROLES, Authenticator, Principal
from server.guard import SESSION_COOKIE, principal_of
from server.json_body import error, json_object

MAX_BODY_BYTES = 16 * 1024
_ID = re.compile(r"^[A-Za-z0-9._:@\-]{1,128}$")


_error = error


async def _body(request: Request) -> dict[str, Any] | JSONResponse:
    return await json_object(request, MAX_BODY_BYTES, empty=True)


def auth_routes(auth: Authenticator, *, session_ttl_s: float, token_ttl_s: float) -> list[BaseRoute]:
    async def create_session(request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, JSONResponse):
            return body
        if not auth.enabled:
            return JSONResponse({"mode": "open", "principal": principal_of(request).public()})
        credential = body.get("credential")
        if not isinstance(credential, str) or not credential:
            return _error(422, "missing_field", 'send {"credential": "<API key or token>"}')
        principal = auth.authenticate(credential)
        if principal is None:
            return _error(401, "unauthenticated", "invalid or expired credential")
        token, expires = auth.mint(principal, session_ttl_s, via="session")
        response = JSONResponse({"mode": "auth", "principal": principal.public(), "expires_at": expires})
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(session_ttl_s),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def end_session(request: Request) -> Response:
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse(
            {"mode": "auth" if auth.enabled else "open", "principal": principal_of(request).public()}
        )

    async def mint_token(request: Request) -> JSONResponse:
        caller = principal_of(request)
        body = await _body(request)
        if isinstance(body, JSONResponse):
            return body
        role, agent_id = body.get("role", "agent"), body.get("agent_id")
        if role not in ROLES:
            return _error(422, "invalid_role", f"role must be one of {', '.join(ROLES)}")
        if caller.role != "admin" and role != "agent":
            return _error(403, "forbidden", "an integration credential may only mint agent tokens")
        if role == "agent" and (not isinstance(agent_id, str) or not _ID.match(agent_id)):
            return _error(422, "missing_field", "an agent token needs a valid 'agent_id'")
        if role != "agent" and agent_id is not None:
            return _error(422, "invalid_field", "only agent tokens carry an agent_id")
        try:
            ttl = float(body.get("ttl_seconds", token_ttl_s))
        except (TypeError, ValueError):
            return _error(422, "invalid_field", "'ttl_seconds' must be a number")
        if not 1 <= ttl <= token_ttl_s:
            return _error(422, "invalid_field", f"'ttl_seconds' must be 1..{int(token_ttl_s)}")
        name = body.get("name") or (f"{caller.name}/{agent_id}" if agent_id else caller.name)
        token, expires = auth.mint(Principal(str(name)[:128], role, agent_id), ttl)
        return JSONResponse({"token": token, "role": role, "agent_id": agent_id, "expires_at": expires})

    return [
        Route("/v1/auth/session", create_session, methods=["POST"]),
        Route("/v1/auth/session", end_session, methods=["DELETE"]),
        Route("/v1/auth/whoami", whoami, methods=["GET"]),
        Route("/v1/auth/token", mint_token, methods=["POST"]),
    ]
