"""Errors the analytics API turns into HTTP answers ``{"error": {"code", "message", "field"?}}``."""

from __future__ import annotations

from typing import Any


class AnalyticsError(Exception):
    status = 400
    code = "analytics_error"

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


class InvalidInput(AnalyticsError):
    status = 422
    code = "invalid_input"


class NotFound(AnalyticsError):
    status = 404
    code = "not_found"


class NotReady(AnalyticsError):
    status = 503
    code = "not_ready"
