"""JSON request bodies and error answers shared by the HTTP endpoints."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


def error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


async def json_object(
    request: Request, max_bytes: int, *, empty: bool = False
) -> dict[str, Any] | JSONResponse:
    """The body as a JSON object, or the error answer (413, 400); ``empty``: no body means {}."""
    raw = await request.body()
    if len(raw) > max_bytes:
        return error(413, "too_large", f"body over {max_bytes} bytes")
    if empty and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return error(400, "invalid_json", "body must be a JSON object")
    if not isinstance(body, dict):
        return error(400, "not_an_object", "body must be a JSON object")
    return body


class ApiError(Exception):
    """An error an API answers as ``{"error": {"code", "message", "field"?, ...}}`` with ``status``."""

    status = 400
    code = "error"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, **self.extra}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}
