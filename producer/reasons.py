"""Why events were rejected or failed: `<status> <code>` and the first message of each reason."""

from __future__ import annotations

import http
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

_MESSAGE_CHARS = 200
# A request whose answer was one of these will never succeed however often it is sent again.
TURNED_AWAY = frozenset({401, 403, 404})


@dataclass
class Reason:
    outcome: str  # "rejected" or "failed"
    count: int
    message: str  # the first one seen


@dataclass
class Reasons:
    """Counts by reason, keeping the first message of each."""

    by_key: dict[str, Reason] = field(default_factory=dict)

    def note(self, outcome: str, key: str, message: str, n: int = 1) -> None:
        reason = self.by_key.get(key)
        if reason is None:
            self.by_key[key] = Reason(outcome, n, message)
        else:
            reason.count += n

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {
            key: {"outcome": r.outcome, "count": r.count, "message": r.message}
            for key, r in sorted(self.by_key.items(), key=lambda kv: -kv[1].count)
        }

    def line(self) -> str:
        """`404 not_found 12 "Not Found"; ...` for the progress line; empty when none."""
        return "; ".join(
            f'{key} {r.count} "{r.message}"'
            for key, r in sorted(self.by_key.items(), key=lambda kv: -kv[1].count)
        )


def _code_of_status(status: int) -> str:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        return "http_error"
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


def _error_of(value: Any) -> tuple[str | None, str | None]:
    """The collector's `{"error": {"code", "message"}}`, or a framework's `{"detail": ...}`."""
    if not isinstance(value, dict):
        return None, None
    error = value.get("error")
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        return (
            code if isinstance(code, str) else None,
            message if isinstance(message, str) else None,
        )
    detail = value.get("detail")
    if isinstance(detail, str):
        return None, detail
    if detail is not None:
        return None, orjson.dumps(detail).decode()
    return None, None


def of_answer(status: int, body: bytes) -> tuple[str, str]:
    """The reason key (`422 invalid_event`, `404 not_found`, `ConnectError`) and its message.

    Status 0 is no answer at all; the body is then the error, `ConnectError: ...`.
    """
    if status == 0:
        text = body.decode("utf-8", "replace")
        return text.split(":", 1)[0] or "TransportError", _short(text or "no answer")
    try:
        parsed: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    code, message = _error_of(parsed)
    if message is None:
        text = body.decode("utf-8", "replace").strip() if parsed is None else ""
        message = text or _phrase(status)
    return f"{status} {code or _code_of_status(status)}", _short(message)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def batch_results(status: int, body: bytes, size: int) -> list[dict[str, Any]] | None:
    """The per-element results of a batch the collector read (202 or 503: one result per
    element, in order), or None for an answer about the whole batch (a problem reply, a proxy's
    own page)."""
    if status not in (202, 503):
        return None
    try:
        results = orjson.loads(body)["results"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return results if isinstance(results, list) and len(results) == size else None


def of_batch(status: int, body: bytes, size: int) -> list[tuple[str, str]]:
    """One reason per element of a batch answer: its own error code where it has one, else the
    answer's."""
    whole = of_answer(status, body)
    results = batch_results(status, body, size)
    if results is None:
        return [whole] * size
    reasons = []
    for item in results:
        code, message = _error_of(item)
        # An element's own code; the batch's status says nothing about one element.
        reasons.append((code, _short(message or code)) if code else whole)
    return reasons
