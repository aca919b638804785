"""A wrong VALIDATOR_* setting is named in one line with what is wrong, never its value (it may be
a password), and `python -m validator` exits 2 before touching Kafka."""

from __future__ import annotations

import pytest

from tests.conftest import run_service

SECRET = "hunter2-do-not-print"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VALIDATOR_KAFKA_PROPERTIES": f'{{"sasl.password": "{SECRET}", "x": [1]}}'},
         "VALIDATOR_KAFKA_PROPERTIES"),
        ({"VALIDATOR_KAFKA_PROPERTIES": f'{{"sasl.password": "{SECRET}"'},
         "VALIDATOR_KAFKA_PROPERTIES"),
        ({"VALIDATOR_PORT": SECRET}, "VALIDATOR_PORT"),
        ({"VALIDATOR_BATCH_MAX_RECORDS": "0"}, "VALIDATOR_BATCH_MAX_RECORDS"),
    ],
)  # fmt: skip
def test_a_wrong_setting_is_named_never_printed_and_exits_2(
    env: dict[str, str], named: str
) -> None:
    result = run_service("validator", env)
    assert result.returncode == 2
    assert named in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
