"""The problem table: every code has a status, a message and its flags, and every copy agrees."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from collector.api import problem_rows
from collector.app import create_app
from collector.problems import Problem
from collector.schemas import ProblemReply
from tests.collector.conftest import make_settings
from tests.collector.memory_sink import MemorySink

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "collector.md"


@pytest.mark.parametrize("problem", list(Problem))
def test_every_problem_is_complete_and_consistent(problem: Problem) -> None:
    assert problem.value == str(problem)
    assert problem.value.isidentifier()
    assert problem.status in {400, 401, 408, 413, 415, 422, 429, 431, 503}
    assert problem.message
    assert isinstance(problem.retryable, bool)
    assert isinstance(problem.dead_lettered, bool)
    # Input errors are stored and final; "try again later" stores nothing.
    if problem.dead_lettered:
        assert problem.status in {400, 422}
        assert not problem.retryable
    else:
        assert problem.status not in {400, 422}
    assert problem.retryable == (problem.status in {408, 429, 503})


def test_codes_and_messages_are_unique() -> None:
    assert len({p.value for p in Problem}) == len(Problem)
    assert len({p.message for p in Problem}) == len(Problem)


def test_the_reference_table_is_the_problem_table() -> None:
    assert problem_rows() in REFERENCE.read_text()
    for problem in Problem:
        assert REFERENCE.read_text().count(f"| `{problem}` |") == 1


def test_every_problem_that_stores_nothing_has_a_documented_canned_reply() -> None:
    app = create_app(make_settings(retry_after_s=7), MemorySink())
    canned = app.service._problems
    assert set(canned) == {p for p in Problem if not p.dead_lettered}
    for problem, reply in canned.items():
        assert reply.status == problem.status
        body = ProblemReply.model_validate_json(reply.body)
        assert body.error.code is problem
        assert body.error.message == problem.message
        assert body.status == ("retry" if problem.retryable else "rejected")
        headers = dict(reply.headers)
        assert headers[b"content-type"] == b"application/json"
        assert (b"retry-after" in headers) == (problem.status == 503)
        assert orjson.loads(reply.body)["error"]["details"] == []


def test_the_openapi_document_names_every_code_and_status() -> None:
    spec = create_app(make_settings(), MemorySink()).api.openapi()
    assert spec["components"]["schemas"]["Problem"]["enum"] == [p.value for p in Problem]
    assert problem_rows() in spec["info"]["description"]
    for path in ("/api/v1/collect", "/api/v1/collect/batch"):
        documented = set(spec["paths"][path]["post"]["responses"])
        assert {str(p.status) for p in Problem} <= documented
