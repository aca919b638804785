"""The docs pages on the in-memory sink: own assets, a strict CSP, the OAuth2 redirect, bearer."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from collector.docs import assets_dir, content_security_policy
from tests.collector.conftest import Serve
from tests.collector.memory_sink import MemorySink

pytestmark = pytest.mark.anyio

PAGES = ("/api/v1/docs", "/api/v1/redoc", "/api/v1/docs/oauth2-redirect")


def _directives(policy: str) -> dict[str, list[str]]:
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


@pytest.mark.parametrize("path", PAGES)
async def test_pages_load_nothing_from_elsewhere(serve: Serve, path: str) -> None:
    async with serve(MemorySink()) as (client, _):
        page = await client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        # Every URL the page names is a path on this collector, and each one answers.
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert not re.search(r"https?://", page.text), "an absolute URL in the page"
        for url in urls:
            assert url.startswith("/api/v1/"), url
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 0


@pytest.mark.parametrize("path", PAGES)
async def test_pages_send_a_policy_allowing_only_their_own_origin(serve: Serve, path: str) -> None:
    async with serve(MemorySink()) as (client, _):
        page = await client.get(path)
    directives = _directives(page.headers["content-security-policy"])
    assert directives["default-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    for values in directives.values():
        for value in values:
            assert value in {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"} or (
                value.startswith("'sha256-")
            ), value
    assert "'unsafe-inline'" not in directives["script-src"]
    # The inline scripts run because their hashes are listed, and only those.
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    }
    assert set(directives["script-src"]) - {"'self'"} == hashes
    assert page.headers["x-content-type-options"] == "nosniff"


def test_policy_hashes_change_with_the_script() -> None:
    one = content_security_policy("<script>a()</script>")
    other = content_security_policy("<script>b()</script>")
    assert one != other
    assert "sha256-" not in content_security_policy("<p>no script</p>")


async def test_swagger_ui_redirects_oauth2_to_a_page_that_exists(serve: Serve) -> None:
    async with serve(MemorySink()) as (client, _):
        page = await client.get("/api/v1/docs")
        redirect = re.search(r"oauth2RedirectUrl: window.location.origin \+ '([^']+)'", page.text)
        assert redirect is not None
        assert redirect.group(1) == "/api/v1/docs/oauth2-redirect"
        answer = await client.get(redirect.group(1))
        assert answer.status_code == 200
        assert "swaggerUIRedirectOauth2" in answer.text
        assert (await client.get("/docs/oauth2-redirect")).status_code == 404


async def test_assets_come_from_the_pinned_package(serve: Serve) -> None:
    async with serve(MemorySink()) as (client, _):
        for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            served = await client.get(f"/api/v1/docs/assets/{name}")
            assert served.status_code == 200
            assert served.content == (assets_dir() / name).read_bytes()
        assert (await client.get("/api/v1/docs/assets/../app.py")).status_code == 404


async def test_openapi_declares_bearer_on_collect_routes_when_keys_are_on(serve: Serve) -> None:
    async with serve(MemorySink(), api_keys=("k-1",)) as (client, _):
        document = (await client.get("/api/v1/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for path in ("/api/v1/collect", "/api/v1/collect/batch"):
        assert document["paths"][path]["post"]["security"] == [{"bearer": []}]
    for path in ("/healthz", "/readyz", "/metrics", "/api/v1"):
        assert "security" not in document["paths"][path]["get"]


async def test_openapi_declares_no_security_when_keys_are_off(serve: Serve) -> None:
    async with serve(MemorySink()) as (client, _):
        document = (await client.get("/api/v1/openapi.json")).json()
    assert "securitySchemes" not in document.get("components", {})
    assert "security" not in document["paths"]["/api/v1/collect"]["post"]


async def test_collect_examples_include_a_rejected_one(serve: Serve) -> None:
    async with serve(MemorySink()) as (client, _):
        document = (await client.get("/api/v1/openapi.json")).json()
        body = document["paths"]["/api/v1/collect"]["post"]["requestBody"]
        examples = body["content"]["application/json"]["examples"]
        assert {"taxi", "invalid"} <= set(examples)
        answer = await client.post("/api/v1/collect", json=examples["invalid"]["value"])
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_event"
