"""A user's fix for parked bodies that were never events: a JSON Patch file or a Python file.

A `.json` file is an RFC 6902 JSON Patch (applied with the `jsonpatch` library) to the body parsed
as strict JSON; a `.py` file defines `transform(body: bytes) -> bytes | None` for anything a patch
cannot express (a bare `NaN` is not JSON, so no patch can read it). `None` leaves a record parked.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import jsonpatch
import orjson

Transform = Callable[[bytes], bytes | None]


class TransformError(ValueError):
    """The transformation file cannot be used (one line for the user)."""


def load(path: Path) -> Transform:
    if not path.is_file():
        raise TransformError(f"{path}: no such file")
    if path.suffix == ".json":
        try:
            patch = jsonpatch.JsonPatch(orjson.loads(path.read_bytes()))
        except (orjson.JSONDecodeError, jsonpatch.JsonPatchException, TypeError) as exc:
            raise TransformError(f"{path}: not a JSON Patch (RFC 6902): {exc}") from exc

        def apply(body: bytes) -> bytes:
            return orjson.dumps(patch.apply(orjson.loads(body)))

        return apply
    if path.suffix == ".py":
        spec = importlib.util.spec_from_file_location(f"dlq_transform_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise TransformError(f"{path}: cannot be loaded as Python")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        function = getattr(module, "transform", None)
        if not callable(function):
            raise TransformError(f"{path}: defines no transform(body: bytes) -> bytes | None")
        return function  # type: ignore[no-any-return]
    raise TransformError(f"{path}: a transformation is a .json (JSON Patch) or a .py file")
