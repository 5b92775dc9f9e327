"""Errors the routing API turns into HTTP answers (and other extensions can catch)."""

from __future__ import annotations

from typing import Any


class RoutingError(Exception):
    status = 400
    code = "routing_error"

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


class InvalidInput(RoutingError):
    status = 422
    code = "invalid_input"


class NotFound(RoutingError):
    status = 404
    code = "not_found"


class Conflict(RoutingError):
    status = 409
    code = "conflict"

    def __init__(self, message: str, *, code: str = "conflict", **extra: Any) -> None:
        super().__init__(message, **extra)
        self.code = code


class StateUnavailable(RoutingError):
    status = 503
    code = "routing_state_unavailable"


class QueueFull(RoutingError):
    status = 503
    code = "queue_full"
