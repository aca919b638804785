"""A maximum age for keep-alive connections, so that long-lived clients spread over the replicas.

A Kubernetes Service (kube-proxy) balances connections, not requests: a client that keeps one
keep-alive connection for a whole replay stays on the pod it first reached, however many pods the
HPA adds. So each connection gets an age limit, drawn once per connection with jitter (all clients
reconnecting at the same moment would land in a burst, the way gRPC's `MAX_CONNECTION_AGE` and
Envoy's `max_connection_duration` avoid it too). The first request whose headers complete after
that age is answered as usual with `Connection: close`, and the client opens a new connection,
which lands on whichever pod the Service picks. A draining replica does the same to every request
at once. Nothing in flight is cut: the connection closes only after a complete answer, and a
request whose answer has begun is always finished.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def connection_age_s(max_age_s: float, jitter: float, draw: Callable[[], float]) -> float:
    """One connection's age limit: `max_age_s` ± `jitter` of it (`draw` gives [0, 1)); 0 = none."""
    if max_age_s <= 0:
        return float("inf")
    return max_age_s * (1.0 + jitter * (2.0 * draw() - 1.0))


class MaxConnectionAge(HttpToolsProtocol):
    """uvicorn's HTTP protocol, closing keep-alive connections after an age or when draining.

    A mixin in the protocol's class chain (`server.py` puts it in front of its own protocol):
    it only flips the request's `keep_alive` after uvicorn has parsed the headers, and uvicorn
    then adds `Connection: close` to that request's answer and closes after sending it.
    """

    def __init__(
        self,
        *args: Any,
        max_age_s: float,
        age_jitter: float,
        draining: Callable[[], bool],
        on_close: Callable[[str], None] = lambda _reason: None,
        draw: Callable[[], float] = random.random,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._age_s = connection_age_s(max_age_s, age_jitter, draw)
        self._draining = draining
        self._on_close = on_close
        self._close_at = float("inf")

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._close_at = self.loop.time() + self._age_s

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle is before or not cycle.keep_alive:
            return  # no new request (an upgrade refused), or one that closes anyway
        if self._draining():
            cycle.keep_alive = False
            self._on_close("draining")
        elif self.loop.time() >= self._close_at:
            cycle.keep_alive = False
            self._on_close("max_age")
