"""One check for `python -m <service> --help`: every setting listed with its variable, default and
meaning, for the collector's and the validator's tests."""

from __future__ import annotations

import subprocess
import sys

from pydantic import BaseModel

from console.settings_help import default_text, env_var
from devstack.proc import ROOT


def run(package: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", package, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def assert_lists_every_setting(help_text: str, model: type[BaseModel], prefix: str = "") -> None:
    """Each setting as `VARIABLE  (default: X)` with its meaning on the next line; a nested model
    (the Kafka connection) as one variable per field, `<VARIABLE>_<FIELD>`."""
    lines = help_text.splitlines()
    for name, field in model.model_fields.items():
        variable = f"{prefix}_{name.upper()}" if prefix else env_var(model, name)  # type: ignore[arg-type]
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            assert_lists_every_setting(help_text, nested, variable)
            continue
        line = f"  {variable}  (default: {default_text(model, name)})"
        assert line in lines, name
        assert field.description, f"{name} needs a description"
        assert lines[lines.index(line) + 1] == f"      {field.description}", name
