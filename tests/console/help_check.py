"""One check for `python -m <service> --help`: every setting listed with its variable, default and
meaning, for the collector's and the validator's tests."""

from __future__ import annotations

import subprocess
import sys

from pydantic_settings import BaseSettings

from console.settings_help import default_text, env_var
from devstack.proc import ROOT

# Described where the Kafka connection is configured; every other setting says what it means.
UNDESCRIBED = frozenset({"kafka_bootstrap_servers", "kafka_properties"})


def run(package: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", package, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def assert_lists_every_setting(help_text: str, model: type[BaseSettings]) -> None:
    lines = help_text.splitlines()
    for name, field in model.model_fields.items():
        line = f"  {env_var(model, name)}  (default: {default_text(model, name)})"
        assert line in lines, name
        if name not in UNDESCRIBED:
            assert field.description, f"{name} needs a description"
            assert lines[lines.index(line) + 1] == f"      {field.description}", name
