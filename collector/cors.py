"""Opt-in CORS, so that pages on other origins can post events from a browser.

Starlette's middleware answers preflights and adds the headers; the settings only choose the
origins. Nothing here runs unless `COLLECTOR_CORS_ORIGINS` is set.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

# What a browser client sends beyond a "simple" request: JSON (`Content-Type`), compressed bodies
# and the API key. A `text/plain` beacon needs no preflight at all and works whatever is set here.
ALLOWED_HEADERS = ("Content-Type", "Content-Encoding", "Authorization")
# Readable by the page: how long to wait before resending after a 503.
EXPOSED_HEADERS = ("Retry-After",)
# How long a browser may reuse a preflight answer (Chromium caps it at 2 hours).
PREFLIGHT_MAX_AGE_S = 3600


def allow_origins(app: ASGIApp, origins: Sequence[str]) -> ASGIApp:
    """`app` answering CORS requests from `origins` (`*` for any); no cookies are involved."""
    return CORSMiddleware(
        app,
        allow_origins=origins,
        allow_methods=("GET", "POST"),
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=PREFLIGHT_MAX_AGE_S,
    )
