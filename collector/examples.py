"""Example answers for the OpenAPI document, one per problem code, made by the real code.

The dead-lettered ones come from the `Enveloper` itself on a sample input, so their messages and
details are what a client would really read; the others are each problem's canned reply. Codes
come from `collector.problems` alone: a new problem is documented with its own example at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from collector.envelope import Enveloper, Invalid
from collector.problems import Problem
from collector.schemas import NOT_AN_EVENT

EXAMPLE_ROOT_ID = "019a9f6e-8f3c-7d2a-9b1e-3f5c2a7d4e10"
_EXAMPLE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


# Answers only one of the two collect routes gives; a batch answers a bad element in its results.
_BATCH_ONLY = frozenset({Problem.INVALID_BATCH, Problem.BATCH_TOO_LARGE})
_SINGLE_ONLY = frozenset({Problem.INVALID_EVENT, Problem.DUPLICATE_KEY, Problem.UNPROCESSABLE})


# What the enveloper is given to make each dead-lettered answer (an invalid batch goes through
# `batch`, an undecodable body through `undecodable`).
_INPUTS: dict[Problem, bytes] = {
    Problem.INVALID_JSON: b'{"event_type": "YellowTaxiTripRecords", "payload": NaN}',
    Problem.INVALID_UTF8: b'{"event_type": "Yellow\xff"}',
    Problem.INVALID_EVENT: orjson.dumps(NOT_AN_EVENT),
    Problem.TOO_DEEP: b'{"event_type": "T", "schema_version": "1", "payload": '
    + b'{"a": ' * 64
    + b"1"
    + b"}" * 64
    + b"}",
    Problem.DUPLICATE_KEY: b'{"event_type": "A", "event_type": "B", "schema_version": "1", '
    b'"payload": {}}',
}


def _rejection(problem: Problem) -> Invalid | None:
    """What the enveloper makes of an input that is `problem`, where one is known."""
    enveloper = Enveloper(
        "collector-example", clock=lambda: _EXAMPLE_TIME, new_id=lambda: EXAMPLE_ROOT_ID
    )
    made: object = None
    if problem in _INPUTS:
        made = enveloper.event(_INPUTS[problem])
    elif problem is Problem.INVALID_BATCH:
        made = enveloper.batch(b"[]")
    elif problem is Problem.INVALID_ENCODING:
        made = enveloper.undecodable(b"\x1f\x8b\x08", "gzip", "Compressed file ended early")
    if isinstance(made, Invalid) and made.problem is problem:
        return made
    return None  # documented from its message alone (tests compare it with the real answer)


def answer(problem: Problem) -> dict[str, Any]:
    """The body the collector answers with `problem`."""
    error: dict[str, Any]
    if not problem.dead_lettered:
        error = {"code": problem.value, "message": problem.message, "details": []}
        return {"status": problem.reply_status, "error": error}
    made = _rejection(problem)
    if made is None:
        error = {"code": problem.value, "message": problem.message, "details": []}
        return {"status": "rejected", "root_id": EXAMPLE_ROOT_ID, "error": error}
    error = {"code": made.problem.value, "message": made.message, "details": made.details}
    return {"status": "rejected", "root_id": made.root_id, "error": error}


def by_status(status: int, *, batch: bool = False) -> dict[str, dict[str, Any]]:
    """OpenAPI `examples` for one status of a collect route: one per problem code it can be."""
    other_route = _SINGLE_ONLY if batch else _BATCH_ONLY
    examples = {
        problem.value: {"summary": problem.message, "value": answer(problem)}
        for problem in Problem
        if problem.status == status and problem not in other_route
    }
    if batch and status == 503:
        examples = {
            "some_to_resend": {"summary": "resend the `retry` elements", "value": _batch_retry()},
            **examples,
        }
    return examples


def _batch_retry() -> dict[str, Any]:
    """A batch answer with one element stored and one to send again."""
    resend = answer(Problem.ACK_TIMEOUT)["error"]
    return {
        "status": "retry", "accepted": 1, "rejected": 0, "retry": 1,
        "results": [
            {"index": 0, "status": "accepted", "root_id": EXAMPLE_ROOT_ID},
            {"index": 1, "status": "retry", "root_id": None, "error": resend},
        ],
    }  # fmt: skip
