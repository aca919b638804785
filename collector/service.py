"""The collect service: bodies in, Kafka records out, one reply per request.

What `collector.front` runs for each request on a collect route: the API-key and draining gate,
the body within its deadline, publishing, per-element batch results, metrics and throttled logs.
Replies are built here as bytes; tests hold them to `collector.schemas`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from hmac import compare_digest
from typing import Any, NamedTuple, ParamSpec, TypeVar

import orjson

from collector import encoding
from collector.envelope import Enveloper, Invalid, TooManyEvents, Valid, Verdict
from collector.limits import fit_body_limit
from collector.logs import Throttle
from collector.metrics import Metrics
from collector.problems import Problem
from collector.ratelimit import RateLimiter, retry_after_s
from collector.settings import Settings
from collector.sinks import Record, Sink

log = logging.getLogger("collector")

_P = ParamSpec("_P")
_T = TypeVar("_T")
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

JSON_HEADERS: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
_ACCEPTED_PREFIX = b'{"status":"accepted","root_id":"'
# Bodies this large (or compressed ones this large) are parsed on a worker thread, so that the
# event loop, which answers the probes, gets the interpreter every few milliseconds meanwhile.
OFFLOAD_BYTES = 65_536
# A batch reply lists each rejected element's message and details only while it stays within
# the request's own size (at least this much); past that, the dead-letter record has them.
MIN_REPLY_BUDGET_BYTES = 65_536


class Reply(NamedTuple):
    """A complete HTTP answer."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


Handler = Callable[[bytes], Awaitable[Reply]]


class Disconnected(Exception):
    """The client went away before sending its whole body."""


class CollectService:
    """Bodies in, Kafka records out, one reply per request; readiness and draining held here."""

    def __init__(
        self, settings: Settings, sink: Sink, metrics: Metrics, enveloper: Enveloper
    ) -> None:
        self.sink = sink
        self.metrics = metrics
        self.enveloper = enveloper
        # Set once, on SIGTERM (collector.server) or at shutdown: /readyz says 503, and new
        # requests are answered 503 `draining`.
        self.draining = False
        self.configured_body_bytes = settings.max_body_bytes
        # What the topics can hold may be less (`fit_topics`); `/metrics` shows the one in force.
        self.max_body_bytes = settings.max_body_bytes
        self.metrics.body_limit_bytes.set(settings.max_body_bytes)
        self._topics = (settings.raw_topic, settings.dead_letter_topic)
        self._short: str | None = None
        self.request_timeout_s = settings.request_timeout_s
        self._raw_topic = settings.raw_topic
        self._dead_letter_topic = settings.dead_letter_topic
        self._ack_timeout_s = settings.ack_timeout_s
        self._keys = tuple(key.encode() for key in settings.api_keys)
        # A 401 is logged at most once a second per client address.
        self._refusals = Throttle(interval_s=1.0)
        self._retry_headers = [
            *JSON_HEADERS,
            (b"retry-after", str(settings.retry_after_s).encode()),
        ]
        # Canned answers for every problem that stores nothing (the others name a root_id).
        self._problems = {
            problem: self._problem(problem) for problem in Problem if not problem.dead_lettered
        }
        self._throttle = Throttle(interval_s=10.0)
        self._limiter = (
            RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
            if settings.rate_limit_per_s > 0
            else None
        )

    @property
    def ready(self) -> bool:
        """Taking events: Kafka can take writes now and this collector is not draining."""
        return self.sink.ready and not self.draining

    def readiness(self) -> dict[str, Any]:
        """What /readyz says (`collector.schemas.Health`): ready or not, and why not."""
        kafka, ready = self.sink.ready, self.ready
        reason = "draining" if self.draining else self.sink.problem
        return {
            "status": "ready" if ready else "not_ready",
            "kafka": kafka,
            "draining": self.draining,
            **({} if ready or reason is None else {"reason": reason}),
        }

    def _problem(self, problem: Problem) -> Reply:
        body = orjson.dumps(
            {
                "status": problem.reply_status,
                "error": {"code": problem, "message": problem.message, "details": []},
            }
        )
        headers = self._retry_headers if problem.status == 503 else JSON_HEADERS
        if problem.status == 401:
            headers = [*JSON_HEADERS, (b"www-authenticate", b'Bearer realm="collector"')]
        if problem.status == 408:
            headers = [*JSON_HEADERS, (b"connection", b"close")]
        return Reply(problem.status, body, headers)

    def gate(
        self, length: bytes | None, authorization: bytes | None, client: str = ""
    ) -> Reply | None:
        """Answers due before the body is read (401, 503 draining, 429, 413 by Content-Length)."""
        key = b""
        if self._keys:
            refused, key = self._authorize(authorization)
            if refused:
                return self._unauthorized(refused, client)
        if self.draining:
            return self._problems[Problem.DRAINING]
        if self._limiter is not None:
            # Per API key (just checked); one shared bucket when keys are off.
            wait_s = self._limiter.take(key)
            if wait_s:
                return self._rate_limited(wait_s)
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return self._problems[Problem.BODY_TOO_LARGE]
        return None

    async def respond(
        self,
        headers: Iterable[tuple[bytes, bytes]],
        receive: Receive,
        handler: Handler,
        client: str = "",
    ) -> Reply:
        """The answer to one collect request: the gate, the body within its deadline, `handler`."""
        length = authorization = None
        content_codings: list[bytes] = []
        for name, value in headers:  # one pass over the headers, on the hot path
            if name == b"content-length":
                length = value
            elif name == b"authorization":
                authorization = value
            elif name == b"content-encoding":
                content_codings.append(value)
        reply = self.gate(length, authorization, client)
        if reply is not None:
            return reply
        codings = encoding.codings(content_codings) if content_codings else []
        if isinstance(codings, encoding.Unsupported):
            return self._problems[Problem.UNSUPPORTED_ENCODING]
        if isinstance(codings, encoding.TooManyCodings):
            return self._problems[Problem.TOO_MANY_ENCODINGS]
        limit = self.max_body_bytes
        try:
            async with asyncio.timeout(self.request_timeout_s):
                body = await read_body(receive, limit)
        except TimeoutError:
            return self._problems[Problem.REQUEST_TIMEOUT]
        if body is not None and codings:
            decoded = await off_loop(len(body), encoding.decode, body, codings, limit)
            if isinstance(decoded, encoding.Corrupt):
                rejection = self.enveloper.undecodable(body, decoded.coding, decoded.reason)
                return await self.single_rejection(rejection)
            body = decoded if isinstance(decoded, bytes) else None
        return self._problems[Problem.BODY_TOO_LARGE] if body is None else await handler(body)

    def _rate_limited(self, wait_s: float) -> Reply:
        self.metrics.rate_limited.inc()
        reply = self._problems[Problem.RATE_LIMITED]
        retry_after = (b"retry-after", str(retry_after_s(wait_s)).encode())
        return Reply(429, reply.body, [*reply.headers, retry_after])

    def _authorize(self, authorization: bytes | None) -> tuple[str, bytes]:
        """("", the key) for a valid `Bearer <key>` (the scheme in any case, RFC 9110 section
        11.1), else (why not, b"")."""
        if authorization is None:
            return "missing", b""
        scheme, _, token = authorization.strip().partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            return "malformed", b""
        # Constant-time against every key, so timing tells nothing about which one nearly matched.
        matches = [compare_digest(token, key) for key in self._keys]
        return ("", token) if any(matches) else ("wrong_key", b"")

    def _unauthorized(self, reason: str, client: str) -> Reply:
        self.metrics.unauthorized.labels(reason).inc()
        if self._refusals.allow(client):
            log.warning(
                "request without a valid API key", extra={"client": client, "reason": reason}
            )
        return self._problems[Problem.UNAUTHORIZED]

    def fit_topics(self, max_message_bytes: dict[str, int]) -> None:
        """Bring the body limit within what the topics hold (their `max.message.bytes`, as the
        sink reads them at start-up and every few minutes), so every accepted body can be stored."""
        raw, dead_letter = self._topics
        if raw not in max_message_bytes or dead_letter not in max_message_bytes:
            return
        fit = fit_body_limit(
            self.configured_body_bytes,
            (raw, max_message_bytes[raw]),
            (dead_letter, max_message_bytes[dead_letter]),
        )
        self.max_body_bytes = fit.body_bytes
        self.metrics.body_limit_bytes.set(fit.body_bytes)
        if fit.short != self._short:
            if fit.short:
                log.error("body limit lowered to fit the topics", extra={"problem": fit.short})
            else:
                log.info("body limit back to COLLECTOR_MAX_BODY_BYTES")
            self._short = fit.short

    async def single(self, body: bytes) -> Reply:
        """One event: 202 once Kafka has it, 400/422 once its dead-letter record is stored."""
        verdict = await off_loop(len(body), self.enveloper.event, body)
        delivery = self.sink.publish((self._record(verdict),), self._ack_timeout_s)
        error = (await delivery.future)[0]
        if error is not None:
            return self._not_stored(error)
        self.metrics.kafka_ack_seconds.observe(time.perf_counter() - delivery.started_s)
        if type(verdict) is Valid:
            self.metrics.events_accepted.inc()
            return Reply(202, _ACCEPTED_PREFIX + verdict.root_id.encode() + b'"}', JSON_HEADERS)
        assert type(verdict) is Invalid
        return self._rejected(verdict)

    async def batch(self, body: bytes) -> Reply:
        """A JSON array: one result per element; 202 if all settled, 503 if any must be resent."""
        verdicts = await off_loop(len(body), self.enveloper.batch, body)
        if type(verdicts) is TooManyEvents:
            return self._problems[Problem.BATCH_TOO_LARGE]
        if type(verdicts) is Invalid:
            return await self.single_rejection(verdicts)
        assert isinstance(verdicts, list)
        records = [self._record(verdict) for verdict in verdicts]
        delivery = self.sink.publish(records, self._ack_timeout_s)
        errors = await delivery.future
        results = _BatchResults(budget_bytes=max(MIN_REPLY_BUDGET_BYTES, len(body)))
        for index, (verdict, error) in enumerate(zip(verdicts, errors, strict=True)):
            if error is None:
                results.stored(index, verdict)
            else:
                self.metrics.failed(error)
                results.not_stored(index, error)
        if results.accepted:
            self.metrics.events_accepted.inc(results.accepted)
        for problem, count in results.dead_lettered.items():
            self.metrics.dead_lettered(problem, count)
        if results.retry:
            self._note(next(e for e in errors if e is not None and e.retryable))
            return Reply(503, results.body(), self._retry_headers)
        self.metrics.kafka_ack_seconds.observe(time.perf_counter() - delivery.started_s)
        return Reply(202, results.body(), JSON_HEADERS)

    async def single_rejection(self, rejection: Invalid) -> Reply:
        """Store one dead-letter record, then say what was wrong."""
        delivery = self.sink.publish((self._record(rejection),), self._ack_timeout_s)
        error = (await delivery.future)[0]
        if error is not None:
            return self._not_stored(error)
        return self._rejected(rejection)

    def _not_stored(self, error: Problem) -> Reply:
        self.metrics.failed(error)
        self._note(error)
        return self._problems[error]

    def _rejected(self, rejection: Invalid) -> Reply:
        self.metrics.dead_lettered(rejection.problem)
        body = orjson.dumps(
            {"status": "rejected", "root_id": rejection.root_id, "error": _error(rejection)}
        )
        return Reply(rejection.problem.status, body, JSON_HEADERS)

    def _record(self, verdict: Verdict) -> Record:
        topic = self._raw_topic if type(verdict) is Valid else self._dead_letter_topic
        return Record(topic, verdict.value, verdict.key, verdict.headers)

    def _note(self, error: Problem) -> None:
        if self._throttle.allow(error):
            log.warning("events not stored, clients told to retry", extra={"reason": error})

    def unexpected(self, route: str) -> Reply:
        """The one catch-all: log an unexpected exception (throttled), answer 503, never 500."""
        if self._throttle.allow("exception:" + route):
            log.exception("unexpected error", extra={"route": route})
        return self._problems[Problem.INTERNAL_ERROR]


class _BatchResults:
    """A batch reply's results, element by element, and the counts they add up to."""

    def __init__(self, budget_bytes: int) -> None:
        self.results: list[dict[str, Any]] = []
        self.accepted = self.rejected = self.retry = 0
        self.dead_lettered: dict[Problem, int] = {}
        # Details only while the reply stays within budget: never a reply many times the size
        # of the request (1,000 rejected elements could otherwise say megabytes).
        self._budget_bytes = budget_bytes

    def stored(self, index: int, verdict: Verdict) -> None:
        """Kafka has it: accepted on the raw topic, or rejected on the dead-letter topic."""
        if type(verdict) is Valid:
            self.accepted += 1
            self.results.append({"index": index, "status": "accepted", "root_id": verdict.root_id})
            return
        assert type(verdict) is Invalid
        self.rejected += 1
        self.dead_lettered[verdict.problem] = self.dead_lettered.get(verdict.problem, 0) + 1
        said = _error(verdict)
        self._budget_bytes -= len(orjson.dumps(said))
        if self._budget_bytes < 0:
            said = {"code": verdict.problem, "message": "", "details": []}
        result = {"index": index, "status": "rejected", "root_id": verdict.root_id, "error": said}
        self.results.append(result)

    def not_stored(self, index: int, error: Problem) -> None:
        """Kafka did not take it: to send again when `error` is retryable, else final."""
        if error.retryable:
            self.retry += 1
        else:
            self.rejected += 1
        self.results.append(
            {
                "index": index,
                "status": error.reply_status,
                "root_id": None,
                "error": {"code": error, "message": error.message, "details": []},
            }
        )

    def body(self) -> bytes:
        """The reply's body: `retry` when anything must be sent again, else `settled`."""
        return orjson.dumps(
            {
                "status": "retry" if self.retry else "settled",
                "accepted": self.accepted,
                "rejected": self.rejected,
                "retry": self.retry,
                "results": self.results,
            }
        )


def _error(rejection: Invalid) -> dict[str, Any]:
    return {"code": rejection.problem, "message": rejection.message, "details": rejection.details}


async def off_loop(size: int, work: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`work(*args)` on a worker thread when its input is `size` bytes past OFFLOAD_BYTES."""
    if size < OFFLOAD_BYTES:
        return work(*args, **kwargs)
    return await asyncio.to_thread(work, *args, **kwargs)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes (never buffering more)."""
    message = await receive()
    if message["type"] != "http.request":
        raise Disconnected
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
            raise Disconnected
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if size <= limit else None
