"""Swagger UI and ReDoc in a real browser (Debian's headless Chromium), on a collector on Kafka.

Nothing but loopback is reachable: a page that needed a CDN would render blank here. Each run
writes a fresh screenshot of Swagger UI after an Execute to `.artifacts/swagger-ui.png`.
"""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from collector import examples
from collector.problems import Problem
from devstack.kafka import Broker, read_topic
from devstack.proc import ROOT
from tests.conftest import Topics
from tests.e2e.conftest import Replicas

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ARTIFACTS = ROOT / ".artifacts"
WAIT_S = 30.0
COLLECT_OP = "operations-default-collect_api_v1_collect_post"
BATCH_OP = "operations-default-collect_batch_api_v1_collect_batch_post"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# ReDoc's sidebar footer names its logo on Redocly's CDN, with no option to turn it off; the
# page's policy blocks it (so nothing is fetched) and the browser logs that block.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture(scope="module")
def chrome() -> Iterator[WebDriver]:
    """Headless Chromium from Debian's packages, driven by their chromedriver."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail(
            "Debian's chromium and chromium-driver are needed: `make browser` installs them "
            "(as root), or `apt-get install chromium chromium-driver`"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1100",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.set_page_load_timeout(WAIT_S)
    browser.set_script_timeout(WAIT_S)
    try:
        yield browser
    finally:
        browser.quit()


def _wait(browser: WebDriver, what: str, condition: Any) -> Any:
    return WebDriverWait(browser, WAIT_S, poll_frequency=0.1).until(condition, what)


def _open(browser: WebDriver, url: str, ready_selector: str) -> None:
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get_log("performance")
    browser.get(url)
    _wait(
        browser,
        f"{ready_selector} on {url}",
        lambda b: b.find_elements(By.CSS_SELECTOR, ready_selector),
    )


def _network(browser: WebDriver) -> tuple[list[str], dict[str, str]]:
    """URLs answered, and URLs not loaded with the reason, from Chromium's network log."""
    events = [orjson.loads(e["message"])["message"] for e in browser.get_log("performance")]
    sent = {
        e["params"]["requestId"]: e["params"]["request"]["url"]
        for e in events
        if e["method"] == "Network.requestWillBeSent"
    }
    answered = [
        e["params"]["response"]["url"] for e in events if e["method"] == "Network.responseReceived"
    ]
    failed = {
        sent.get(e["params"]["requestId"], "?"): e["params"].get("blockedReason", "")
        for e in events
        if e["method"] == "Network.loadingFailed"
    }
    return answered, failed


def _assert_stayed_home(
    browser: WebDriver, origin: str, allowed_errors: tuple[str, ...] = ()
) -> dict[str, str]:
    """Every response came from `origin`, anything else was blocked by the page's policy, and
    the console shows no error but the allowed ones. Returns what was blocked."""
    answered, failed = _network(browser)
    assert any(url.startswith(origin + "/api/v1/docs/assets/") for url in answered)
    elsewhere = [
        url
        for url in answered
        if url.split(":")[0] not in {"data", "blob"}
        and f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" != origin
    ]
    assert elsewhere == []
    blocked = {url: reason for url, reason in failed.items() if not url.startswith(origin)}
    assert set(blocked.values()) <= {"csp"}, blocked
    errors = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE"
        and not any(text in entry["message"] for text in allowed_errors)
    ]
    assert errors == []
    return blocked


def _operation(browser: WebDriver, op_id: str) -> WebElement:
    op = browser.find_element(By.ID, op_id)
    if not op.find_elements(By.CSS_SELECTOR, ".opblock-body"):
        op.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        _wait(
            browser,
            f"{op_id} expanded",
            lambda b: op.find_elements(By.CSS_SELECTOR, ".opblock-body"),
        )
    return op


def _try_it_out(browser: WebDriver, op: WebElement) -> None:
    op.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    _wait(browser, "the Execute button", lambda b: op.find_elements(By.CSS_SELECTOR, ".execute"))


def _execute(browser: WebDriver, op: WebElement, example: str) -> tuple[int, dict[str, Any]]:
    """Pick `example`, press Execute, and read the live response's status and JSON body."""
    Select(op.find_element(By.CSS_SELECTOR, ".examples-select-element")).select_by_value(example)
    for clear in op.find_elements(By.CSS_SELECTOR, ".btn-clear"):
        clear.click()
    _wait(
        browser,
        "old response gone",
        lambda b: not op.find_elements(By.CSS_SELECTOR, ".live-responses-table"),
    )
    op.find_element(By.CSS_SELECTOR, ".execute").click()
    cell = ".live-responses-table .response .response-col_status"
    status = _wait(
        browser,
        "a live response",
        lambda b: (found := op.find_elements(By.CSS_SELECTOR, cell)) and found[0].text.strip(),
    )
    body = op.find_element(
        By.CSS_SELECTOR, ".live-responses-table .response .response-col_description pre"
    ).text
    return int(status.split()[0]), orjson.loads(body)


def _values_with(bootstrap_servers: str, topic: str, root_id: str) -> list[dict[str, Any]]:
    values = [orjson.loads(m.value()) for m in read_topic(bootstrap_servers, topic)]
    return [v for v in values if v.get("root_id") == root_id]


def _screenshot(browser: WebDriver, op: WebElement) -> Path:
    """The page from its title down to the live response, as one picture."""
    table = op.find_element(By.CSS_SELECTOR, ".live-responses-table")
    bottom = browser.execute_script(
        "return arguments[0].getBoundingClientRect().bottom + window.scrollY", table
    )
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": int(bottom) + 24, "scale": 1},
        },
    )
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "swagger-ui.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def test_swagger_ui_renders_every_operation_with_examples(
    replicas: Replicas, chrome: WebDriver
) -> None:
    (collector,) = replicas.start(1)
    _open(chrome, collector.url + "/api/v1/docs", ".opblock")
    paths = {e.text for e in chrome.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/api/v1/collect", "/api/v1/collect/batch", "/healthz", "/readyz", "/metrics"} <= paths
    examples = {}
    for op_id in (COLLECT_OP, BATCH_OP):
        op = _operation(chrome, op_id)
        select = op.find_element(By.CSS_SELECTOR, ".examples-select-element")
        examples[op_id] = {o.get_attribute("value") for o in Select(select).options}
    assert examples[COLLECT_OP] == {"taxi", "no_event_id", "invalid"}
    assert examples[BATCH_OP] == {"taxis", "mixed"}
    # The taxi example is shown in the request body as sent.
    body = _operation(chrome, COLLECT_OP).find_element(By.CSS_SELECTOR, ".body-param__example")
    assert '"event_type": "YellowTaxiTripRecords"' in body.text
    _assert_stayed_home(chrome, collector.url)


def _shown_answer(op: WebElement, status: int) -> dict[str, Any]:
    """The example answer Swagger UI shows for `status`, as JSON."""
    row = op.find_element(By.CSS_SELECTOR, f"tr.response[data-code='{status}']")
    shown: dict[str, Any] = orjson.loads(row.find_element(By.CSS_SELECTOR, "pre.example").text)
    return shown


def _pick_answer(browser: WebDriver, op: WebElement, status: int, name: str) -> dict[str, Any]:
    row = op.find_element(By.CSS_SELECTOR, f"tr.response[data-code='{status}']")
    Select(row.find_element(By.CSS_SELECTOR, ".examples-select-element")).select_by_value(name)
    return _wait(  # type: ignore[no-any-return]
        browser,
        f"the {name} example",
        lambda b: (shown := _shown_answer(op, status))["error"]["code"] == name and shown,
    )


def test_429_and_503_show_their_own_answers_with_the_real_codes(
    replicas: Replicas, chrome: WebDriver
) -> None:
    (collector,) = replicas.start(1)
    _open(chrome, collector.url + "/docs", ".opblock")  # where people look first: redirected
    assert chrome.current_url == collector.url + "/api/v1/docs"
    op = _operation(chrome, COLLECT_OP)
    assert _shown_answer(op, 429) == examples.answer(Problem.RATE_LIMITED)
    assert _shown_answer(op, 429)["status"] == "retry"
    row = op.find_element(By.CSS_SELECTOR, "tr.response[data-code='503']")
    select = Select(row.find_element(By.CSS_SELECTOR, ".examples-select-element"))
    names = [option.get_attribute("value") for option in select.options]
    assert names == [p.value for p in Problem if p.status == 503]
    assert "ack_timeout" in names
    for name in reversed(names):  # the first is shown already; pick each, back to it
        assert _pick_answer(chrome, op, 503, name) == examples.answer(Problem(name))
    # The batch route's 503 leads with its own shape: the elements to send again.
    batch = _operation(chrome, BATCH_OP)
    assert _shown_answer(batch, 503)["results"][1]["status"] == "retry"
    _assert_stayed_home(chrome, collector.url)


def test_execute_stores_the_taxi_event_and_dead_letters_the_invalid_one(
    kafka: Broker, topics: Topics, replicas: Replicas, chrome: WebDriver
) -> None:
    (collector,) = replicas.start(1)
    _open(chrome, collector.url + "/api/v1/docs", ".opblock")
    op = _operation(chrome, COLLECT_OP)
    _try_it_out(chrome, op)

    status, reply = _execute(chrome, op, "taxi")
    assert status == 202
    assert reply["status"] == "accepted"
    assert UUID.fullmatch(reply["root_id"])
    (stored,) = _values_with(kafka.bootstrap_servers, topics.raw, reply["root_id"])
    assert stored["event_id"] == "docs-example:yellow-trip"
    assert stored["collector_id"] == collector.collector_id
    shot = _screenshot(chrome, op)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one

    status, reply = _execute(chrome, op, "invalid")
    assert status == 422
    assert reply["error"]["code"] == "invalid_event"
    (dead,) = _values_with(kafka.bootstrap_servers, topics.dead_letter, reply["root_id"])
    assert dead["error"]["code"] == "invalid_event"
    assert '"docs-example:not-an-event"' in dead["raw"]
    assert _values_with(kafka.bootstrap_servers, topics.raw, reply["root_id"]) == []
    # The browser logs a 4xx answer to a fetch as an error; that one was asked for.
    _assert_stayed_home(chrome, collector.url, allowed_errors=("status of 422",))


def test_execute_needs_the_key_entered_under_authorize(
    kafka: Broker, topics: Topics, replicas: Replicas, chrome: WebDriver
) -> None:
    key = "docs-browser-key"
    (collector,) = replicas.start(1, env={"COLLECTOR_API_KEYS": f"other-key,{key}"})
    _open(chrome, collector.url + "/api/v1/docs", ".opblock")
    chrome.execute_script("localStorage.clear()")  # no key remembered from an earlier page
    chrome.refresh()
    _wait(chrome, "operations", lambda b: b.find_elements(By.CSS_SELECTOR, ".opblock"))
    op = _operation(chrome, COLLECT_OP)
    _try_it_out(chrome, op)

    status, reply = _execute(chrome, op, "taxi")
    assert status == 401
    assert reply["error"]["code"] == "unauthorized"

    chrome.find_element(By.CSS_SELECTOR, ".btn.authorize").click()
    field = _wait(chrome, "the key field", lambda b: b.find_elements(By.ID, "auth-bearer-value"))[0]
    field.send_keys(key)
    chrome.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .btn.authorize").click()
    _wait(
        chrome,
        "Logout",
        lambda b: [
            e
            for e in b.find_elements(By.CSS_SELECTOR, ".auth-btn-wrapper button")
            if e.text == "Logout"
        ],
    )
    chrome.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .btn-done").click()

    status, reply = _execute(chrome, op, "taxi")
    assert status == 202
    assert len(_values_with(kafka.bootstrap_servers, topics.raw, reply["root_id"])) == 1
    _assert_stayed_home(chrome, collector.url, allowed_errors=("status of 401",))


def test_redoc_renders_the_operations(replicas: Replicas, chrome: WebDriver) -> None:
    (collector,) = replicas.start(1)
    _open(chrome, collector.url + "/api/v1/redoc", "[data-section-id^='operation/']")
    sections = {
        e.get_attribute("data-section-id")
        for e in chrome.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']")
    }
    assert {
        "operation/collect_api_v1_collect_post",
        "operation/collect_batch_api_v1_collect_batch_post",
        "operation/readyz_readyz_get",
        "operation/metrics_metrics_get",
    } <= sections
    assert "Collect one event" in chrome.find_element(By.TAG_NAME, "body").text
    blocked = _assert_stayed_home(chrome, collector.url, allowed_errors=(REDOC_LOGO,))
    assert blocked == {REDOC_LOGO: "csp"}


def test_the_policy_blocks_a_script_from_elsewhere(replicas: Replicas, chrome: WebDriver) -> None:
    # What the checks above rely on: a load from another origin is refused by the browser itself.
    (collector,) = replicas.start(1)
    _open(chrome, collector.url + "/api/v1/docs", ".opblock")
    chrome.execute_script(
        "const s = document.createElement('script'); s.src = 'https://example.invalid/x.js';"
        "document.body.appendChild(s);"
    )
    seen: list[dict[str, Any]] = []

    def failed_load(browser: WebDriver) -> list[dict[str, Any]]:
        seen.extend(orjson.loads(e["message"])["message"] for e in browser.get_log("performance"))
        return [e for e in seen if e["method"] == "Network.loadingFailed"]

    (failure,) = _wait(chrome, "the blocked load", failed_load)
    assert failure["params"]["blockedReason"] == "csp"
    console = [e["message"] for e in chrome.get_log("browser")]
    assert any("example.invalid" in m and "Content Security Policy" in m for m in console)
