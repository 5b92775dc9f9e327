"""Errors the analytics API turns into HTTP answers ``{"error": {"code", "message", "field"?}}``."""

from __future__ import annotations

from server.json_body import ApiError


class AnalyticsError(ApiError):
    status = 400
    code = "analytics_error"


class InvalidInput(AnalyticsError):
    status = 422
    code = "invalid_input"


class NotFound(AnalyticsError):
    status = 404
    code = "not_found"


class NotReady(AnalyticsError):
    status = 503
    code = "not_ready"
