"""`python -m validator --help`: every setting with its variable, default and meaning."""

from __future__ import annotations

import subprocess
import sys

from console.settings_help import default_text, env_var
from devstack.proc import ROOT
from validator.settings import Settings

_UNDESCRIBED = {"kafka_bootstrap_servers", "kafka_properties"}


def validator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "validator", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_help_lists_every_setting() -> None:
    result = validator("--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name, field in Settings.model_fields.items():
        line = f"  {env_var(Settings, name)}  (default: {default_text(Settings, name)})"
        assert line in lines, name
        if name not in _UNDESCRIBED:
            assert lines[lines.index(line) + 1] == f"      {field.description}", name
    assert validator("run", "--help").stdout.count("VALIDATOR_GROUP_ID") == 1


def test_unknown_arguments_are_an_error() -> None:
    for args in (["--group-id=x"], ["run", "--group-id", "x"]):
        result = validator(*args)
        assert result.returncode == 2, args
        assert "unrecognized arguments: --group-id" in result.stderr
