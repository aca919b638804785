"""Help text and flags made from pydantic-settings models."""

from __future__ import annotations

import argparse

import pytest
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from console.settings_help import add_setting_flags, default_text, env_var, settings_epilog


class Example(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EX_", populate_by_name=True)

    rate_per_s: float = Field(
        2.5, validation_alias=AliasChoices("rate_per_s", "EX_RATE"), description="5% of it"
    )
    limit: int | None = Field(None, description="at most")
    verbose: bool = False
    password: SecretStr = SecretStr("")
    origins: tuple[str, ...] = ("a", "b")
    extra: dict[str, str] = Field(default_factory=dict, description="JSON")


def test_variables_and_defaults_as_a_person_types_them() -> None:
    assert env_var(Example, "rate_per_s") == "EX_RATE"
    assert env_var(Example, "limit") == "EX_LIMIT"
    assert [default_text(Example, n) for n in Example.model_fields] == [
        "2.5", "none", "false", "none", "a,b", "none",
    ]  # fmt: skip
    epilog = settings_epilog(Example, ["rate_per_s"])
    assert epilog.splitlines()[1:] == ["  EX_RATE  (default: 2.5)", "      5% of it"]


def test_flags_fall_back_to_the_environment_and_leave_out_what_only_it_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parser = argparse.ArgumentParser()
    env_only = add_setting_flags(parser, Example, flags={"rate_per_s": "--rate"})
    assert env_only == ["origins", "extra"]
    args = vars(parser.parse_args(["--rate", "7", "--verbose", "--password", "p"]))
    assert args == {"rate_per_s": 7.0, "limit": None, "verbose": True, "password": "p"}
    given = {k: v for k, v in args.items() if v is not None}
    monkeypatch.setenv("EX_LIMIT", "3")
    settings = Example(**given)
    assert (settings.rate_per_s, settings.limit, settings.verbose) == (7.0, 3, True)
    assert "5% of it (default: 2.5; env EX_RATE)" in " ".join(parser.format_help().split())
