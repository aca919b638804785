"""Where records go: a Sink protocol and the Kafka sink (tests have an in-memory one)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple, Protocol

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from collector.limits import producer_max_bytes
from collector.logs import Throttle, librdkafka_logger
from collector.problems import Problem
from kafkaconn import KafkaConnection

log = logging.getLogger("collector.sink")

_TOO_LARGE_CODES = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})

# Told each topic's max.message.bytes whenever they are read.
LimitsWatcher = Callable[[dict[str, int]], None]


class Record(NamedTuple):
    """One Kafka record to publish."""

    topic: str
    value: bytes
    key: bytes
    headers: list[tuple[str, bytes]]


class Delivery:
    """The outcome of one publish: per record, None once acknowledged, else why not."""

    __slots__ = ("_pending", "_timer", "errors", "future", "started_s")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int, timeout_s: float) -> None:
        self.errors: list[Problem | None] = [Problem.ACK_TIMEOUT] * count
        self.future: asyncio.Future[list[Problem | None]] = loop.create_future()
        self.started_s = time.perf_counter()
        self._pending = count
        self._timer = loop.call_later(timeout_s, self._expire)

    def settle(self, index: int, error: Problem | None) -> None:
        """Record one record's outcome; resolves the future when the last one is in."""
        if self.future.done():
            return  # late: the client was already told to retry
        self.errors[index] = error
        self._pending -= 1
        if self._pending == 0:
            self._timer.cancel()
            self.future.set_result(self.errors)

    def _expire(self) -> None:
        if not self.future.done():
            # A copy: records still pending stay Problem.ACK_TIMEOUT in what the caller sees.
            self.future.set_result(list(self.errors))


class Sink(Protocol):
    """Publishes records and says, per record, whether the destination acknowledged it."""

    async def start(self) -> None:
        """Acquire resources; called once by the app's lifespan."""

    def publish(self, records: Sequence[Record], timeout_s: float) -> Delivery:
        """Hand records over; the delivery resolves on the last ack or after `timeout_s`."""

    @property
    def ready(self) -> bool:
        """Whether the destination is reachable now."""

    @property
    def problem(self) -> str | None:
        """Why it is not ready, in a few words; None when it is."""

    def queue_depth(self) -> int:
        """Records handed over but not yet acknowledged."""

    def watch_limits(self, watcher: LimitsWatcher) -> None:
        """Call `watcher` with each topic's max.message.bytes whenever they are read."""

    async def close(self, timeout_s: float) -> int:
        """Flush for up to `timeout_s`; the number of records left undelivered."""


def producer_config(
    connection: KafkaConnection, ack_timeout_s: float, max_body_bytes: int
) -> dict[str, Any]:
    """librdkafka settings for the collector; the connection's own properties win."""
    defaults: dict[str, Any] = {
        # Only a record on every in-sync replica is acknowledged, and retries never duplicate
        # or reorder it: a 202 means the event is safe.
        "acks": "all",
        "enable.idempotence": True,
        # Half a millisecond lets concurrent requests share a produce request without making a
        # lone client wait (5 ms cost a sequential client ~7 ms per request). Measured at 32
        # connections (closed loop, medians of five 5 s runs on a busy 2-core machine): 0 ms
        # gave 13% fewer single events per second than 0.5 ms (a produce request per event costs
        # the broker more than the wait saves); 1 ms was the same within the noise.
        "linger.ms": 0.5,
        # Nagle's algorithm would hold a small produce request back until the previous one is
        # acknowledged by TCP; every request here is latency a client is waiting on.
        "socket.nagle.disable": True,
        # lz4: cheap on CPU; the sample generator's taxi envelopes shrink 4.5x in batches of ten
        # records and 7x in batches of 200, on the wire and on disk.
        "compression.type": "lz4",
        # librdkafka gives up on a record about when the client is told to retry, so an outage
        # does not leave a backlog that would arrive later as duplicates of the retries.
        # Against three brokers a dead leader's partitions move once the controller fences it
        # (broker.session.timeout.ms, 9 s by default). Measured with 3 s and the 5 s ack timeout:
        # clients waited at most 3.3-4.9 s and 0-16 of 2,000 events got a 503; with the default
        # 9 s, clients of those partitions get 503 + Retry-After and resend rather than wait.
        "message.timeout.ms": max(int(ack_timeout_s * 1000), 10),
        # Resends within that time (librdkafka's defaults, pinned): 100 ms doubling to 1 s, each
        # after a metadata refresh when the leader moved (NOT_LEADER_OR_FOLLOWER); idempotence
        # keeps a resent batch from being written twice (0 duplicate root_ids in the fault tests).
        # request.timeout.ms (how long the leader waits for its in-sync followers) keeps its 30 s:
        # the client's wait is already bounded by the ack timeout, and a shorter one would only
        # turn an acknowledgement still on its way into an error.
        "retry.backoff.ms": 100,
        "retry.backoff.max.ms": 1000,
        # Bounded memory: past this the producer raises BufferError and the client gets 503.
        "queue.buffering.max.messages": 200_000,
        "queue.buffering.max.kbytes": 262_144,
        # Room for the largest envelope or dead-letter record of a body under the limit (a dead
        # letter holds it as base64 when escaping would take more room); the topics' own limits
        # are read by the readiness check, and the body limit shrinks to fit them.
        "message.max.bytes": min(1_000_000_000, producer_max_bytes(max_body_bytes)),
        "client.id": "event-collector",
    }
    return connection.client_config(defaults)


# Not confluent_kafka.aio.AIOProducer: it refuses headers (2.16.1); without them 0.56x the events/s.
class KafkaSink:
    """A confluent-kafka Producer whose acknowledgements resolve asyncio futures."""

    def __init__(
        self,
        config: dict[str, Any],
        check_topics: Sequence[str],
        readiness_interval_s: float = 2.0,
    ) -> None:
        # librdkafka logs through Python logging (served by poll, in the poll thread), not stderr.
        self._config = {**config, "error_cb": self._on_error, "logger": librdkafka_logger()}
        self._check_topics = tuple(check_topics)
        self._readiness_interval_s = readiness_interval_s
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acks: list[tuple[Delivery, int, Problem | None]] = []
        self._stop_polling = threading.Event()
        self._drain_deadline = 0.0
        self._poller: threading.Thread | None = None
        self._checker: asyncio.Task[None] | None = None
        self._up = False
        self._fatal = False
        self._problem: str | None = "not checked yet"
        self._admin: AdminClient | None = None
        # Per topic: its min.insync.replicas and when it was read (it rarely changes).
        self._min_insync: dict[str, tuple[int, float]] = {}
        self._max_message_bytes: dict[str, int] = {}
        self._limits_watchers: list[LimitsWatcher] = []
        self._throttle = Throttle(interval_s=10.0)

    async def start(self) -> None:
        """Create the producer, start the poll thread and the reachability check."""
        self._loop = asyncio.get_running_loop()
        self._producer = Producer(self._config)
        # Topic configs are read by an admin client with the same connection settings.
        self._admin = AdminClient(
            {k: v for k, v in self._config.items() if k.startswith(_CONNECTION_KEYS)}
        )
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()
        self._checker = asyncio.create_task(self._check_forever())

    @property
    def ready(self) -> bool:
        """Whether the last check found every partition with a leader and enough in sync."""
        return self._up and not self._fatal

    @property
    def problem(self) -> str | None:
        """What the last check found wrong (None when ready)."""
        if self._fatal:
            return "kafka producer fatal error"
        return None if self._up else (self._problem or _UNREACHABLE)

    def queue_depth(self) -> int:
        """Records in librdkafka's queue, not yet acknowledged."""
        return len(self._producer) if self._producer is not None else 0

    def watch_limits(self, watcher: LimitsWatcher) -> None:
        """Call `watcher` (on the event loop) with the topics' max.message.bytes once read."""
        self._limits_watchers.append(watcher)

    def publish(self, records: Sequence[Record], timeout_s: float) -> Delivery:
        """Produce every record; a full queue or a produce error settles the rest at once."""
        assert self._loop is not None
        assert self._producer is not None
        delivery = Delivery(self._loop, len(records), timeout_s)
        produce = self._producer.produce
        on_delivery = self._on_delivery
        for index, record in enumerate(records):
            try:
                produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,  # type: ignore[arg-type]  # invariant list in the stub
                    on_delivery=partial(on_delivery, delivery, index),
                )
            except BufferError:
                for rest in range(index, len(records)):
                    delivery.settle(rest, Problem.QUEUE_FULL)
                break
            except KafkaException as exc:
                delivery.settle(index, self._failure(exc.args[0]))
        return delivery

    async def close(self, timeout_s: float) -> int:
        """Stop the checks, let the poll thread flush until empty or the deadline, then stop."""
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        if self._poller is None or self._producer is None:
            return 0
        self._drain_deadline = time.monotonic() + timeout_s
        self._stop_polling.set()
        await asyncio.to_thread(self._poller.join)
        producer, self._producer = self._producer, None
        self._up = False
        left = len(producer)
        if left:
            # Past the deadline: these clients were told to retry (ack timeout) or are gone.
            log.error("kafka flush incomplete", extra={"undelivered": left})
            producer.purge()
        # Frees librdkafka's threads and sockets now rather than whenever the object is collected.
        await asyncio.to_thread(producer.close)
        return left

    def _on_delivery(
        self, delivery: Delivery, index: int, err: KafkaError | None, _msg: Any
    ) -> None:
        # Runs in the poll thread, inside poll(): collect, hand over once per round.
        self._acks.append((delivery, index, None if err is None else self._failure(err)))

    def _poll(self) -> None:
        # The only thread that serves librdkafka callbacks: delivery reports of one poll round
        # reach the event loop in a single call_soon_threadsafe, not one wake-up per record.
        assert self._producer is not None
        assert self._loop is not None
        poll = self._producer.poll
        while True:
            stopping = self._stop_polling.is_set()
            if stopping and (len(self._producer) == 0 or time.monotonic() >= self._drain_deadline):
                break
            poll(0.05 if stopping else 0.1)
            if self._acks:
                acks, self._acks = self._acks, []
                try:
                    self._loop.call_soon_threadsafe(_settle_all, acks)
                except RuntimeError:
                    return  # the loop is closed: nobody is waiting any more

    def _failure(self, err: KafkaError) -> Problem:
        code = err.code()
        if code in _TOO_LARGE_CODES:
            return Problem.RECORD_TOO_LARGE
        if code == KafkaError._MSG_TIMED_OUT:
            return Problem.ACK_TIMEOUT
        if code == KafkaError._QUEUE_FULL:
            return Problem.QUEUE_FULL
        if self._throttle.allow("delivery:" + err.name()):
            log.warning("kafka delivery failed", extra={"error": str(err)})
        return Problem.KAFKA_ERROR

    def _on_error(self, err: KafkaError) -> None:
        # librdkafka retries on its own; these calls say how the cluster looks meanwhile.
        if err.fatal():
            self._fatal = True
            log.error("kafka producer fatal error", extra={"error": str(err)})
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:
            if self._up:
                log.warning("kafka unreachable", extra={"error": str(err)})
            self._up = False
            self._problem = _UNREACHABLE
        elif self._throttle.allow("client:" + err.name()):
            log.warning("kafka client error", extra={"error": str(err)})

    async def _check_forever(self) -> None:
        failing_since: float | None = None
        while True:
            problem = await asyncio.to_thread(self._check_once)
            now = time.monotonic()
            if problem != _UNREACHABLE or not self._up:
                failing_since = None
            elif (failing_since := failing_since or now) > now - _UNREACHABLE_GRACE_S:
                # Still ready: a metadata request that timed out (sent to a broker that just
                # died or stalled) is not yet an outage.
                await asyncio.sleep(self._readiness_interval_s)
                continue
            if self._max_message_bytes:
                limits = dict(self._max_message_bytes)
                for watcher in self._limits_watchers:
                    watcher(limits)
            up = problem is None
            if up and not self._up:
                log.info("kafka ready")
            elif problem != self._problem and not up:
                log.warning("kafka not ready", extra={"reason": problem})
            self._up, self._problem = up, problem
            await asyncio.sleep(self._readiness_interval_s)

    def _check_once(self) -> str | None:
        """None when every topic can take an acks=all write now, else why not.

        Reachable with the topics present is not enough: with fewer replicas in sync than
        `min.insync.replicas`, every write fails (NOT_ENOUGH_REPLICAS) after the ack timeout, so
        a replica that says ready would draw traffic it can only answer with 503.
        """
        assert self._producer is not None
        timeout_s = max(1.0, self._readiness_interval_s)
        try:
            for topic in self._check_topics:
                metadata = self._producer.list_topics(topic, timeout=timeout_s)
                found = metadata.topics.get(topic)
                if not metadata.brokers:
                    return _UNREACHABLE
                if found is None or found.error is not None:
                    return f"topic {topic} not found"
                min_insync = self._min_insync_replicas(topic, timeout_s)
                for partition in sorted(found.partitions.values(), key=lambda p: p.id):
                    if partition.leader < 0:
                        return f"{topic} partition {partition.id} has no leader"
                    if len(partition.isrs) < min_insync:
                        return (
                            f"{topic} partition {partition.id}: {len(partition.isrs)} of "
                            f"{len(partition.replicas)} replicas in sync, "
                            f"min.insync.replicas is {min_insync}"
                        )
        except KafkaException:
            return _UNREACHABLE
        return None

    def _min_insync_replicas(self, topic: str, timeout_s: float) -> int:
        """The topic's min.insync.replicas, read again every few minutes; 1 if unreadable.

        Its max.message.bytes is read with it, for the body limit (`watch_limits`).
        """
        known = self._min_insync.get(topic)
        if known is not None and time.monotonic() - known[1] < _TOPIC_CONFIG_MAX_AGE_S:
            return known[0]
        assert self._admin is not None
        value = known[0] if known else 1
        try:
            resource = ConfigResource("topic", topic)
            configs = self._admin.describe_configs([resource], request_timeout=timeout_s)
            entries = configs[resource].result(timeout=timeout_s)
            entry = entries.get("min.insync.replicas")
            value = int(entry.value) if entry is not None else value
            size = entries.get("max.message.bytes")
            if size is not None:
                self._max_message_bytes[topic] = int(size.value)
        except (KafkaException, ValueError, TypeError) as exc:
            # Without DescribeConfigs rights readiness still checks leaders; say so once.
            if self._throttle.allow("describe:" + topic):
                log.warning("topic config unreadable", extra={"topic": topic, "error": str(exc)})
        self._min_insync[topic] = (value, time.monotonic())
        return value


_UNREACHABLE = "kafka unreachable"
# How long metadata requests must keep failing before a ready replica turns unready. One that
# times out because it went to a broker that just died or stalled is no outage: measured, without
# this grace both replicas turned unready for about 2 s at every leader kill or pause in a
# three-broker cluster, and the balancer turned 17-20 of 2,000 requests away. A broker that is
# really gone also shows as ALL_BROKERS_DOWN (unready at once) or as too few replicas in sync.
_UNREACHABLE_GRACE_S = 5.0
# Settings an admin client shares with the producer: where the brokers are and how to connect.
_CONNECTION_KEYS = ("bootstrap.", "security.", "sasl.", "ssl.", "client.", "socket.", "logger")
_TOPIC_CONFIG_MAX_AGE_S = 300.0


def _settle_all(acks: list[tuple[Delivery, int, Problem | None]]) -> None:
    for delivery, index, error in acks:
        delivery.settle(index, error)
