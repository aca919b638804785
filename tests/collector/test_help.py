"""`python -m collector --help`: every setting with its variable, default and meaning; nothing else
is accepted on the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from collector.settings import Settings
from console.settings_help import default_text, env_var
from devstack.proc import ROOT

# Described where the Kafka connection is configured; every other setting says what it means.
_UNDESCRIBED = {"kafka_bootstrap_servers", "kafka_properties"}


def collector(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_help_lists_every_setting_and_does_not_serve() -> None:
    result = collector("--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name, field in Settings.model_fields.items():
        line = f"  {env_var(Settings, name)}  (default: {default_text(Settings, name)})"
        assert line in lines, name
        if name not in _UNDESCRIBED:
            assert field.description, f"{name} needs a description"
            assert lines[lines.index(line) + 1] == f"      {field.description}"
    assert "COLLECTOR_ID  (default: " in result.stdout  # the alias, not COLLECTOR_COLLECTOR_ID
    assert "/api/v1/docs" in result.stdout


@pytest.mark.parametrize("args", [["--port", "9000"], ["serve"]])
def test_any_argument_is_an_error(args: list[str]) -> None:
    result = collector(*args)
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
