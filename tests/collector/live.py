"""A collector on the in-memory sink served by uvicorn on a free port, for real HTTP clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from collector.app import create_app
from collector.front import CollectorApp
from collector.server import protocol
from devstack.proc import free_port, wait_until
from tests.collector.conftest import make_settings
from tests.collector.memory_sink import MemorySink


@contextmanager
def live_app(
    sink: MemorySink, *, limits: bool = False, **overrides: Any
) -> Iterator[tuple[str, CollectorApp]]:
    """`with live_app(sink, **settings) as (url, app)`: uvicorn in a thread, stopped after.

    With `limits`, uvicorn runs the collector's own HTTP protocol (header, body and concurrency
    limits, the maximum connection age), as `python -m collector` does.
    """
    port = free_port()
    settings = make_settings(port=port, **overrides)
    app = create_app(settings, sink)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_config=None,
        access_log=False,
        **({"http": protocol(settings, app)} if limits else {}),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 30, "the collector", every_s=0.02)
    if not server.started:
        raise RuntimeError("the collector did not start")
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def live_collector(
    sink: MemorySink | None = None, *, limits: bool = False, **overrides: Any
) -> Iterator[tuple[str, MemorySink]]:
    """`with live_collector(**settings) as (url, sink)`: uvicorn in a thread, stopped after."""
    sink = sink or MemorySink()
    with live_app(sink, limits=limits, **overrides) as (url, _app):
        yield url, sink
