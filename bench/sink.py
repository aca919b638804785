"""A fast local stand-in for the collector, for pacing and memory runs of the producer.

Answers every event 202 the way the collector does (a batch gets one result per event) and
records when each request arrived and how many events it carried (`GET /stats`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_arrivals: list[tuple[float, int]] = []  # (monotonic time, events in the request)


async def _reply(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    if scope["method"] == "GET":
        stats: dict[str, Any] = {"events": sum(n for _, n in _arrivals), "arrivals": _arrivals}
        if scope["path"] == "/stats/reset":
            _arrivals.clear()
        await _reply(send, 200, orjson.dumps(stats))
        return
    now = time.monotonic()
    body = b"".join(chunks)
    if body.lstrip()[:1] == b"[":
        count = len(orjson.loads(body))
        _arrivals.append((now, count))
        results = [
            {"index": i, "status": "accepted", "root_id": str(uuid.uuid4())} for i in range(count)
        ]
        answer = {"accepted": count, "rejected": 0, "results": results}
    else:
        _arrivals.append((now, 1))
        answer = {"status": "accepted", "root_id": str(uuid.uuid4())}
    await _reply(send, 202, orjson.dumps(answer))
