"""What the tools tell a person: progress lines on stderr, and plain-text tables."""

from __future__ import annotations

import sys
import time

from console.tables import table

__all__ = ["say", "table"]


def say(message: str, *, stamp: bool = False) -> None:
    """One progress line on stderr, at once; with `stamp`, the wall-clock time before it."""
    if stamp:
        message = f"[{time.strftime('%H:%M:%S')}] {message}"
    print(message, file=sys.stderr, flush=True)
