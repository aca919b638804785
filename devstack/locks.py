"""The locks in requirements/: what each environment installs, and whether pyproject.toml agrees.

`make lock` writes them with uv (`uv pip compile --universal --generate-hashes`), one per
environment: each image's runtime, the dev virtualenv, and the tools that live apart (uv itself,
checkov, pip-audit). pip-requirements-parser (pip's own parser, packaged) reads them; uv's
`# via event-collector (pyproject.toml)` annotations say which pins pyproject.toml asked for.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pip_requirements_parser import RequirementsFile  # type: ignore[import-untyped]

from devstack.proc import ROOT

REQUIREMENTS_DIR = ROOT / "requirements"
PROJECT = "event-collector"
# Lock file -> what pyproject.toml asks of it: the project's extras, or a dependency group.
IMAGE_EXTRAS = ("collector", "producer", "validator")
EXTRAS = {"dev": "dev", **{name: name for name in IMAGE_EXTRAS}}
GROUPS = ("uv", "checkov", "audit")
GONE = "which no longer asks for it"
# The images run CPython 3.11 on Linux: a pin whose marker is false there is not installed.
IMAGE_ENVIRONMENT = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_python_implementation": "CPython",
    "implementation_name": "cpython",
    "python_version": "3.11",
}


@dataclass(frozen=True)
class Pin:
    """One locked package: exact version, the sha256 of every file allowed, and its marker."""

    name: str  # canonical: lower case, runs of -_. as one -
    version: str
    sha256: frozenset[str]
    marker: Marker | None
    direct: bool  # pyproject.toml asked for it (uv's `# via` annotation)

    def installed_on(self, environment: dict[str, str]) -> bool:
        return self.marker is None or self.marker.evaluate(environment)


def read_lock(path: Path) -> dict[str, Pin]:
    """The pins of one lock file, by canonical name."""
    parsed = RequirementsFile.from_file(str(path))
    if parsed.invalid_lines:
        raise ValueError(f"{path}: unreadable lines {parsed.invalid_lines}")
    direct = _direct_names(path.read_text(encoding="utf-8"))
    pins: dict[str, Pin] = {}
    for line in parsed.requirements:
        name = canonicalize_name(line.name)
        versions = [spec.version for spec in line.specifier if spec.operator == "=="]
        if len(versions) != 1:
            raise ValueError(f"{path}: {line.name} is not pinned with ==")
        pins[name] = Pin(
            name=name,
            version=versions[0],
            sha256=frozenset(h.removeprefix("sha256:") for h in line.hash_options),
            marker=line.marker,
            direct=name in direct,
        )
    return pins


def _direct_names(text: str) -> set[str]:
    """Names whose `# via` block names the project's pyproject.toml."""
    direct, current = set(), ""
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")):
            current = canonicalize_name(Requirement(line.split(" \\")[0].split(";")[0]).name)
        elif line.lstrip().startswith("#") and f"{PROJECT} (pyproject.toml" in line and current:
            direct.add(current)
    return direct


def asked_for(pyproject: dict[str, object], lock: str) -> list[Requirement]:
    """What pyproject.toml asks of one lock: dependencies and an extra, or a group."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    if lock in GROUPS:
        groups = pyproject["dependency-groups"]
        assert isinstance(groups, dict)
        return [Requirement(r) for r in groups[lock]]
    extras = project.get("optional-dependencies", {})
    wanted, seen, found = [EXTRAS[lock]], set(), list(map(Requirement, project["dependencies"]))
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in map(Requirement, extras[extra]):
            if canonicalize_name(requirement.name) == PROJECT:  # the project's own extras
                wanted.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def disagreements(pyproject_file: Path, requirements_dir: Path) -> list[str]:
    """Every way the locks and pyproject.toml disagree; empty when `make lock` has nothing to do."""
    pyproject = tomllib.loads(pyproject_file.read_text(encoding="utf-8"))
    problems = []
    locks = {name: requirements_dir / f"{name}.txt" for name in [*EXTRAS, *GROUPS]}
    for lock, path in locks.items():
        if not path.exists():
            problems.append(f"{path.name}: missing")
            continue
        pins = read_lock(path)
        wanted = asked_for(pyproject, lock)
        for requirement in wanted:
            pin = pins.get(canonicalize_name(requirement.name))
            if pin is None:
                problems.append(f"{path.name}: {requirement} is not locked")
            elif not requirement.specifier.contains(pin.version, prereleases=True):
                problems.append(f"{path.name}: {requirement} but {pin.version} is locked")
        wanted_names = {canonicalize_name(r.name) for r in wanted}
        for pin in pins.values():
            if pin.direct and pin.name not in wanted_names:
                problems.append(f"{path.name}: {pin.name} is locked for pyproject.toml, {GONE}")
            if not pin.sha256:
                problems.append(f"{path.name}: {pin.name} has no sha256")
    # The images install what the tests ran: the same version of every package they share.
    if all(locks[name].exists() for name in ("dev", *IMAGE_EXTRAS)):
        dev = read_lock(locks["dev"])
        for image in IMAGE_EXTRAS:
            for pin in read_lock(locks[image]).values():
                if pin.name in dev and dev[pin.name].version != pin.version:
                    problems.append(
                        f"{image}.txt: {pin.name} {pin.version}, dev.txt {dev[pin.name].version}"
                    )
    return problems


def main(argv: list[str]) -> int:
    """`python -m devstack.locks`: list the disagreements; exit 1 when there are any."""
    problems = disagreements(ROOT / "pyproject.toml", REQUIREMENTS_DIR)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("the locks disagree with pyproject.toml: run `make lock`", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
