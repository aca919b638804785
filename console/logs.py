"""Structured logs: one JSON object per line, with the fields passed through `extra=`."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from console.timestamps import rfc3339_at

# Attributes every LogRecord has (and uvicorn's coloured copy of the message); anything else came
# in through `extra=` and is logged as a field.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """`{"ts": ..., "level": ..., "logger": ..., "message": ..., **extra}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a JSON line."""
        line: dict[str, Any] = {
            "ts": rfc3339_at(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((key, value) for key, value in record.__dict__.items() if key not in _STANDARD)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()
