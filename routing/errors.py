"""Errors the routing API turns into HTTP answers (and other extensions can catch)."""

from __future__ import annotations

from typing import Any

from server.json_body import ApiError


class RoutingError(ApiError):
    status = 400
    code = "routing_error"


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
