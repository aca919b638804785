"""Fixtures for the producer: sample files and a small real HTTP collector stand-in on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest

from producer.client import Answer, TransportError
from producer.sample import write_samples

SAMPLE_ROWS = 300


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three small TLC-shaped month files (several row groups each)."""
    return write_samples(tmp_path_factory.mktemp("samples"), rows=SAMPLE_ROWS, row_group_rows=70)


class MockCollector:
    """The producer's client seam (`producer.client.Poster`) answered in process.

    `handler` takes an `httpx.Request` and returns an `httpx.Response` or raises an
    `httpx.TransportError`, as `httpx.MockTransport`'s handlers do: tests describe answers in
    httpx's words, and the sender sees them as the real client would give them.
    """

    def __init__(
        self,
        handler: Callable[[httpx.Request], httpx.Response],
        base_url: str = "http://collector",
    ) -> None:
        self.handler = handler
        self.base_url = base_url.rstrip("/")
        self.reconnects = 0

    async def post(self, path: str, body: bytes) -> Answer:
        request = httpx.Request("POST", self.base_url + path, content=body)
        try:
            response = self.handler(request)
        except httpx.TransportError as exc:
            raise TransportError(type(exc).__name__, str(exc)) from exc
        return Answer(response.status_code, response.read(), response.headers.get("retry-after"))


class AsgiCollector:
    """The producer's client seam over an in-process `httpx.AsyncClient` (an ASGI app's)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.reconnects = 0

    async def post(self, path: str, body: bytes) -> Answer:
        response = await self.client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        return Answer(response.status_code, response.content, response.headers.get("retry-after"))


@dataclass
class StandIn:
    """What the stand-in saw, and how it answers (status per request, optional delay)."""

    answer: Callable[[bytes], int] = lambda body: 202
    delay_s: float = 0.0
    event_ids: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    """A threaded HTTP server that records event ids it answers 202 for (single or batch)."""
    state = StandIn()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if state.delay_s:
                time.sleep(state.delay_s)
            status = state.answer(body)
            parsed = orjson.loads(body)
            events = parsed if isinstance(parsed, list) else [parsed]
            with state.lock:
                state.paths.append(self.path)
                state.authorizations.append(self.headers.get("authorization"))
                if status == 202:
                    state.event_ids.extend(e["event_id"] for e in events)
            out = orjson.dumps({"status": "settled" if status == 202 else "retry"})
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            if status == 503:
                self.send_header("retry-after", "0")
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """Serves files over HTTP on 127.0.0.1; returns a function giving a file's URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def url_of(path: Path) -> str:
        (root / path.name).write_bytes(path.read_bytes())
        return f"http://127.0.0.1:{server.server_address[1]}/{path.name}"

    try:
        yield url_of
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
