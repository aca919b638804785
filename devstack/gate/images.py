"""The project's images in the gate: every manifest runs them tagged with the project's version,
and every file a Dockerfile copies gets through .dockerignore (pure functions).

Hand-written because no linter knows them: they need the project's own version and its
build-context allow-list. Both failed first on a real cluster or a real `docker build`.
"""

from __future__ import annotations

import fnmatch
import functools
import tomllib
from collections.abc import Iterable
from pathlib import Path

from devstack.gate.capacity import Manifest
from devstack.proc import ROOT

PROJECT_IMAGES = (
    "event-collector/collector",
    "event-collector/producer",
    "event-collector/validator",
)


@functools.cache
def project_version() -> str:
    """The version in pyproject.toml, which every project image is tagged with."""
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def image_tags(objects: list[Manifest], version: str) -> list[str]:
    """The project's images carry the project's version, in every container of every overlay."""
    problems = []
    for obj in objects:
        template = obj.get("spec", {}).get("template", {}).get("spec", {})
        for c in [*template.get("initContainers", []), *template.get("containers", [])]:
            image = str(c.get("image", ""))
            name, _, tag = image.rpartition(":") if ":" in image else (image, "", "")
            if name.endswith(PROJECT_IMAGES) and tag != version:
                problems.append(
                    f"{obj['kind']}/{obj['metadata']['name']} container {c.get('name')}: image "
                    f"{image!r} is not tagged with the project's version {version}"
                )
    return problems


def _ignored(path: str, rules: list[str]) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (the last matching rule wins)."""
    excluded = False
    for rule in rules:
        negated = rule.startswith("!")
        pattern = rule.removeprefix("!").strip("/")
        if fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + "/"):
            excluded = not negated
    return excluded


def docker_context(dockerfiles: Iterable[Path]) -> list[str]:
    """Every file a Dockerfile COPYs from the context is let through by .dockerignore.

    A new package added to a Dockerfile but not to the allow-list failed only at `docker build`.
    """
    problems = []
    for dockerfile in dockerfiles:
        ignore = dockerfile.parent / ".dockerignore"
        rules = [
            line.strip()
            for line in (ignore.read_text().splitlines() if ignore.exists() else [])
            if line.strip() and not line.startswith("#")
        ]
        for line in dockerfile.read_text().splitlines():
            words = line.split()
            if not words or words[0].upper() not in ("COPY", "ADD"):
                continue
            if any(w.startswith("--from") for w in words):
                continue
            for source in [w for w in words[1:-1] if not w.startswith("--")]:
                if _ignored(source.strip("/").removeprefix("./"), rules):
                    problems.append(
                        f"{dockerfile.name}: COPY {source} is excluded by .dockerignore, so "
                        "`docker build` fails"
                    )
    return problems
