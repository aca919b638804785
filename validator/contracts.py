"""Contracts as files: `contracts/<event_type>/<schema_version>.json`, JSON Schema 2020-12.

Loading compiles each one once (jsonschema-rs); `check` holds every contract to the meta-schema and
every new version of a type to backward compatibility with the one before, as a registry would.
Nothing here touches Kafka.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# SchemaVer (MODEL-REVISION-ADDITION, as Snowplow's Iglu names them), or dotted SemVer.
_VERSION = re.compile(r"^[0-9]+([-.][0-9]+)*$")
# At most this many failing JSON pointers go into a dead-letter record: enough to act on.
MAX_POINTERS = 20


class ContractError(ValueError):
    """A contract file that cannot be used: not JSON, not 2020-12, or not a valid schema."""


def version_key(version: str) -> tuple[int, ...]:
    """Order versions numerically: 0-0-10 comes after 0-0-9."""
    return tuple(int(part) for part in re.split(r"[-.]", version))


def _pointer(path: Any) -> str:
    """A JSON pointer (RFC 6901) from a path of keys and indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


@dataclass(frozen=True)
class Contract:
    """One compiled contract; `problems` is empty when the payload conforms."""

    event_type: str
    schema_version: str
    schema: dict[str, Any] = field(repr=False)
    _validator: Any = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return f"{self.event_type}/{self.schema_version}"

    def problems(self, payload: Any) -> list[str]:
        """The JSON pointers (with what failed there) where `payload` breaks the contract."""
        if self._validator.is_valid(payload):  # the fast path: no error objects are built
            return []
        found: list[str] = []
        for error in self._validator.iter_errors(payload):
            found.append(f"{_pointer(error.instance_path) or '/'}: {error.message}")
            if len(found) >= MAX_POINTERS:
                break
        return sorted(found)


def read_schema(path: Path) -> dict[str, Any]:
    try:
        schema = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(schema, dict):
        raise ContractError(f"{path}: a contract is a JSON object")
    if schema.get("$schema") != DIALECT:
        raise ContractError(f"{path}: $schema must be {DIALECT}")
    return schema


def compile_contract(event_type: str, schema_version: str, schema: dict[str, Any]) -> Contract:
    try:
        jsonschema_rs.meta.validate(schema)
        validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    except (jsonschema_rs.ValidationError, ValueError) as exc:
        raise ContractError(f"{event_type}/{schema_version}: not a valid schema: {exc}") from exc
    return Contract(event_type, schema_version, schema, validator)


def contract_files(root: Path) -> Iterator[tuple[str, str, Path]]:
    """(event type, schema version, path) for every contract file under `root`, in order."""
    for type_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        files = [p for p in type_dir.glob("*.json") if _VERSION.match(p.stem)]
        for path in sorted(files, key=lambda p: version_key(p.stem)):
            yield type_dir.name, path.stem, path


@dataclass(frozen=True)
class Registry:
    """Every contract, by (event_type, schema_version)."""

    contracts: dict[tuple[str, str], Contract]

    @classmethod
    def load(cls, root: Path) -> Registry:
        contracts = {
            (event_type, version): compile_contract(event_type, version, read_schema(path))
            for event_type, version, path in contract_files(root)
        }
        if not contracts:
            raise ContractError(f"no contracts under {root}")
        return cls(contracts)

    def get(self, event_type: str, schema_version: str) -> Contract | None:
        return self.contracts.get((event_type, schema_version))


# ---------------------------------------------------------------- backward compatibility

_BOUNDS_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_BOUNDS_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_ALL_TYPES = frozenset({"null", "boolean", "object", "array", "number", "string", "integer"})


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    """Follow local `$ref`s (`#/...`); the contracts keep their shared parts in `$defs`."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        ref: str = schema["$ref"]
        if not ref.startswith("#"):
            raise ContractError(f"only local $ref is supported, found {ref}")
        target: Any = root
        for part in filter(None, ref[1:].split("/")):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        merged = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **merged}
        seen += 1
        if seen > 32:
            raise ContractError(f"$ref cycle at {ref}")
    return schema


def _types(schema: Any) -> frozenset[str]:
    """The JSON types a schema admits (integer is within number)."""
    if schema is False:
        return frozenset()
    if not isinstance(schema, dict):
        return _ALL_TYPES
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        return frozenset(_json_type(v) for v in values)
    declared = schema.get("type")
    if declared is None:
        return _ALL_TYPES
    names = {declared} if isinstance(declared, str) else set(declared)
    if "number" in names:
        names.add("integer")
    return frozenset(names)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _narrowed_bound(key: str, old: Any, new: Any) -> bool:
    if new is None:
        return False
    if old is None:
        return True
    return bool(new > old) if key in _BOUNDS_LOWER else bool(new < old)


def compatibility_problems(
    old: dict[str, Any], new: dict[str, Any], *, where: str = ""
) -> list[str]:
    """Why data valid under `old` could fail `new`: removed or newly required fields, narrowed
    types, enums or bounds, a changed pattern, extra properties newly forbidden."""
    return _compare(old, new, old_root=old, new_root=new, where=where)


def _compare(
    old: Any, new: Any, *, old_root: dict[str, Any], new_root: dict[str, Any], where: str
) -> list[str]:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    at = where or "/"
    problems: list[str] = []
    if not isinstance(old, dict) or not isinstance(new, dict):
        if old is not False and new is False:
            problems.append(f"{at}: now rejects everything")
        return problems
    old_types, new_types = _types(old), _types(new)
    if lost := sorted(old_types - new_types):
        problems.append(f"{at}: type narrowed, no longer accepts {', '.join(lost)}")
    if "enum" in new and "enum" in old:
        if removed := [v for v in old["enum"] if v not in new["enum"]]:
            problems.append(f"{at}: enum narrowed, drops {removed}")
    elif "enum" in new:
        problems.append(f"{at}: enum added")
    for key in (*_BOUNDS_LOWER, *_BOUNDS_UPPER):
        if _narrowed_bound(key, old.get(key), new.get(key)):
            problems.append(f"{at}: {key} narrowed from {old.get(key)} to {new.get(key)}")
    if new.get("pattern") is not None and new.get("pattern") != old.get("pattern"):
        problems.append(f"{at}: pattern changed")
    if new.get("format") is not None and new.get("format") != old.get("format"):
        problems.append(f"{at}: format changed")
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for name in sorted(old_props):
        if name not in new_props:
            problems.append(f"{where}/{name}: field removed")
        else:
            problems += _compare(
                old_props[name],
                new_props[name],
                old_root=old_root,
                new_root=new_root,
                where=f"{where}/{name}",
            )
    for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        problems.append(f"{where}/{name}: newly required")
    old_extra, new_extra = old.get("additionalProperties", True), new.get("additionalProperties")
    if new_extra is False and old_extra is not False:
        problems.append(f"{at}: additional properties newly forbidden")
    elif old_extra is False and new_extra is not False and new_extra is not None:
        problems += _compare(
            old_extra, new_extra, old_root=old_root, new_root=new_root, where=f"{where}/*"
        )
    if "items" in old and "items" in new:
        problems += _compare(
            old["items"], new["items"], old_root=old_root, new_root=new_root, where=f"{where}/0"
        )
    return problems


def check(root: Path) -> list[str]:
    """Every problem of the contracts under `root`: invalid schemas and incompatible versions."""
    problems: list[str] = []
    previous: dict[str, tuple[str, dict[str, Any]]] = {}
    files = list(contract_files(root))
    if not files:
        return [f"{root}: no contracts (expected <event_type>/<schema_version>.json)"]
    for event_type, version, path in files:
        try:
            schema = read_schema(path)
            compile_contract(event_type, version, schema)
        except ContractError as exc:
            problems.append(str(exc))
            continue
        if event_type in previous:
            old_version, old_schema = previous[event_type]
            for problem in compatibility_problems(old_schema, schema):
                problems.append(
                    f"{event_type}/{version} is not backward compatible with {old_version}: "
                    f"{problem}"
                )
        previous[event_type] = (version, schema)
    return problems
