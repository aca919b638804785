"""Property-based fuzzing from the collector's own OpenAPI document, against a real broker.

Every operation gets a bounded number of generated requests, valid and invalid; schemathesis
checks that none answers 5xx and that each answer matches the documented status codes,
content types, headers and schemas.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection

from devstack.collector import CollectorProcess
from devstack.kafka import Broker

EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def collector_api(
    kafka: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    """One collector on fresh topics, and the OpenAPI document it serves."""
    suffix = uuid.uuid4().hex[:10]
    raw, dead_letter = f"fuzz-raw-{suffix}", f"fuzz-dlq-{suffix}"
    kafka.create_topics([raw, dead_letter])
    log_dir: Path = tmp_path_factory.mktemp("fuzz")
    replica = CollectorProcess(
        kafka.bootstrap_servers,
        raw_topic=raw,
        dead_letter_topic=dead_letter,
        collector_id="collector-fuzz",
        log_path=log_dir / "collector.log",
    )
    replica.start()
    try:
        yield schemathesis.openapi.from_url(replica.url + "/api/v1/openapi.json")
    finally:
        assert replica.stop() == 0


# A batch is judged element by element: one whose events are all invalid is still 202, with
# each event's dead-letter result inside (the contract), where this check expects a 4xx.
PER_EVENT_RESULTS = {"POST /api/v1/collect/batch": [negative_data_rejection]}


def _fuzz(operation: schemathesis.APIOperation, mode: GenerationMode) -> None:
    """Bounded generated requests for one operation; raises on the first broken contract."""
    excluded = PER_EVENT_RESULTS.get(operation.label, []) if mode is GenerationMode.NEGATIVE else []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(excluded_checks=excluded)

    check()


@pytest.mark.kafka
@pytest.mark.slow
def test_every_operation_keeps_to_its_documented_contract(
    collector_api: schemathesis.BaseSchema,
) -> None:
    # schemathesis' own pytest plugin does not run under this pytest; hypothesis drives it here.
    operations = [result.ok() for result in collector_api.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {"POST /api/v1/collect", "POST /api/v1/collect/batch", "GET /readyz"} <= labels
    broken, fuzzed = [], []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode)
            except Unsatisfiable:
                # An operation that takes no input has no invalid input to generate.
                assert mode is GenerationMode.NEGATIVE
                continue
            except (Exception, BaseExceptionGroup) as exc:
                broken.append(f"{operation.label} ({mode.value}): {exc}")
            fuzzed.append(f"{operation.label} ({mode.value})")
    assert broken == [], "\n\n".join(broken)
    assert "POST /api/v1/collect (negative)" in fuzzed
    assert "POST /api/v1/collect/batch (negative)" in fuzzed
