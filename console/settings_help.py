"""Command lines from pydantic-settings models.

Each setting is described once, on its field (`Field(description=...)`); `--help` lists it with
its environment variable and default, and the producer's flags are made from the same fields, so
the help can never fall behind the settings.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic_settings import BaseSettings

_SCALARS: tuple[type, ...] = (str, int, float, bool, Path)


def env_var(model: type[BaseSettings], name: str) -> str:
    """The environment variable a setting is read from: its upper-case alias, else prefix+name."""
    alias = model.model_fields[name].validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
    for choice in choices:
        if isinstance(choice, str) and choice.isupper():
            return choice
    return f"{model.model_config.get('env_prefix', '')}{name}".upper()


def default_text(model: type[BaseModel], name: str) -> str:
    """A setting's default as a person would type it: `none` for nothing, lists comma-joined."""
    field = model.model_fields[name]
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None or (isinstance(value, list | tuple | dict) and not value):
        return "none"
    if isinstance(value, SecretStr):
        return "set" if value.get_secret_value() else "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def settings_epilog(
    model: type[BaseSettings], names: typing.Iterable[str] | None = None, *, title: str = ""
) -> str:
    """The settings (all, or `names`) as `VARIABLE (default: X)` and their meaning, one each."""
    lines = [title or "settings (environment variables):"]
    for name in model.model_fields if names is None else names:
        lines += _described(model, name, env_var(model, name))
    return "\n".join(lines)


def _described(model: type[BaseModel], name: str, variable: str) -> list[str]:
    """`VARIABLE (default: X)` and its meaning; a nested model (the Kafka connection) as one
    variable per field, `<VARIABLE>_<FIELD>`, as pydantic-settings reads them."""
    nested = model.model_fields[name].annotation
    if isinstance(nested, type) and issubclass(nested, BaseModel):
        return [
            line
            for field in nested.model_fields
            for line in _described(nested, field, f"{variable}_{field.upper()}")
        ]
    lines = [f"  {variable}  (default: {default_text(model, name)})"]
    description = model.model_fields[name].description
    return [*lines, f"      {description}"] if description else lines


def _scalar(annotation: Any) -> type | None:
    """The one plain type a flag can parse (`int | None` -> int), else None."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if annotation is SecretStr:
        return str
    return annotation if annotation in _SCALARS else None


def add_setting_flags(
    parser: argparse.ArgumentParser,
    model: type[BaseSettings],
    *,
    flags: Mapping[str, str] | None = None,
    skip: typing.Iterable[str] = (),
) -> list[str]:
    """A `--flag` per plain setting of `model` (default None: unset falls back to the
    environment), its help naming the default and the variable; the settings left out because
    they have no plain type, which only the environment sets."""
    flags = flags or {}
    env_only = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        kind = _scalar(field.annotation)
        if kind is None:
            env_only.append(name)
            continue
        meaning = (field.description or "").replace("%", "%%")
        help_text = f"{meaning} (default: {default_text(model, name)}; env {env_var(model, name)})"
        options: dict[str, Any] = {"dest": name, "default": None, "help": help_text.strip()}
        if kind is bool:
            options["action"] = "store_true"
        else:
            convert: Callable[[str], Any] = kind
            options.update(type=convert, metavar=_METAVARS.get(kind, "VALUE"))
        parser.add_argument(flags.get(name, "--" + name.replace("_", "-")), **options)
    return env_only


_METAVARS = {int: "N", float: "X", str: "TEXT", Path: "PATH"}
