"""Swagger UI and ReDoc served by the collector itself: no CDN, a strict Content-Security-Policy.

The assets come from the pinned `fastapi-offline` package (Swagger UI's dist and ReDoc's
standalone bundle, and nothing else to install), so the docs work on a cluster without internet
access, and no request from a docs page leaves the collector.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from collector.routes import DOCS, DOCS_SHORTCUTS, REDOC

OAUTH2_REDIRECT = DOCS + "/oauth2-redirect"
ASSETS = DOCS + "/assets"
BEARER = "bearer"

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def assets_dir() -> Path:
    """The folder holding swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js."""
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


def content_security_policy(html: str) -> str:
    """A policy letting the page load only from its own origin, plus its own inline scripts.

    Inline scripts are allowed by their hash, so FastAPI's page templates can be served as they
    are. Styles need 'unsafe-inline': Swagger UI and ReDoc set style attributes and ReDoc injects
    <style> elements at run time; neither can fetch anything. ReDoc's search runs in a worker it
    makes from a blob: URL, which is the page's own content.
    """
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {hashes}".rstrip(),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _page(response: HTMLResponse) -> HTMLResponse:
    html = bytes(response.body).decode()
    return HTMLResponse(
        html,
        headers={
            "content-security-policy": content_security_policy(html),
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        },
    )


def docs_url(host: str, port: int) -> str:
    """Where a person on this machine opens Swagger UI (the path alone when the port is chosen
    at start-up)."""
    if port == 0:
        return DOCS
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}{DOCS}"


def bearer_security(
    openapi: Callable[[], dict[str, Any]], paths: Sequence[str]
) -> Callable[[], dict[str, Any]]:
    """Wrap `FastAPI.openapi` so that `paths` ask for `Authorization: Bearer <key>`.

    Swagger UI then shows an Authorize button, and "Try it out" sends the key entered there.
    """
    done: dict[str, Any] = {}

    def with_bearer() -> dict[str, Any]:
        if done:
            return done
        document = openapi()
        schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[BEARER] = {
            "type": "http",
            "scheme": "bearer",
            "description": "one of the keys in `COLLECTOR_API_KEYS`",
        }
        for path in paths:
            for operation in document["paths"].get(path, {}).values():
                operation["security"] = [{BEARER: []}]
        done.update(document)
        return done

    return with_bearer


def install(api: FastAPI, *, protected_paths: Sequence[str] = (), api_keys: bool = False) -> None:
    """Add the docs pages, their assets and the OAuth2 redirect to `api` (built with no docs).

    With `api_keys`, the OpenAPI document declares a bearer scheme on `protected_paths`.
    """
    assert api.openapi_url is not None
    openapi_url = api.openapi_url
    title = api.title
    if api_keys:
        api.openapi = bearer_security(api.openapi, protected_paths)  # type: ignore[method-assign]

    api.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")

    @api.get(DOCS, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
                oauth2_redirect_url=root + OAUTH2_REDIRECT,
                # A key entered under Authorize survives a reload of the page.
                swagger_ui_parameters={"persistAuthorization": True},
            )
        )

    async def to_docs(request: Request) -> RedirectResponse:
        return RedirectResponse(request.scope.get("root_path", "") + DOCS)

    for shortcut in DOCS_SHORTCUTS:
        api.add_api_route(shortcut, to_docs, methods=["GET"], include_in_schema=False)

    @api.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return _page(get_swagger_ui_oauth2_redirect_html())

    @api.get(REDOC, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
                with_google_fonts=False,
            )
        )
