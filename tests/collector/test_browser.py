"""A real browser (headless Chromium) on another origin posting events to a running collector.

Chromium and its driver are Debian's `chromium` and `chromium-driver` (`make browser`, part of
`make test`, installs them).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from collector.schemas import GREEN_EVENT, TAXI_EVENT
from devstack.proc import wait_until
from tests.collector.conftest import RAW
from tests.collector.live import live_collector
from tests.collector.memory_sink import MemorySink

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium() -> Iterator[webdriver.Chrome]:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        raise RuntimeError(
            "Debian's chromium and chromium-driver are needed: `make browser` installs them "
            "(as root), or `apt-get install chromium chromium-driver`"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_script_timeout(60)
    try:
        yield chrome
    finally:
        chrome.quit()


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        page = b"<!doctype html><title>shop</title><p>a page on another origin</p>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def page_origin() -> Iterator[str]:
    """An HTTP server for a blank page, on a port of its own: another origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# Runs in the page: a JSON fetch (preflighted), a gzip fetch (Content-Encoding is preflighted too)
# and a text/plain beacon (never preflighted); reports what the page could see.
_POST_FROM_PAGE = """
const [url, taxi, green, done] = arguments;
const outcome = {};
try {
  const answer = await fetch(url, {method: "POST", body: JSON.stringify(taxi),
                                   headers: {"Content-Type": "application/json"}});
  outcome.json = {status: answer.status, body: await answer.json()};
} catch (error) { outcome.json = {error: String(error)}; }
try {
  const packed = new Blob([JSON.stringify(green)]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  const answer = await fetch(url, {method: "POST", body: await new Response(packed).blob(),
    headers: {"Content-Type": "application/json", "Content-Encoding": "gzip"}});
  outcome.gzip = {status: answer.status, body: await answer.json()};
} catch (error) { outcome.gzip = {error: String(error)}; }
const beacon = {...taxi, event_id: "beacon-1"};
const text = new Blob([JSON.stringify(beacon)], {type: "text/plain"});
outcome.beacon = navigator.sendBeacon(url, text);
done(outcome);
"""


def _post_from_page(chrome: webdriver.Chrome, page: str, url: str) -> dict[str, Any]:
    chrome.get(page)
    outcome: dict[str, Any] = chrome.execute_async_script(
        _POST_FROM_PAGE, url, TAXI_EVENT, GREEN_EVENT
    )
    return outcome


def _wait_for_records(sink: MemorySink, count: int) -> None:
    wait_until(lambda: len(sink.on(RAW)) >= count, 30, f"{count} records", every_s=0.05)


def test_a_page_on_an_allowed_origin_posts_json_gzip_and_beacons(
    chromium: webdriver.Chrome,
) -> None:
    with page_origin() as page, live_collector(cors_origins=(page,)) as (url, sink):
        outcome = _post_from_page(chromium, page, url + "/api/v1/collect")
        _wait_for_records(sink, 3)
    assert outcome["json"]["status"] == 202, outcome
    assert outcome["json"]["body"]["status"] == "accepted"
    assert outcome["gzip"]["status"] == 202, outcome
    assert outcome["beacon"] is True
    stored = sorted(orjson.loads(record.value).get("event_id", "") for record in sink.on(RAW))
    assert stored == sorted(["", "beacon-1", str(TAXI_EVENT["event_id"])])


def test_without_cors_the_browser_blocks_fetch_but_a_beacon_still_arrives(
    chromium: webdriver.Chrome,
) -> None:
    with page_origin() as page, live_collector() as (url, sink):
        outcome = _post_from_page(chromium, page, url + "/api/v1/collect")
        _wait_for_records(sink, 1)  # the fetches were refused before the beacon was sent
    assert "error" in outcome["json"], outcome
    assert "error" in outcome["gzip"], outcome
    assert outcome["beacon"] is True
    [record] = sink.on(RAW)
    assert orjson.loads(record.value)["event_id"] == "beacon-1"
