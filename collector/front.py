"""The ASGI front: POSTs to the collect routes answered directly, everything else by FastAPI.

FastAPI's own routing, dependency solving, Request and Response objects would cap a collect
request at a FastAPI "hello" endpoint's rate; skipping them, the collector answers single events
(sent to Kafka) faster than that ceiling answers nothing (bench/results.md has the figure). The
fast path is one dict lookup, `CollectService.respond` and two `send` calls.
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


async def send_reply(send: Send, reply: Reply) -> None:
    """Send a complete answer."""
    headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode())]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


class CollectEndpoint:
    """One collect route as a bare ASGI app: the fast path, and what its documented route runs."""

    __slots__ = ("handler", "route", "service")

    def __init__(self, route: str, service: CollectService, handler: Handler) -> None:
        self.route = route
        self.service = service
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request and count it."""
        service = self.service
        try:
            client = scope.get("client")
            reply = await service.respond(
                scope["headers"], receive, self.handler, client[0] if client else ""
            )
        except Disconnected:
            service.metrics.request(self.route, 499)  # nginx's "client closed request"
            return
        except Exception:  # noqa: BLE001 - the contract: any failure is a 503 to retry, never a 500
            reply = service.unexpected(self.route)
        # `send_reply`, inlined: this is the path every event takes.
        headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode())]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})
        service.metrics.request(self.route, reply.status)


class Front:
    """The ASGI app that serves: the collect endpoints by path, the rest through FastAPI (`api`)."""

    def __init__(
        self,
        api: FastAPI,
        service: CollectService,
        endpoints: Mapping[str, CollectEndpoint],
        cors_origins: Iterable[str] = (),
    ) -> None:
        self.api = api
        self.service = service
        self.metrics = service.metrics
        self._fast = dict(endpoints)
        origins = tuple(cors_origins)
        self._entry = cors.allow_origins(self._route, origins) if origins else self._route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, behind the CORS middleware when origins are configured."""
        await self._entry(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route: POST to a collect path is answered here, the rest goes to FastAPI."""
        if scope["type"] == "http":
            endpoint = self._fast.get(scope["path"])
            if endpoint is not None and scope["method"] == "POST":
                await endpoint(scope, receive, send)
            else:
                await self._framework(scope, receive, send)
            return
        await self.api(scope, receive, send)  # lifespan

    async def _framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 0

        async def send_tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.api(scope, receive, send_tracked)
        except Exception:  # noqa: BLE001 - the contract: any failure is a 503 to retry, never a 500
            # The api's own handler has answered 503 unless the answer had already begun; the
            # exception comes back up anyway, and stops here rather than in the server's log.
            reply = self.service.unexpected(scope["path"])
            if not status:
                status = reply.status
                await send_reply(send, reply)
        # Starlette leaves the route it matched in the scope: labels are the declared paths.
        route = scope.get("route")
        self.metrics.request(route.path if route is not None else UNMATCHED, status)
