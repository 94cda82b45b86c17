"""Logging that cannot leak a link token, a code or a password into a log file (R70)."""

from __future__ import annotations

import logging
import re

#: Path segments that are credentials: set-up links now, recipient links later.
SECRET_PATHS = re.compile(r"(/(?:setup|r|link)/)[A-Za-z0-9_\-]{16,}")
SECRET_PARAMS = re.compile(r"((?:token|code|password|otp)=)[^&\s\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    return SECRET_PARAMS.sub(r"\1[redacted]", SECRET_PATHS.sub(r"\1[redacted]", text))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction() -> None:
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", "transitions"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
