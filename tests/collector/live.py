"""A collector on the in-memory sink served by uvicorn on a free port, for real HTTP clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from collector.app import create_app
from collector.sinks import MemorySink
from devstack.proc import free_port, wait_until
from tests.collector.conftest import make_settings


@contextmanager
def live_collector(**overrides: Any) -> Iterator[tuple[str, MemorySink]]:
    """`with live_collector(**settings) as (url, sink)`: uvicorn in a thread, stopped after."""
    sink = MemorySink()
    port = free_port()
    app = create_app(make_settings(port=port, **overrides), sink)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 30, "the collector", every_s=0.02)
    if not server.started:
        raise RuntimeError("the collector did not start")
    try:
        yield f"http://127.0.0.1:{port}", sink
    finally:
        server.should_exit = True
        thread.join(timeout=30)
