"""One error type for every bad input to workforce management, so the CLI and REST can say
exactly which field is wrong (HTTP 422 ``{"error": {"code", "message", "field"}}``)."""

from __future__ import annotations


class WfmInputError(ValueError):
    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid_input") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code

    def as_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body
