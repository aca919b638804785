"""The HTTP service: a small ASGI handler for the two collect routes in front of FastAPI."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from contextlib import asynccontextmanager
from hmac import compare_digest
from typing import Any, NamedTuple

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from collector import __version__, docs
from collector.envelope import (
    ERROR_CODES,
    INVALID_BATCH,
    INVALID_EVENT,
    INVALID_JSON,
    INVALID_UTF8,
    Accepted,
    Clock,
    Enveloper,
    IdSource,
    Outcome,
    Rejected,
    TooManyEvents,
    utc_now,
    uuid7,
)
from collector.logs import Throttle
from collector.metrics import Metrics
from collector.schemas import (
    EVENT,
    GREEN_EVENT,
    NOT_AN_EVENT,
    TAXI_EVENT,
    AcceptedReply,
    BatchReply,
    Health,
    Identity,
    ProblemReply,
    RejectedReply,
)
from collector.settings import Settings
from collector.sinks import (
    ACK_TIMEOUT,
    KAFKA_ERROR,
    QUEUE_FULL,
    TOO_LARGE,
    KafkaSink,
    Record,
    Sink,
    producer_config,
)

log = logging.getLogger("collector")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

COLLECT = "/api/v1/collect"
COLLECT_BATCH = "/api/v1/collect/batch"

# Codes of answers that store nothing; with ERROR_CODES and the sink's codes, the whole set.
BODY_TOO_LARGE = "body_too_large"
BATCH_TOO_LARGE = "batch_too_large"
UNAUTHORIZED = "unauthorized"
DRAINING = "draining"
REQUEST_TIMEOUT = "request_timeout"
INTERNAL_ERROR = "internal_error"

MESSAGES: dict[str, str] = {
    **ERROR_CODES,
    BODY_TOO_LARGE: "the body is larger than the limit; nothing was stored",
    BATCH_TOO_LARGE: "the batch has more events than the limit; nothing was stored",
    TOO_LARGE: "the record is larger than Kafka accepts; nothing was stored",
    UNAUTHORIZED: "a valid `Authorization: Bearer <key>` header is required",
    ACK_TIMEOUT: "Kafka did not acknowledge in time; nothing is claimed, send it again",
    QUEUE_FULL: "the send queue is full; nothing is claimed, send it again",
    KAFKA_ERROR: "Kafka refused the record; nothing is claimed, send it again",
    DRAINING: "this collector is shutting down; send it again (to another replica)",
    REQUEST_TIMEOUT: "the body did not arrive in time; nothing was stored, send it again",
    INTERNAL_ERROR: "unexpected error; nothing is claimed, send it again",
}

# The one place where outcomes become status codes: 4xx is "your input", 503 is "try again".
STATUS: dict[str, int] = {
    INVALID_JSON: 400,
    INVALID_UTF8: 400,
    INVALID_EVENT: 422,
    INVALID_BATCH: 422,
    UNAUTHORIZED: 401,
    BODY_TOO_LARGE: 413,
    BATCH_TOO_LARGE: 413,
    TOO_LARGE: 413,
    REQUEST_TIMEOUT: 408,
    ACK_TIMEOUT: 503,
    QUEUE_FULL: 503,
    KAFKA_ERROR: 503,
    DRAINING: 503,
    INTERNAL_ERROR: 503,
}

_JSON: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
_ACCEPTED_PREFIX = b'{"status":"accepted","root_id":"'


class Reply(NamedTuple):
    """A complete HTTP answer."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


class Collector:
    """Bodies in, Kafka records out, one reply per request; shared by both HTTP front ends."""

    def __init__(
        self, settings: Settings, sink: Sink, metrics: Metrics, enveloper: Enveloper
    ) -> None:
        self.sink = sink
        self.metrics = metrics
        self.enveloper = enveloper
        self.draining = False
        self.max_body_bytes = settings.max_body_bytes
        self.request_timeout_s = settings.request_timeout_s
        self._raw_topic = settings.raw_topic
        self._dead_letter_topic = settings.dead_letter_topic
        self._ack_timeout_s = settings.ack_timeout_s
        self._bearers = tuple(b"Bearer " + key.encode() for key in settings.api_keys)
        self._retry_headers = [*_JSON, (b"retry-after", str(settings.retry_after_s).encode())]
        self._problems = {code: self._problem(code) for code in STATUS if code not in ERROR_CODES}
        self._throttle = Throttle(interval_s=10.0)

    def _problem(self, code: str) -> Reply:
        status = STATUS[code]
        body = orjson.dumps(
            {
                "status": "retry" if status == 503 else "rejected",
                "error": {"code": code, "message": MESSAGES[code], "details": []},
            }
        )
        headers = self._retry_headers if status == 503 else _JSON
        if status == 401:
            headers = [*_JSON, (b"www-authenticate", b'Bearer realm="collector"')]
        if status == 408:
            headers = [*_JSON, (b"connection", b"close")]
        return Reply(status, body, headers)

    def problem(self, code: str) -> Reply:
        """The canned answer for a code that stores nothing."""
        return self._problems[code]

    def gate(self, headers: Iterable[tuple[bytes, bytes]]) -> Reply | None:
        """Answers due before the body is read (401, 503 draining, 413 by Content-Length)."""
        length = authorization = None
        for name, value in headers:
            if name == b"content-length":
                length = value
            elif name == b"authorization":
                authorization = value
        if self._bearers and not self._authorized(authorization):
            return self._problems[UNAUTHORIZED]
        if self.draining:
            return self._problems[DRAINING]
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return self._problems[BODY_TOO_LARGE]
        return None

    async def respond(
        self,
        headers: Iterable[tuple[bytes, bytes]],
        receive: Receive,
        handler: Callable[[bytes], Awaitable[Reply]],
    ) -> Reply:
        """The answer to one collect request: the gate, the body within its deadline, `handler`."""
        reply = self.gate(headers)
        if reply is not None:
            return reply
        try:
            async with asyncio.timeout(self.request_timeout_s):
                body = await _read_body(receive, self.max_body_bytes)
        except TimeoutError:
            return self._problems[REQUEST_TIMEOUT]
        return self._problems[BODY_TOO_LARGE] if body is None else await handler(body)

    def _authorized(self, authorization: bytes | None) -> bool:
        if authorization is None:
            return False
        # Constant-time against every key, so timing tells nothing about which one nearly matched.
        matches = [compare_digest(authorization, bearer) for bearer in self._bearers]
        return any(matches)

    async def single(self, body: bytes) -> Reply:
        """One event: 202 once Kafka has it, 400/422 once its dead-letter record is stored."""
        outcome = self.enveloper.event(body)
        delivery = self.sink.publish((self._record(outcome),), self._ack_timeout_s)
        error = (await delivery.future)[0]
        if error is not None:
            self.metrics.failed(error)
            self._note(error)
            return self._problems[error]
        self.metrics.kafka_ack_seconds.observe(time.perf_counter() - delivery.started_s)
        if type(outcome) is Accepted:
            self.metrics.events_accepted.inc()
            return Reply(202, _ACCEPTED_PREFIX + outcome.root_id.encode() + b'"}', _JSON)
        assert type(outcome) is Rejected
        return self._rejected(outcome)

    async def batch(self, body: bytes) -> Reply:
        """A JSON array: one result per element; 202 if all settled, 503 if any must be resent."""
        outcomes = self.enveloper.batch(body)
        if type(outcomes) is TooManyEvents:
            return self._problems[BATCH_TOO_LARGE]
        if type(outcomes) is Rejected:
            return await self.single_rejection(outcomes)
        assert isinstance(outcomes, list)
        records = [self._record(outcome) for outcome in outcomes]
        delivery = self.sink.publish(records, self._ack_timeout_s)
        errors = await delivery.future
        results: list[dict[str, Any]] = []
        accepted = rejected = retry = 0
        dead_lettered: dict[str, int] = {}
        for index, (outcome, error) in enumerate(zip(outcomes, errors, strict=True)):
            if error is None:
                if type(outcome) is Accepted:
                    accepted += 1
                    results.append(
                        {"index": index, "status": "accepted", "root_id": outcome.root_id}
                    )
                    continue
                assert type(outcome) is Rejected
                rejected += 1
                dead_lettered[outcome.code] = dead_lettered.get(outcome.code, 0) + 1
                results.append(
                    {
                        "index": index,
                        "status": "rejected",
                        "root_id": outcome.root_id,
                        "error": _error(outcome),
                    }
                )
                continue
            self.metrics.failed(error)
            if error == TOO_LARGE:
                rejected += 1
                status = "rejected"
            else:
                retry += 1
                status = "retry"
            results.append(
                {
                    "index": index,
                    "status": status,
                    "root_id": None,
                    "error": {"code": error, "message": MESSAGES[error], "details": []},
                }
            )
        if accepted:
            self.metrics.events_accepted.inc(accepted)
        for code, count in dead_lettered.items():
            self.metrics.dead_lettered(code, count)
        if retry:
            self._note(next(e for e in errors if e is not None and e != TOO_LARGE))
        else:
            self.metrics.kafka_ack_seconds.observe(time.perf_counter() - delivery.started_s)
        body_out = orjson.dumps(
            {
                "status": "retry" if retry else "settled",
                "accepted": accepted,
                "rejected": rejected,
                "retry": retry,
                "results": results,
            }
        )
        return Reply(503, body_out, self._retry_headers) if retry else Reply(202, body_out, _JSON)

    async def single_rejection(self, rejection: Rejected) -> Reply:
        """Store one dead-letter record, then say what was wrong."""
        delivery = self.sink.publish((self._record(rejection),), self._ack_timeout_s)
        error = (await delivery.future)[0]
        if error is not None:
            self.metrics.failed(error)
            self._note(error)
            return self._problems[error]
        return self._rejected(rejection)

    def _rejected(self, rejection: Rejected) -> Reply:
        self.metrics.dead_lettered(rejection.code)
        body = orjson.dumps(
            {"status": "rejected", "root_id": rejection.root_id, "error": _error(rejection)}
        )
        return Reply(STATUS[rejection.code], body, _JSON)

    def _record(self, outcome: Outcome) -> Record:
        topic = self._raw_topic if type(outcome) is Accepted else self._dead_letter_topic
        return Record(topic, outcome.value, outcome.key, outcome.headers)

    def _note(self, error: str) -> None:
        if self._throttle.allow(error):
            log.warning("events not stored, clients told to retry", extra={"reason": error})

    def internal_error(self, route: str) -> Reply:
        """Log an unexpected exception (throttled) and answer 503: never a 500."""
        if self._throttle.allow("exception:" + route):
            log.exception("unexpected error", extra={"route": route})
        return self._problems[INTERNAL_ERROR]


def _error(rejection: Rejected) -> dict[str, Any]:
    return {"code": rejection.code, "message": rejection.message, "details": rejection.details}


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes (never buffering more)."""
    message = await receive()
    if message["type"] != "http.request":
        raise _Disconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body if len(body) <= limit else None
    chunks = [body]
    size = len(body)
    while True:
        if size > limit:
            return None
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if size <= limit else None


class CollectorApp:
    """The ASGI app: collect routes served directly, everything else by FastAPI (`api`)."""

    def __init__(self, api: FastAPI, collector: Collector) -> None:
        self.api = api
        self.collector = collector
        self.metrics = collector.metrics
        self._handlers: dict[str, Callable[[bytes], Awaitable[Reply]]] = {
            COLLECT: collector.single,
            COLLECT_BATCH: collector.batch,
        }
        self._known_routes = frozenset(
            {"/healthz", "/readyz", "/metrics", "/api/v1", "/api/v1/docs", "/api/v1/redoc"}
            | {"/api/v1/openapi.json", COLLECT, COLLECT_BATCH}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route: POST to a collect path is handled here, the rest goes to FastAPI."""
        if scope["type"] == "http":
            path = scope["path"]
            handler = self._handlers.get(path)
            if handler is not None and scope["method"] == "POST":
                await self._collect(path, handler, scope, receive, send)
            else:
                await self._framework(path, scope, receive, send)
            return
        await self.api(scope, receive, send)

    async def _collect(
        self,
        route: str,
        handler: Callable[[bytes], Awaitable[Reply]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        collector = self.collector
        try:
            reply = await collector.respond(scope["headers"], receive, handler)
        except _Disconnected:
            self.metrics.request(route, 499)
            return
        except Exception:  # noqa: BLE001 - the contract: any failure is a 503 to retry, never a 500
            reply = collector.internal_error(route)
        headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode())]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})
        self.metrics.request(route, reply.status)

    async def _framework(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        status = 0

        async def send_tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.api(scope, receive, send_tracked)
        except Exception:  # noqa: BLE001 - the contract: any failure is a 503 to retry, never a 500
            reply = self.collector.internal_error(path)
            if not status:  # nothing sent yet: the client still gets a proper 503
                status = reply.status
                headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode())]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": reply.body})
        self.metrics.request(path if path in self._known_routes else "other", status)


async def _via_framework(
    collector: Collector, request: Request, handler: Callable[[bytes], Awaitable[Reply]]
) -> Response:
    # The same behaviour as the ASGI fast path, for when FastAPI is mounted on its own.
    try:
        reply = await collector.respond(request.headers.raw, request.receive, handler)
    except Exception:  # noqa: BLE001 - the contract: any failure is a 503 to retry, never a 500
        reply = collector.internal_error(request.url.path)
    headers = {name.decode(): value.decode() for name, value in reply.headers}
    return Response(reply.body, status_code=reply.status, headers=headers)


_DESCRIPTION = """
Accepts events over HTTP and answers only once Kafka has them (acks=all).

* **202**: stored on the raw topic. **400 / 422**: not JSON / not an event; the input is stored on
  the dead-letter topic (acknowledged before the answer) and the reply says what was wrong.
* **408**: the body did not arrive within the request timeout (10 s by default); nothing stored.
* **413**: too large, nothing stored. **401**: API keys are on and the bearer is missing or wrong.
* **503** with `Retry-After`: nothing is claimed (Kafka too slow or unreachable, send queue full,
  shutting down); send it again. No request is ever answered 500.

Bodies are parsed as JSON (RFC 8259, UTF-8) whatever their `Content-Type`, so browser beacons
sending `text/plain` work too. Error codes: {codes}.
"""


def _openapi_body(schema: dict[str, Any], examples: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "examples": examples}},
        }
    }


def _responses(ok: type, ok_text: str) -> dict[int | str, dict[str, Any]]:
    retry_after = {
        "Retry-After": {
            "description": "seconds to wait before retrying",
            "schema": {"type": "integer"},
        }
    }
    return {
        202: {"model": ok, "description": ok_text},
        400: {"model": RejectedReply, "description": "not JSON or not UTF-8; dead-lettered"},
        401: {"model": ProblemReply, "description": "API keys are on; bearer missing or wrong"},
        408: {
            "model": ProblemReply,
            "description": "the body did not arrive within the request timeout; nothing stored",
        },
        413: {"model": ProblemReply, "description": "over the size limit; nothing stored"},
        422: {"model": RejectedReply, "description": "JSON, but not an event; dead-lettered"},
        503: {
            "model": ok if ok is BatchReply else ProblemReply,
            "description": "nothing claimed (or, for a batch, the `retry` elements): send again",
            "headers": retry_after,
        },
    }


def build_api(settings: Settings, collector: Collector, lifespan: Any) -> FastAPI:
    """The FastAPI app: docs, probes, metrics, identity, and the declared collect routes."""
    api = FastAPI(
        title="Event collector",
        version=__version__,
        description=_DESCRIPTION.format(codes=", ".join(f"`{code}`" for code in STATUS)),
        docs_url=None,  # served by collector.docs, from the package's assets (no CDN)
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )
    docs.install(api, protected_paths=(COLLECT, COLLECT_BATCH), api_keys=bool(settings.api_keys))

    async def unexpected(request: Request, exc: Exception) -> Response:
        reply = collector.internal_error(request.url.path)
        headers = {name.decode(): value.decode() for name, value in reply.headers}
        return Response(reply.body, status_code=reply.status, headers=headers)

    # Starlette answers an unhandled exception with this instead of a 500 (then re-raises it for
    # the server, which `CollectorApp` catches).
    api.add_exception_handler(Exception, unexpected)
    event_schema = EVENT.json_schema()
    batch_schema = {
        "type": "array",
        "items": event_schema,
        "minItems": 1,
        "maxItems": settings.max_batch_events,
    }
    taxi = {"summary": "a yellow taxi trip", "value": TAXI_EVENT}
    identity = Identity(collector_id=settings.collector_id, version=__version__).model_dump()

    @api.post(
        COLLECT,
        summary="Collect one event",
        status_code=202,
        response_model=None,
        responses=_responses(AcceptedReply, "Kafka acknowledged the envelope"),
        openapi_extra=_openapi_body(
            event_schema,
            {
                "taxi": taxi,
                "no_event_id": {"summary": "without event_id", "value": GREEN_EVENT},
                "invalid": {"summary": "not an event: 422, dead-lettered", "value": NOT_AN_EVENT},
            },
        ),
    )
    async def collect(request: Request) -> Response:
        """Validate one event, wrap it in an envelope and answer once Kafka has it."""
        return await _via_framework(collector, request, collector.single)

    @api.post(
        COLLECT_BATCH,
        summary="Collect a batch of events",
        status_code=202,
        response_model=None,
        responses=_responses(BatchReply, "every element settled: accepted or dead-lettered"),
        openapi_extra=_openapi_body(
            batch_schema,
            {
                "taxis": {"summary": "two trips", "value": [TAXI_EVENT, GREEN_EVENT]},
                "mixed": {
                    "summary": "one good, one rejected",
                    "value": [TAXI_EVENT, {"event_type": "YellowTaxiTripRecords"}],
                },
            },
        ),
    )
    async def collect_batch(request: Request) -> Response:
        """One result per element; the status says whether anything must be sent again."""
        return await _via_framework(collector, request, collector.batch)

    @api.get("/api/v1", response_model=Identity, summary="Which collector answers")
    async def whoami() -> dict[str, Any]:
        """The collector id and version."""
        return identity

    @api.get(
        "/healthz", response_model=Health, response_model_exclude_none=True, summary="Liveness"
    )
    async def healthz() -> dict[str, Any]:
        """200 while the process runs; never looks at Kafka."""
        return {"status": "ok"}

    @api.get(
        "/readyz",
        response_model=Health,
        summary="Readiness",
        responses={503: {"model": Health, "description": "Kafka unreachable or draining"}},
    )
    async def readyz() -> JSONResponse:
        """200 only when Kafka is reachable and the service is not shutting down."""
        kafka = collector.sink.ready
        ready = kafka and not collector.draining
        return JSONResponse(
            {
                "status": "ready" if ready else "not_ready",
                "kafka": kafka,
                "draining": collector.draining,
            },
            status_code=200 if ready else 503,
        )

    @api.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(collector.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return api


def kafka_sink(settings: Settings) -> KafkaSink:
    """The real sink, configured from the settings."""
    config = producer_config(
        settings.kafka_bootstrap_servers,
        settings.ack_timeout_s,
        settings.max_body_bytes,
        settings.kafka_properties,
    )
    return KafkaSink(
        config,
        check_topics=(settings.raw_topic, settings.dead_letter_topic),
        readiness_interval_s=settings.readiness_interval_s,
    )


def create_app(
    settings: Settings,
    sink: Sink,
    *,
    clock: Clock = utc_now,
    new_id: IdSource = uuid7,
) -> CollectorApp:
    """Wire settings, sink, metrics and the envelope logic into the ASGI app."""
    metrics = Metrics(queue_depth=sink.queue_depth, kafka_up=lambda: float(sink.ready))
    enveloper = Enveloper(
        settings.collector_id,
        clock=clock,
        new_id=new_id,
        max_batch_events=settings.max_batch_events,
    )
    collector = Collector(settings, sink, metrics, enveloper)

    @asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        # The sink lives as long as the app: started before the first request, flushed after
        # the last one (the server has already waited for requests in flight).
        await sink.start()
        log.info(
            "collector started",
            extra={"collector_id": settings.collector_id, "raw_topic": settings.raw_topic},
        )
        try:
            yield
        finally:
            collector.draining = True
            left = await sink.close(settings.drain_timeout_s)
            log.info("collector stopped", extra={"undelivered": left})

    return CollectorApp(build_api(settings, collector, lifespan), collector)
