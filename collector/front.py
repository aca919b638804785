"""The ASGI app: POSTs to the collect routes answered directly, everything else by FastAPI.

FastAPI's own routing, dependency solving, Request and Response objects would cost every collect
request what a FastAPI "hello" endpoint costs; skipping them, the collect path is one dict lookup,
`CollectService.respond` and two `send` calls (bench/results.md sets single events against that
ceiling). FastAPI only describes the collect routes (collector.api); this is the one place that
serves them, and the one place that turns an unexpected exception into a 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI

from collector import cors
from collector.service import CollectService, Disconnected, Handler, Receive, Reply

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

# The metrics label of a request that matched no declared route (keeps label values bounded).
UNMATCHED = "other"
# As FastAPI answers a method a route does not take.
_ONLY_POST = [(b"content-type", b"application/json"), (b"allow", b"POST")]
_NOT_POST = Reply(405, b'{"detail":"Method Not Allowed"}', _ONLY_POST)


async def send_reply(send: Send, reply: Reply) -> None:
    """Send a complete answer."""
    headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode())]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


class CollectorApp:
    """Serves the collect routes (`collect`: path -> handler) and hands the rest to `api`."""

    def __init__(
        self,
        api: FastAPI,
        service: CollectService,
        collect: Mapping[str, Handler],
        cors_origins: Iterable[str] = (),
    ) -> None:
        self.api = api
        self.service = service
        self.metrics = service.metrics
        self._collect = dict(collect)
        origins = tuple(cors_origins)
        self._entry = cors.allow_origins(self._route, origins) if origins else self._route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, behind the CORS middleware when origins are configured."""
        await self._entry(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A collect route answered here, the rest by FastAPI; any exception becomes a 503."""
        if scope["type"] != "http":
            await self.api(scope, receive, send)  # lifespan
            return
        status = 0
        path = scope["path"]
        handler = self._collect.get(path)
        try:
            if handler is None:

                async def send_tracked(message: Message) -> None:
                    nonlocal status
                    if message["type"] == "http.response.start":
                        status = message["status"]
                    await send(message)

                await self.api(scope, receive, send_tracked)
            else:
                reply = await self._collected(scope, receive, handler)
                if reply is None:
                    status = 499  # nginx's "client closed request": nothing to send
                else:
                    # `send_reply`, inlined: this is the path every event takes.
                    status = reply.status
                    length = (b"content-length", str(len(reply.body)).encode())
                    headers = [*reply.headers, length]
                    await send(
                        {"type": "http.response.start", "status": status, "headers": headers}
                    )
                    await send({"type": "http.response.body", "body": reply.body})
        except Exception:  # noqa: BLE001 - the contract: any failure is a 503 to retry, never a 500
            # FastAPI's own handler re-raises (collector.api), so nothing was sent unless the
            # answer had already begun.
            reply = self.service.unexpected(path)
            if not status:
                status = reply.status
                await send_reply(send, reply)
        if handler is None:
            # Starlette leaves the route it matched in the scope: labels are the declared paths.
            route = scope.get("route")
            path = route.path if route is not None else UNMATCHED
        self.metrics.request(path, status)

    async def _collected(self, scope: Scope, receive: Receive, handler: Handler) -> Reply | None:
        """The answer to a request on a collect route; None when the client went away first."""
        if scope["method"] != "POST":
            return _NOT_POST
        client = scope.get("client")
        try:
            return await self.service.respond(
                scope["headers"], receive, handler, client[0] if client else ""
            )
        except Disconnected:
            return None
