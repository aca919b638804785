"""Hostile input against a real collector on a real broker: never a 5xx, memory stays bounded,
and every event the collector acknowledged is on the raw topic."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
import orjson
import pytest

from devstack.collector import CollectorProcess
from devstack.kafka import Broker, topic_count
from devstack.proc import rss_bytes
from tests.conftest import Topics
from tests.e2e.conftest import Replicas
from tests.e2e.hostile import Ledger, LivenessWatch, on_topic, raw_of

MAX_BODY_BYTES = 1_048_576  # COLLECTOR_MAX_BODY_BYTES, the contract's default
JSON = {"content-type": "application/json"}


def event(payload: object = None, **fields: object) -> dict[str, object]:
    return {"event_type": "Hostile", "schema_version": "1", "payload": payload or {}, **fields}


def body_of_size(size: int) -> bytes:
    """A valid event whose JSON body is exactly `size` bytes (a long string in its payload)."""
    empty = orjson.dumps(event({"s": ""}))
    return orjson.dumps(event({"s": "x" * (size - len(empty))}))


def nested(depth: int, leaf: str = "1") -> bytes:
    return b'{"event_type":"Hostile","schema_version":"1","payload":' + (
        b'{"a":' * depth + leaf.encode() + b"}" * depth + b"}"
    )


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    allowed: frozenset[int]
    headers: dict[str, str]
    path: str = "/api/v1/collect"


def case(
    name: str,
    body: bytes,
    *allowed: int,
    headers: dict[str, str] | None = None,
    batch: bool = False,
) -> Case:
    path = "/api/v1/collect/batch" if batch else "/api/v1/collect"
    return Case(name, body, frozenset(allowed), JSON if headers is None else headers, path)


def cases() -> list[Case]:
    valid = orjson.dumps(event({"n": 1}))
    # fmt: off
    return [
        case("nested 100,000 objects deep", nested(100_000), 422),
        case("nested 500,000 arrays deep", b"[" * 500_000 + b"]" * 500_000, 422),
        case("payload nested 63 deep (fine: 64 levels with the event)", nested(63), 202),
        case("payload nested 64 deep", nested(64), 422),
        case("nested 300 deep", nested(300), 422),
        case("float beyond double", nested(1, "1e400"), 400),
        case("tiny float", nested(1, "1e-400"), 202, 400, 422),
        case("integer of 4,000 digits", nested(1, "9" * 4000), 202, 400, 422),
        case("negative 2**64", nested(1, str(-(2**64))), 202, 400, 422),
        case("NaN", nested(1, "NaN"), 400),
        case("Infinity", nested(1, "-Infinity"), 400),
        case("body exactly at the limit", body_of_size(MAX_BODY_BYTES), 202, 413),
        case("body one byte over the limit", body_of_size(MAX_BODY_BYTES + 1), 413),
        case("body 10 MB over the limit", body_of_size(11 * MAX_BODY_BYTES), 413),
        case("invalid UTF-8 in a string", valid.replace(b'"Hostile"', b'"Host\xffile"'), 400),
        case("invalid UTF-8 alone", b"\xc3\x28\xa0\xa1\xe2\x28\xa1", 400),
        case("lone surrogate escape", nested(1, '"\\ud800"'), 202, 400),
        case("NUL byte", b"\x00", 400),
        case("empty body", b"", 400),
        case("JSON null", b"null", 422),
        case("a bare string", b'"event"', 422),
        case("extra top-level field", orjson.dumps(event(root_id="forged")), 422),
        case("duplicate keys", b'{"event_type":"a","event_type":"b","schema_version":"1",'
             b'"payload":{}}', 422),
        case("duplicate keys, one escaped", b'{"event_type":"a","event\\u005ftype":"b",'
             b'"schema_version":"1","payload":{}}', 422),
        case("event_type of 10,000 chars", orjson.dumps(
            {"event_type": "t" * 10_000, "schema_version": "1", "payload": {}}), 422),
        case("text/plain", valid, 202, 415, headers={"content-type": "text/plain"}),
        case("no content type", valid, 202, 415, headers={}),
        case("form encoded", b"event_type=a&payload=b", 400, 415, 422,
             headers={"content-type": "application/x-www-form-urlencoded"}),
        case("multipart junk", b"--x\r\nContent-Disposition: form-data\r\n\r\n1\r\n--x--", 400, 415,
             422, headers={"content-type": "multipart/form-data; boundary=x"}),
        case("batch: empty array", b"[]", 422, batch=True),
        case("batch: not an array", valid, 400, 422, batch=True),
        case("batch: 1,001 events", orjson.dumps([event()] * 1001), 413, batch=True),
        case("batch: mixed good and bad", orjson.dumps([event(), {"x": 1}, event()]), 202,
             batch=True),
        case("batch: nested deep", b"[" + nested(100_000) + b"]", 202, batch=True),
        case("batch: a good event and one 300 deep", b"[" + valid + b"," + nested(300) + b"]",
             202, batch=True),
        case("batch: a good event and one 1,000 deep holding 17 digits",
             b"[" + valid + b"," + nested(1000, "12345678901234567") + b"]", 202, batch=True),
    ]
    # fmt: on


@pytest.fixture
def replica(replicas: Replicas) -> CollectorProcess:
    return replicas.start(1)[0]


@pytest.mark.kafka
@pytest.mark.slow
def test_hostile_bodies_never_5xx_and_every_answer_is_on_its_topic(
    kafka: Broker, topics: Topics, replica: CollectorProcess
) -> None:
    ledger, wrong = Ledger(), []
    with (
        LivenessWatch(replica.url, replica.pid) as watch,
        httpx.Client(base_url=replica.url, timeout=30) as client,
    ):
        for item in cases():
            answer = client.post(item.path, content=item.body, headers=item.headers)
            print(f"hostile input: {item.name}: {answer.status_code}")
            if answer.status_code not in item.allowed:
                wrong.append((item.name, answer.status_code, answer.text[:200]))
            ledger.note(answer)
        # Chunked, with no Content-Length: the limit still holds while reading.
        chunks = iter(
            [
                body_of_size(2 * MAX_BODY_BYTES)[i : i + 65536]
                for i in range(0, 2 * MAX_BODY_BYTES, 65536)
            ]
        )
        answer = client.post("/api/v1/collect", content=chunks, headers=JSON)
        if answer.status_code != 413:
            wrong.append(("chunked, over the limit", answer.status_code, answer.text[:200]))
    assert wrong == []
    watch.assert_healthy()
    print(ledger.reconcile(kafka.bootstrap_servers, topics))


async def _send_batches(url: str, batches: int, size: int, concurrency: int) -> tuple[int, int]:
    """Post `batches` batches of `size` minimal events; resend what the collector says to retry.

    Returns (events accepted, 5xx answers other than 503).
    """
    tiny = {"event_type": "t", "schema_version": "1", "payload": {}}
    body = orjson.dumps([tiny] * size)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(batches):
        queue.put_nowait(index)
    accepted = server_errors = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted, server_errors
        while not queue.empty():
            queue.get_nowait()
            todo = body
            while todo:
                answer = await client.post("/api/v1/collect/batch", content=todo, headers=JSON)
                if answer.status_code >= 500 and answer.status_code != 503:
                    server_errors += 1
                reply = answer.json()
                accepted += int(reply.get("accepted", 0))
                retry = [r for r in reply.get("results", []) if r["status"] == "retry"]
                todo = orjson.dumps([tiny] * len(retry)) if retry else b""
                if retry:
                    await asyncio.sleep(0.2)

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return accepted, server_errors


@pytest.mark.kafka
@pytest.mark.slow
def test_a_million_tiny_events_keep_memory_bounded(
    kafka: Broker, topics: Topics, replica: CollectorProcess
) -> None:
    pid = replica.pid
    assert pid is not None
    rss_before = rss_bytes(pid)
    peak = rss_before
    done = False

    async def watch_memory() -> None:
        nonlocal peak
        while not done:
            peak = max(peak, rss_bytes(pid))
            await asyncio.sleep(0.25)

    async def run() -> tuple[int, int]:
        nonlocal done
        watcher = asyncio.create_task(watch_memory())
        try:
            return await _send_batches(replica.url, batches=1000, size=1000, concurrency=4)
        finally:
            done = True
            await watcher

    started = time.monotonic()
    accepted, server_errors = asyncio.run(run())
    seconds = time.monotonic() - started
    print(
        f"1,000,000 events in {seconds:.1f}s; collector RSS {rss_before / 2**20:.0f} MiB "
        f"before, {peak / 2**20:.0f} MiB peak"
    )
    assert server_errors == 0
    assert accepted == 1_000_000
    assert topic_count(kafka.bootstrap_servers, topics.raw) == accepted
    assert peak - rss_before < 200 * 2**20


# The spellings a re-encoding would change, each kept byte for byte on its topic.
EXACT = [
    b'{"f":1.0E2}',
    b'{"s":"\\u00e9"}',
    b'{"z":-0}',
    b'{"n":123456789012345678901234567890}',
]


@pytest.mark.kafka
@pytest.mark.slow
def test_every_element_is_stored_with_the_bytes_the_client_sent(
    kafka: Broker, topics: Topics, replica: CollectorProcess
) -> None:
    head = b'{"event_type":"Hostile","schema_version":"1","payload":'
    good = [head + payload + b"}" for payload in EXACT]
    bad = [b'{"event_type":"Hostile","payload":' + payload + b"}" for payload in EXACT]
    bad.append(head + b'{"s":"caf\xe9"}}')  # invalid UTF-8 inside one element
    bad.append(head + b"{}" + b',"event_type":"again"}')
    body = b"[ " + b" ,\n".join(good + bad) + b" ]"
    extra = b"".join(b'"%x":0,' % i for i in range(90_000))  # 830 KB: under the limit
    over_keyed = b'{"event_type":"Hostile",' + extra + b'"schema_version":"1","payload":{}}'
    ledger = Ledger()
    with httpx.Client(base_url=replica.url, timeout=30) as client:
        batch = client.post("/api/v1/collect/batch", content=body, headers=JSON)
        single = client.post("/api/v1/collect", content=over_keyed, headers=JSON)
    assert batch.status_code == 202
    assert [r["status"] for r in batch.json()["results"]] == ["accepted"] * 4 + ["rejected"] * 6
    codes = [r["error"]["code"] for r in batch.json()["results"][4:]]
    assert codes == ["invalid_event"] * 4 + ["invalid_utf8", "duplicate_key"]
    assert (single.status_code, single.json()["error"]["code"]) == (422, "invalid_event")
    for answer in (batch, single):
        ledger.note(answer)
    ledger.reconcile(kafka.bootstrap_servers, topics)
    raw = on_topic(kafka.bootstrap_servers, topics.raw)
    dead = on_topic(kafka.bootstrap_servers, topics.dead_letter)
    for root_id, sent in zip(ledger.accepted, good, strict=True):
        assert raw[root_id].startswith(sent[:-1] + b',"collector_timestamp"')
    rejected = [orjson.loads(dead[root_id]) for root_id in ledger.dead_lettered]
    assert [raw_of(record) for record in rejected] == [*bad, over_keyed]
    assert [record.get("batch_index") for record in rejected] == [4, 5, 6, 7, 8, 9, None]
