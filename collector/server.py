"""Serving: uvicorn (uvloop, httptools) per process, and a supervisor for several workers.

In a module of its own, not `__main__`, because worker processes are spawned and must be able to
import the function they run.
"""

from __future__ import annotations

import argparse
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
from http import HTTPStatus
from types import FrameType
from typing import Any

import httptools
import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from collector import logs
from collector.app import create_app, kafka_sink
from collector.connections import MaxConnectionAge
from collector.front import CollectorApp
from collector.problems import Problem
from collector.routes import HEALTHZ, READYZ
from collector.settings import Settings, SettingsProblem, load
from console.settings_help import settings_epilog

log = logging.getLogger("collector")

_PR_SET_PDEATHSIG = 1


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
            self.transport.write(_canned(Problem.REQUEST_TIMEOUT))
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


class LimitedProtocol(HeaderTimeoutProtocol):
    """Bounds every request before the app sees it, on every route.

    - Headers: at most `max_header_bytes` (request line included) and `max_headers` fields, counted
      as they arrive (httptools would buffer a 64 MB header whole); over either, 431 and closed.
      Checked before anything else, the API key included.
    - Body: the rest of the request must arrive within `body_timeout_s` of its headers, whether
      or not anything reads it (a 404 or 405 is answered at once, and uvicorn would then read and
      discard a trickled body forever); then 408 if nothing was answered yet, and closed.
    - Requests in flight: at most `max_concurrency` (uvicorn's limit_concurrency answers without
      `Retry-After`); over it, 503 `overloaded` with `Retry-After`, and closed. The probes are
      always answered, so a busy replica is not restarted for being busy.
    """

    def __init__(
        self,
        *args: Any,
        max_header_bytes: int,
        max_headers: int,
        body_timeout_s: float,
        max_concurrency: int,
        retry_after_s: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._max_header_bytes = max_header_bytes
        self._max_headers = max_headers
        self._body_timeout_s = body_timeout_s
        self._max_concurrency = max_concurrency
        self._retry_after = str(retry_after_s).encode()
        self._in_head = True
        self._head_bytes = 0
        self._head_tail = b""
        self._header_count = 0
        self._refused = False
        self._body_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            # Only the bytes up to the blank line ending the headers count (a small POST
            # arrives with its body in the same read).
            seen = self._head_tail + data
            end = _end_of_head(seen)
            self._head_bytes += len(data) if end < 0 else max(0, end - len(self._head_tail))
            if self._head_bytes > self._max_header_bytes:
                self._refuse(Problem.HEADERS_TOO_LARGE)
                return
            self._head_tail = seen[-3:]
            if end >= 0:
                self._in_head = False
        super().data_received(data)

    def on_message_begin(self) -> None:
        if self._refused:
            return
        self._header_count = 0
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._header_count += 1
        if self._header_count > self._max_headers:
            self._refuse(Problem.HEADERS_TOO_LARGE)
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        if len(self.tasks) >= self._max_concurrency and not self._is_probe():
            self._refuse(Problem.OVERLOADED)
            return
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(self._body_timeout_s, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._cancel_body_timer()
        # What arrives next is the next request's head.
        self._in_head, self._head_bytes, self._head_tail = True, 0, b""
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_body_timer()
        super().connection_lost(exc)

    def _is_probe(self) -> bool:
        return httptools.parse_url(self.url).path in _ALWAYS_ANSWERED

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_canned(Problem.REQUEST_TIMEOUT))
        self.transport.close()

    def _refuse(self, problem: Problem) -> None:
        self._refused = True
        self._cancel_body_timer()
        if not self.transport.is_closing():
            self.transport.write(_canned(problem, self._retry_after))
            self.transport.close()


# Answered even when the replica is at its concurrency limit (liveness, readiness).
_ALWAYS_ANSWERED = frozenset({HEALTHZ.encode(), READYZ.encode()})


def _end_of_head(data: bytes) -> int:
    """Where the blank line ending a request's headers ends in `data`, -1 if not there."""
    ends = [i + len(mark) for mark in (b"\r\n\r\n", b"\n\n") if (i := data.find(mark)) >= 0]
    return min(ends, default=-1)


def _canned(problem: Problem, retry_after: bytes = b"1") -> bytes:
    """A complete answer written by the protocol itself, as the app's problem replies read."""
    body = orjson.dumps(
        {
            "status": problem.reply_status,
            "error": {"code": problem, "message": problem.message, "details": []},
        }
    )
    head = [
        f"HTTP/1.1 {problem.status} {HTTPStatus(problem.status).phrase}".encode(),
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
    ]
    if problem.retryable and problem.status == 503:
        head.append(b"retry-after: " + retry_after)
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class CollectorProtocol(MaxConnectionAge, LimitedProtocol):
    """The protocol served: the limits above, and a maximum connection age."""


def protocol(settings: Settings, app: CollectorApp) -> Callable[..., CollectorProtocol]:
    """The HTTP protocol uvicorn runs for each connection of `app`, with the settings' limits."""
    return functools.partial(
        CollectorProtocol,
        max_age_s=settings.max_connection_age_s,
        age_jitter=settings.max_connection_age_jitter,
        draining=lambda: app.service.draining,
        on_close=app.metrics.connection_closed,
        header_timeout_s=settings.request_timeout_s,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        body_timeout_s=settings.request_timeout_s,
        max_concurrency=settings.max_concurrency,
        retry_after_s=settings.retry_after_s,
    )


class DrainingServer(uvicorn.Server):
    """uvicorn, except that SIGTERM first fails readiness and the drained process exits 0."""

    def __init__(self, config: uvicorn.Config, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_drain = on_drain
        # Told to stop by a signal: a process stopped before it started serving has taken
        # nothing, so it too exits 0 (only a failed start is an error).
        self.signalled = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start draining; uvicorn then stops accepting, finishes requests, runs the shutdown."""
        self.signalled = True
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
        http=protocol(settings, app),  # type: ignore[arg-type]
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
    return 0 if server.started or server.signalled else 1


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
    # A worker our SIGTERM reached before it could install its handlers ends by that signal;
    # it had not served anything, so that is a clean stop too.
    clean = (0, -signal.SIGTERM) if stopping else (0,)
    return 0 if all(worker.exitcode in clean for worker in workers) else 1


def parser() -> argparse.ArgumentParser:
    """`python -m collector --help`: what it does and every setting; no other arguments."""
    return argparse.ArgumentParser(
        prog="python -m collector",
        description="Accept events over HTTP (POST /api/v1/collect, /api/v1/collect/batch) and\n"
        "answer 202 only once Kafka has them; Swagger UI at /api/v1/docs.\n"
        "Configured by the environment variables below, read once at start-up.",
        epilog=settings_epilog(Settings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> int:
    """Read the settings once and serve; exit 2 naming what is wrong with them (never a value)."""
    parser().parse_args(argv)
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
