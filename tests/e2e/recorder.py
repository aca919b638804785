"""A recording reverse proxy: every answer the collector gives a client, one JSON line each.

The fault tests put it between the producer and the balancer so they can hold the collector to
what it said (every `root_id` answered 202 is on the raw topic; no 202 while the cluster cannot
meet `min.insync.replicas`) and measure how long clients waited. The producer and collector
print totals only; a per-answer record is what no existing tool keeps.

    python -m tests.e2e.recorder --upstream URL --port PORT --out FILE
"""

from __future__ import annotations

import argparse
import time
from typing import IO, Any

import httpx
import orjson
import uvicorn


def event_ids_of(body: bytes) -> list[str | None]:
    """The `event_id` of each event in a request body (single or batch); [] if not JSON."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    events = parsed if isinstance(parsed, list) else [parsed]
    return [e.get("event_id") if isinstance(e, dict) else None for e in events]


def error_code_of(body: bytes) -> str | None:
    """The `error.code` of a refusal (`ack_timeout`, `kafka_error`, ...), if the body has one."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def accepted_of(status: int, body: bytes) -> list[tuple[int, str]]:
    """(index in the request, root_id) of every event the answer says was accepted."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(parsed, dict):
        return []
    if status == 202 and parsed.get("status") == "accepted" and parsed.get("root_id"):
        return [(0, parsed["root_id"])]
    results = parsed.get("results")
    if not isinstance(results, list):
        return []
    return [
        (item.get("index", i), item["root_id"])
        for i, item in enumerate(results)
        if isinstance(item, dict) and item.get("status") == "accepted" and item.get("root_id")
    ]


class Recorder:
    """The ASGI app: forward each request upstream, answer with the upstream's answer, log it."""

    def __init__(self, upstream: str, out: IO[bytes]) -> None:
        self._upstream = upstream.rstrip("/")
        self._out = out
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self._client = httpx.AsyncClient(
                        timeout=120, limits=httpx.Limits(max_connections=500)
                    )
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._client is not None:
                        await self._client.aclose()
                    self._out.flush()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        assert self._client is not None
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        started = time.time()
        headers = {"content-type": "application/json"}
        try:
            answer = await self._client.request(
                scope["method"], self._upstream + scope["path"], content=body, headers=headers
            )
            status, content = answer.status_code, answer.content
            retry_after = answer.headers.get("retry-after")
            error = None
        except httpx.TransportError as exc:
            status, content, retry_after, error = 502, b"", None, type(exc).__name__
        ended = time.time()
        if scope["path"].startswith("/api/v1/collect"):
            record = {
                "start": started,
                "end": ended,
                "status": status,
                "retry_after": retry_after,
                "event_ids": event_ids_of(body),
                "accepted": accepted_of(status, content),
                "error": error or (error_code_of(content) if status >= 400 else None),
                # No answer came back (HAProxy closed a kept-alive connection, say): a 502 for
                # the client, which retries; not something the collector or balancer said.
                "transport_error": error is not None,
            }
            self._out.write(orjson.dumps(record) + b"\n")
            self._out.flush()
        reply_headers = [(b"content-type", b"application/json")]
        if retry_after is not None:
            reply_headers.append((b"retry-after", retry_after.encode()))
        await send({"type": "http.response.start", "status": status, "headers": reply_headers})
        await send({"type": "http.response.body", "body": content})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.recorder", description=__doc__)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.out, "ab") as out:
        uvicorn.run(
            Recorder(args.upstream, out),
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            lifespan="on",
            access_log=False,
        )


if __name__ == "__main__":
    main()
