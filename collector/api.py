"""The documented API: FastAPI for the OpenAPI document, docs, probes, metrics and identity.

The collect routes are served by `collector.front.CollectorApp` alone; here they are only
described, so the OpenAPI document has them without FastAPI having a second way to run them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from collector import __version__, docs, examples
from collector.problems import Problem
from collector.routes import (
    COLLECT,
    COLLECT_BATCH,
    HEALTHZ,
    IDENTITY,
    METRICS,
    OPENAPI,
    READYZ,
)
from collector.schemas import (
    EVENT,
    GREEN_EVENT,
    MAX_DEPTH,
    NOT_AN_EVENT,
    TAXI_EVENT,
    AcceptedReply,
    BatchReply,
    Health,
    Identity,
    ProblemReply,
    RejectedReply,
)
from collector.service import CollectService
from collector.settings import Settings

_DESCRIPTION = """
Accepts events over HTTP and answers only once Kafka has them (acks=all).

* **202**: stored on the raw topic. **400 / 422**: not JSON / not an event (also: nested deeper
  than {max_depth} levels, or a top-level field twice); the input is stored on the dead-letter
  topic exactly as sent (acknowledged before the answer) and the reply says what was wrong.
* **408**: the request did not arrive within the request timeout (10 s by default); nothing stored.
* **413**: too large, nothing stored. **401**: API keys are on and the bearer is missing or wrong.
* **415**: an unknown `Content-Encoding`, or more than two. **431**: headers over the limit.
* **503** with `Retry-After`: nothing is claimed (Kafka too slow or unreachable, send queue full,
  too many requests in flight, shutting down); send it again. No request is ever answered 500.

Bodies are parsed as JSON (RFC 8259, UTF-8) whatever their `Content-Type`, so browser beacons
sending `text/plain` work too. Bodies may be compressed (`Content-Encoding: gzip` or `deflate`); the
size limit holds for the decompressed body too, and a body that does not decompress is a 400
(`invalid_encoding`), dead-lettered as received.

| code | status | retryable | dead-lettered | meaning |
|---|---|---|---|---|
{codes}
"""


def problem_rows() -> str:
    """The problem table as Markdown rows (the OpenAPI description; docs/collector.md too)."""
    return "\n".join(
        f"| `{p}` | {p.status} | {'yes' if p.retryable else 'no'} "
        f"| {'yes' if p.dead_lettered else 'no'} | {p.message} |"
        for p in Problem
    )


def _openapi_body(schema: dict[str, Any], examples: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "examples": examples}},
        }
    }


def _responses(ok: type[BaseModel], ok_text: str) -> dict[int | str, dict[str, Any]]:
    retry_after = {
        "Retry-After": {
            "description": "seconds to wait before retrying",
            "schema": {"type": "integer"},
        }
    }
    batch = ok is BatchReply
    documented: dict[int | str, dict[str, Any]] = {
        202: {"model": ok, "description": ok_text},
        400: {"model": RejectedReply, "description": "not JSON or not UTF-8; dead-lettered"},
        401: {"model": ProblemReply, "description": "API keys are on; bearer missing or wrong"},
        408: {
            "model": ProblemReply,
            "description": "the body did not arrive within the request timeout; nothing stored",
        },
        413: {"model": ProblemReply, "description": "over the size limit; nothing stored"},
        415: {
            "model": ProblemReply,
            "description": "an unknown Content-Encoding, or more than two; nothing stored",
        },
        431: {
            "model": ProblemReply,
            "description": "request headers over the size or count limit; nothing read or stored",
        },
        429: {
            "model": ProblemReply,
            "description": "over the API key's rate limit (when one is set); nothing stored",
            "headers": retry_after,
        },
        422: {
            "model": RejectedReply,
            "description": "JSON, but not an event (or too deep, or a field twice); dead-lettered",
        },
        503: {
            "model": ok if batch else ProblemReply,
            "description": "nothing claimed (or, for a batch, the `retry` elements): send again",
            "headers": retry_after,
        },
    }
    # Each status with its own examples, one per problem code it can carry.
    for status, response in documented.items():
        if status != 202:
            response["content"] = {
                "application/json": {"examples": examples.by_status(int(status), batch=batch)}
            }
    return documented


def _collect_docs(settings: Settings) -> dict[str, dict[str, Any]]:
    """How each collect route is documented, by path (`add_api_route` arguments)."""
    event_schema = EVENT.json_schema()
    batch_schema = {
        "type": "array",
        "items": event_schema,
        "minItems": 1,
        "maxItems": settings.max_batch_events,
    }
    taxi = {"summary": "a yellow taxi trip", "value": TAXI_EVENT}
    return {
        COLLECT: {
            "name": "collect",
            "summary": "Collect one event",
            "description": "Validate one event, wrap it in an envelope and answer once Kafka "
            "has it.",
            "responses": _responses(AcceptedReply, "Kafka acknowledged the envelope"),
            "openapi_extra": _openapi_body(
                event_schema,
                {
                    "taxi": taxi,
                    "no_event_id": {"summary": "without event_id", "value": GREEN_EVENT},
                    "invalid": {
                        "summary": "not an event: 422, dead-lettered",
                        "value": NOT_AN_EVENT,
                    },
                },
            ),
        },
        COLLECT_BATCH: {
            "name": "collect_batch",
            "summary": "Collect a batch of events",
            "description": "One result per element; the status says whether anything must be "
            "sent again.",
            "responses": _responses(BatchReply, "every element settled: accepted or dead-lettered"),
            "openapi_extra": _openapi_body(
                batch_schema,
                {
                    "taxis": {"summary": "two trips", "value": [TAXI_EVENT, GREEN_EVENT]},
                    "mixed": {
                        "summary": "one good, one rejected",
                        "value": [TAXI_EVENT, {"event_type": "YellowTaxiTripRecords"}],
                    },
                },
            ),
        },
    }


def _collect_routes(settings: Settings, paths: Sequence[str]) -> list[APIRoute]:
    """The collect routes as FastAPI would document them; never mounted, so never run."""
    described = _collect_docs(settings)
    return [
        APIRoute(
            path,
            _not_mounted,
            methods=["POST"],
            status_code=202,
            response_model=None,
            **described[path],  # a collect route without documentation fails at start-up
        )
        for path in paths
    ]


async def _not_mounted() -> None:
    """The endpoint of a route that only the OpenAPI document sees."""
    raise NotImplementedError


def _describing(api: FastAPI, routes: Sequence[APIRoute]) -> Callable[[], dict[str, Any]]:
    """`api.openapi` with `routes` described first (after FastAPI builds or rebuilds it)."""
    framework_openapi = api.openapi

    def openapi() -> dict[str, Any]:
        document = framework_openapi()
        if routes and routes[0].path not in document["paths"]:
            own = get_openapi(title=api.title, version=api.version, routes=routes)
            document["paths"] = {**own["paths"], **document["paths"]}
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(own.get("components", {}).get("schemas", {}))
        return document

    return openapi


async def _pass_on(_request: Request, exc: Exception) -> Response:
    raise exc


def build_api(
    settings: Settings,
    service: CollectService,
    collect_paths: Sequence[str],
    lifespan: Any,
) -> FastAPI:
    """The FastAPI app: docs, probes, metrics, identity, and the collect routes' documentation."""
    api = FastAPI(
        title="Event collector",
        version=__version__,
        description=_DESCRIPTION.format(codes=problem_rows(), max_depth=MAX_DEPTH),
        docs_url=None,  # served by collector.docs, from the package's assets (no CDN)
        redoc_url=None,
        openapi_url=OPENAPI,
        lifespan=lifespan,
    )
    api.openapi = _describing(api, _collect_routes(settings, collect_paths))  # type: ignore[method-assign]
    docs.install(api, protected_paths=collect_paths, api_keys=bool(settings.api_keys))
    # Without a handler Starlette would answer an exception with a 500 before passing it on; this
    # one passes it on unanswered, to the app's one catch-all (collector.front).
    api.add_exception_handler(Exception, _pass_on)

    identity = Identity(collector_id=settings.collector_id, version=__version__).model_dump()

    @api.get(IDENTITY, response_model=Identity, summary="Which collector answers")
    async def whoami() -> dict[str, Any]:
        """The collector id and version."""
        return identity

    @api.get(HEALTHZ, response_model=Health, response_model_exclude_none=True, summary="Liveness")
    async def healthz() -> dict[str, Any]:
        """200 while the process runs; never looks at Kafka."""
        return {"status": "ok"}

    @api.get(
        READYZ,
        response_model=Health,
        summary="Readiness",
        responses={503: {"model": Health, "description": "Kafka unreachable or draining"}},
    )
    async def readyz() -> JSONResponse:
        """200 only when Kafka can take writes and the service is not draining; else why not."""
        readiness = service.readiness()
        return JSONResponse(readiness, status_code=200 if readiness["status"] == "ready" else 503)

    @api.get(METRICS, summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return api
