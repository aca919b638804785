"""A collector on the in-memory sink served by uvicorn on a free port, for real HTTP clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from collector.app import create_app
from collector.sinks import MemorySink
from devstack.proc import free_port
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
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the collector did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", sink
    finally:
        server.should_exit = True
        thread.join(timeout=30)
