"""A wrong setting in one line: named by its environment variable, never shown by its value."""

from __future__ import annotations

import re

from pydantic import AliasChoices, ValidationError
from pydantic_settings import BaseSettings, SettingsError

_UNION_MEMBERS = frozenset({"str", "int", "float", "bool"})


def _variable(settings: type[BaseSettings], field: str) -> str:
    prefix = str(settings.model_config.get("env_prefix", ""))
    info = settings.model_fields.get(field)
    if info is None:
        return field.upper()  # already the alias that was read
    alias = info.validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0].upper()
    if isinstance(alias, str):
        return alias.upper()
    return (prefix + field).upper()


def settings_problems(
    exc: ValidationError | SettingsError, settings: type[BaseSettings]
) -> list[str]:
    """One line per wrong setting, `COLLECTOR_PORT: Input should be a valid integer`, naming the
    environment variable and what is wrong, never the value (it may be a password)."""
    prefix = str(settings.model_config.get("env_prefix", "")).upper()
    if isinstance(exc, SettingsError):
        found = re.search(r'field "(\w+)"', str(exc))
        return [f"{_variable(settings, found.group(1)) if found else 'a setting'}: cannot be read"]
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if loc[:1] == ["kafka"]:
            # The connection's own checks name its fields as KAFKA_*; the component adds its prefix.
            message = re.sub(r"\bKAFKA_", prefix + "KAFKA_", message)
            if len(loc) == 1:
                lines.append(message)
                continue
            name, loc = f"{prefix}KAFKA_{loc[1].upper()}", loc[1:]
        else:
            name = _variable(settings, loc[0]) if loc else ""
        if loc[-1:] and loc[-1] in _UNION_MEMBERS:
            # A property's value failed every member of its union: say so once.
            loc, message = loc[:-1], "should be a string, a number or a boolean"
        where = "".join(f"[{part!r}]" for part in loc[1:])
        line = f"{name}{where}: {message}" if name else message
        if line not in lines:
            lines.append(line)
    return lines
