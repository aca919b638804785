"""The two ceilings: what uvicorn alone, and FastAPI with one trivial route, can answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_BODY = b'{"status":"ok"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"15")]


async def bare_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """Drain the body and answer a constant: the server's own ceiling."""
    if scope["type"] != "http":
        return  # lifespan: nothing to set up
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


fastapi_hello = FastAPI(title="FastAPI hello (ceiling)")


@fastapi_hello.post("/api/v1/collect")
async def hello(request: Request) -> dict[str, Any]:
    """Read the body and return a dict."""
    body = await request.body()
    return {"status": "ok", "bytes": len(body)}
