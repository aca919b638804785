"""Every path the collector serves, once.

The collect routes (`collect_handlers`) feed both the ASGI fast path and the documented FastAPI
routes; the others are declared on the FastAPI app. Metrics label a request by the route it
matched, so a new route is labelled by its path without a list to keep in step.
"""

from __future__ import annotations

from collector.service import CollectService, Handler

COLLECT = "/api/v1/collect"
COLLECT_BATCH = "/api/v1/collect/batch"
IDENTITY = "/api/v1"
HEALTHZ = "/healthz"
READYZ = "/readyz"
METRICS = "/metrics"
DOCS = "/api/v1/docs"
# Where people look for the docs first; each answers with a redirect to DOCS.
DOCS_SHORTCUTS = ("/", "/docs")
REDOC = "/api/v1/redoc"
OPENAPI = "/api/v1/openapi.json"


def collect_handlers(service: CollectService) -> dict[str, Handler]:
    """The POST routes answered by the collect service, by path."""
    return {COLLECT: service.single, COLLECT_BATCH: service.batch}
