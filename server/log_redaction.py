"""Backstop: a logging filter that redacts personal data from every log line.

Nothing should log transcript text in the first place (tests check it); this catches
what slips through, e.g. a value quoted in an exception message or a traceback.
"""

from __future__ import annotations

import logging

from assist.pii import PII_KINDS, redact

LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


class RedactingFilter(logging.Filter):
    def __init__(self, kinds: tuple[str, ...] = PII_KINDS) -> None:
        super().__init__()
        self.kinds = kinds

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return True
        clean = redact(message, self.kinds)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.kinds)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.kinds)
        return True


def install(kinds: tuple[str, ...] = PII_KINDS) -> None:
    """Add the filter to the handlers of the root and uvicorn loggers (once each)."""
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter(kinds))
