"""A wrong setting stops a component with one line per problem that names the variable, never
its value, and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devstack.proc import ROOT

SECRET = "pa55-w0rd-never-shown"


def start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COLLECTOR_", "VALIDATOR_"))}
    return subprocess.run(
        [sys.executable, "-m", *module.split()],
        env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("module", "env", "says"),
    [
        ("collector", {"COLLECTOR_PORT": "abc", "COLLECTOR_ALLOW_ANONYMOUS": "true"},
         ["collector: COLLECTOR_PORT: Input should be a valid integer, unable to parse string as "
          "an integer"]),
        ("collector", {"COLLECTOR_KAFKA_PROPERTIES": '{"sasl.password": "' + SECRET,
                       "COLLECTOR_ALLOW_ANONYMOUS": "true"},
         ["collector: COLLECTOR_KAFKA_PROPERTIES: not valid JSON (unexpected end of data at column "
          "41)"]),
        ("collector", {"COLLECTOR_KAFKA_PROPERTIES": '{"sasl.password": {"x": "' + SECRET + '"}}',
                       "COLLECTOR_ALLOW_ANONYMOUS": "true"},
         ["collector: COLLECTOR_KAFKA_PROPERTIES['sasl.password']: should be a string, a number or "
          "a boolean"]),
        ("validator", {"VALIDATOR_KAFKA_SASL_PASSWORD": SECRET,
                       "VALIDATOR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
         ["validator: VALIDATOR_KAFKA_SASL_USERNAME is needed with VALIDATOR_KAFKA_SASL_PASSWORD"]),
        ("validator", {"VALIDATOR_KAFKA_CA_FILE": "/no/such/ca.pem", "VALIDATOR_PORT": "-1"},
         ["validator: VALIDATOR_KAFKA_CA_FILE: Path does not point to a file",
          "validator: VALIDATOR_PORT: Input should be greater than or equal to 0"]),
        ("validator", {"VALIDATOR_KAFKA_SASL_PASWORD": SECRET},
         ["validator: VALIDATOR_KAFKA_SASL_PASWORD: Extra inputs are not permitted"]),
        ("producer reconcile a.parquet", {"PRODUCER_KAFKA_SASL_PASSWORD": SECRET},
         ["error: invalid settings:",
          "  PRODUCER_KAFKA_SASL_USERNAME is needed with PRODUCER_KAFKA_SASL_PASSWORD"]),
    ],
)  # fmt: skip
def test_a_wrong_setting_is_named_in_one_line_and_exits_2(
    module: str, env: dict[str, str], says: list[str]
) -> None:
    result = start(module, env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == says
    assert SECRET not in result.stderr + result.stdout
