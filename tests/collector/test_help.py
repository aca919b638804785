"""`python -m collector --help`: every setting with its variable, default and meaning; nothing else
is accepted on the command line."""

from __future__ import annotations

import pytest

from collector.settings import Settings
from tests.console.help_check import assert_lists_every_setting, run


def test_help_lists_every_setting_and_does_not_serve() -> None:
    result = run("collector", "--help")
    assert result.returncode == 0, result.stderr
    assert_lists_every_setting(result.stdout, Settings)
    assert "COLLECTOR_ID  (default: " in result.stdout  # the alias, not COLLECTOR_COLLECTOR_ID
    assert "/api/v1/docs" in result.stdout


@pytest.mark.parametrize("args", [["--port", "9000"], ["serve"]])
def test_any_argument_is_an_error(args: list[str]) -> None:
    result = run("collector", *args)
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
