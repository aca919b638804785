"""`python -m validator --help`: every setting with its variable, default and meaning."""

from __future__ import annotations

from tests.console.help_check import assert_lists_every_setting, run
from validator.settings import Settings


def test_help_lists_every_setting() -> None:
    result = run("validator", "--help")
    assert result.returncode == 0, result.stderr
    assert_lists_every_setting(result.stdout, Settings)
    assert run("validator", "run", "--help").stdout.count("VALIDATOR_GROUP_ID") == 1


def test_unknown_arguments_are_an_error() -> None:
    for args in (["--group-id=x"], ["run", "--group-id", "x"]):
        result = run("validator", *args)
        assert result.returncode == 2, args
        assert "unrecognized arguments: --group-id" in result.stderr
