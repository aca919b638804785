"""Serving: uvicorn (uvloop, httptools) per process, and a supervisor for several workers.

In a module of its own, not `__main__`, because worker processes are spawned and must be able to
import the function they run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from collector import logs
from collector.app import create_app, kafka_sink
from collector.settings import Settings, SettingsProblem, load

log = logging.getLogger("collector")

_PR_SET_PDEATHSIG = 1


_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a deadline for each request's headers.

    uvicorn has no header-read timeout: a connection opened and left silent, or one trickling its
    headers, would be kept forever. Each request's headers must arrive within `header_timeout_s`
    of the connection (or of the request's first byte); then 408 and the connection is closed.
    The body has its own deadline in the app (`request_timeout_s`).
    """

    def __init__(self, *args: Any, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self._header_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMED_OUT)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


class DrainingServer(uvicorn.Server):
    """uvicorn, except that SIGTERM first fails readiness and the drained process exits 0."""

    def __init__(self, config: uvicorn.Config, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_drain = on_drain

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start draining; uvicorn then stops accepting, finishes requests, runs the shutdown."""
        self._on_drain()
        # Unlike uvicorn's own handler the signal is not re-raised after the shutdown: a
        # collector that drained and flushed has done its job and exits 0.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def serve(settings: Settings, sock: socket.socket | None = None) -> int:
    """Run one collector process until a signal has drained it; the exit code."""
    app = create_app(settings, kafka_sink(settings))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=functools.partial(  # type: ignore[arg-type]
            HeaderTimeoutProtocol, header_timeout_s=settings.request_timeout_s
        ),
        ws="none",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        backlog=4096,
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
    )

    def drain() -> None:
        app.service.draining = True

    server = DrainingServer(config, on_drain=drain)
    server.run(sockets=[sock] if sock is not None else None)
    return 0 if server.started else 1


def _listening_socket(host: str, port: int) -> socket.socket:
    # One socket per worker with SO_REUSEPORT: the kernel spreads new connections evenly across
    # workers, where one shared socket lets a single worker grab most of them.
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def _worker(settings: Settings) -> None:
    # Drain (not vanish) if the supervisor dies without forwarding a signal.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    logs.configure(settings.log_level)
    sys.exit(serve(settings, _listening_socket(settings.host, settings.port)))


def supervise(settings: Settings) -> int:
    """Run `settings.workers` processes; forward SIGTERM/SIGINT; stop all if one dies."""
    if settings.port == 0:
        log.error("COLLECTOR_WORKERS > 1 needs a fixed COLLECTOR_PORT")
        return 2
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker, args=(settings,), name=f"collector-worker-{index}")
        for index in range(settings.workers)
    ]
    stopping = False

    def stop_all(_sig: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.pid is not None and worker.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for worker in workers:
        worker.start()
    log.info("workers started", extra={"workers": settings.workers, "port": settings.port})
    while any(worker.exitcode is None for worker in workers):
        multiprocessing.connection.wait([w.sentinel for w in workers if w.exitcode is None], 1.0)
        for worker in workers:
            if worker.exitcode is not None and not stopping:
                log.error(
                    "worker exited; stopping the others",
                    extra={"worker": worker.name, "exit_code": worker.exitcode},
                )
                stop_all()
    for worker in workers:
        worker.join()
    return 0 if all(worker.exitcode == 0 for worker in workers) else 1


def main() -> int:
    """Read the settings once and serve; exit 2 naming what is wrong with them (never a value)."""
    try:
        settings = load()
    except SettingsProblem as problem:
        for line in problem.lines:
            print(f"collector: {line}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    if settings.workers == 1:
        return serve(settings)
    return supervise(settings)
