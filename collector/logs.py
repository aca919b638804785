"""Logging set-up: JSON lines on stderr (console.logs), and a throttle for repeated problems."""

from __future__ import annotations

import logging
import sys
import threading
import time

from console.logs import JsonFormatter


def configure(level: str = "INFO") -> None:
    """Send every logger (uvicorn's too) through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # One line per request would be one line per event; /metrics counts requests instead.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


class ThrottleFilter(logging.Filter):
    """Drops repeats of a record (same level and first argument, e.g. librdkafka's facility)."""

    def __init__(self, interval_s: float = 10.0) -> None:
        super().__init__()
        self._throttle = Throttle(interval_s)

    def filter(self, record: logging.LogRecord) -> bool:
        """True for the first record of its kind in the interval."""
        args = record.args if isinstance(record.args, tuple) else ()
        kind = str(args[0]) if args else str(record.msg)
        return self._throttle.allow(f"{record.levelno}:{kind}")


def librdkafka_logger() -> logging.Logger:
    """Where librdkafka's own log lines go: JSON like the rest, a reconnect loop logged once."""
    logger = logging.getLogger("collector.librdkafka")
    if not logger.filters:
        logger.addFilter(_not_a_connection_failure)
        logger.addFilter(ThrottleFilter(interval_s=30.0))
    return logger


def _not_a_connection_failure(record: logging.LogRecord) -> bool:
    """librdkafka's FAIL lines (refused, unreachable, bad password or certificate) say again what
    its error callback already said: the sink logs that, one line per reason."""
    return not (isinstance(record.args, tuple) and record.args[:1] == ("FAIL",))


class Throttle:
    """Lets one line per key through every `interval_s`, so an outage logs once, not per event."""

    def __init__(self, interval_s: float = 10.0, max_keys: int = 10_000) -> None:
        self.interval_s = interval_s
        # Keys may come from clients (their addresses): forgotten all at once past this many.
        self.max_keys = max_keys
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """True when `key` was not let through within the interval."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                return False
            if last is None and len(self._last) >= self.max_keys:
                self._last.clear()
            self._last[key] = now
            return True
