"""Generated hostile requests (Hypothesis) against a real collector on a real broker, for a bounded
time: bodies (events, near-events, odd number spellings, junk bytes, batches of them), stacked and
broken content codings, extra and oversized headers, good and bad keys. No answer is a 5xx,
/healthz stays answered, and at the end every 202 is on the raw topic and every 400/422 on the
dead-letter topic, once.

`make fuzz` runs it for FUZZ_SECONDS (120 by default); `make test` for FUZZ_SECONDS=20 as set
here.
"""

from __future__ import annotations

import gzip
import os
import time
import zlib
from collections import Counter
from dataclasses import dataclass

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.collector import CollectorProcess
from devstack.kafka import Broker
from tests.conftest import Topics
from tests.e2e.conftest import Replicas
from tests.e2e.hostile import Ledger, LivenessWatch

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

KEY = "fuzz-key"
FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "20"))
EXAMPLES_PER_ROUND = 25
# Every answer a request may get; a 5xx (Kafka is healthy here) or a closed connection fails.
ANSWERS = {202, 400, 401, 413, 415, 422, 431}

# Number and string spellings a re-encoding would change, and depths either side of the limit.
LEAVES = [
    b"1.0E2",
    b"-0",
    b"123456789012345678901234567890",
    b'"\\u00e9"',
    b'"\\ud800"',
    b"1e400",
    b"NaN",
    b"1e-400",
    b"null",
    b'"caf\xe9"',
    b"[]",
    b"{}",
]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@st.composite
def elements(draw: st.DrawFn) -> bytes:
    """One event, near-event or junk, as bytes."""
    kind = draw(st.sampled_from(["event", "odd leaf", "deep", "extra field", "twice", "junk"]))
    head = b'{"event_type":"Fuzz","schema_version":"1","payload":'
    if kind == "event":
        return orjson.dumps(
            {
                "event_type": draw(st.text(min_size=1, max_size=30)),
                "schema_version": "1",
                "payload": draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5)),
            }
        )
    if kind == "odd leaf":
        return head + b'{"v":' + draw(st.sampled_from(LEAVES)) + b"}}"
    if kind == "deep":
        depth = draw(st.sampled_from([62, 63, 64, 300, 5_000]))
        return head + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    if kind == "extra field":
        return head + b'{},"root_id":"forged"}'
    if kind == "twice":
        return head + b'{},"event_type":"Other"}'
    return draw(st.binary(max_size=200))


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    headers: dict[str, str]


def _encode(body: bytes, codings: list[str], truncate: bool) -> bytes:
    for coding in codings:
        body = {"gzip": gzip.compress, "deflate": zlib.compress}.get(coding, bytes)(body)
    return body[: len(body) // 2] if truncate and codings else body


@st.composite
def requests(draw: st.DrawFn) -> Request:
    batch = draw(st.booleans())
    items = draw(st.lists(elements(), min_size=0 if batch else 1, max_size=6 if batch else 1))
    body = b"[" + b",".join(items) + b"]" if batch else items[0]
    codings = draw(st.lists(st.sampled_from(["gzip", "deflate", "identity"]), max_size=3))
    headers = {"content-type": draw(st.sampled_from(["application/json", "text/plain", "x/y"]))}
    if codings:
        headers["content-encoding"] = ", ".join(codings)
    authorization = draw(st.sampled_from([f"Bearer {KEY}", f"bEaReR {KEY}", "Bearer no", ""]))
    if authorization:
        headers["authorization"] = authorization
    names = st.from_regex(r"x-[a-z]{1,10}", fullmatch=True)
    extra = draw(st.dictionaries(names, st.from_regex(r"[!-~]{1,40}", fullmatch=True), max_size=5))
    if draw(st.integers(0, 9)) == 0:
        extra["x-padding"] = "p" * draw(st.sampled_from([1_000, 40_000]))
    return Request(
        "/api/v1/collect/batch" if batch else "/api/v1/collect",
        _encode(body, codings, draw(st.integers(0, 9)) == 0),
        {**extra, **headers},
    )


@pytest.fixture
def replica(replicas: Replicas) -> CollectorProcess:
    return replicas.start(1, env={"COLLECTOR_API_KEYS": KEY})[0]


def test_generated_hostile_requests_end_in_a_reconciliation(
    kafka: Broker, topics: Topics, replica: CollectorProcess
) -> None:
    ledger, statuses = Ledger(), Counter[int]()
    deadline = time.monotonic() + FUZZ_SECONDS
    with (
        LivenessWatch(replica.url, replica.pid) as watch,
        httpx.Client(base_url=replica.url, timeout=30) as client,
    ):

        @given(request=requests())
        @settings(
            max_examples=EXAMPLES_PER_ROUND,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def one(request: Request) -> None:
            answer = client.post(request.path, content=request.body, headers=request.headers)
            statuses[answer.status_code] += 1
            assert answer.status_code in ANSWERS, (request, answer.text[:300])
            ledger.note(answer)

        rounds = 0
        while time.monotonic() < deadline:
            one()
            rounds += 1
    counts = ledger.reconcile(kafka.bootstrap_servers, topics)
    print(f"\nfuzz: {sum(statuses.values())} requests in {rounds} rounds of generated input")
    print("| status | answers |\n|---|---|")
    for status, count in sorted(statuses.items()):
        print(f"| {status} | {count} |")
    print(
        f"reconciled: {counts['raw']} on the raw topic (each 202), {counts['dead_letter']} on "
        f"the dead-letter topic (each 400/422); /healthz slowest {watch.slowest_s:.2f}s, "
        f"RSS +{watch.rss_growth / 2**20:.0f} MiB"
    )
    watch.assert_healthy()
    assert min(statuses[202], statuses[400], statuses[422]) > 0  # the input reached every path
