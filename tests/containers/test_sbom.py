"""The collector image's SBOM (written by `make images` / `make k8s-e2e` beside the build) lists
exactly the locked runtime set: each package at its locked version, with a hash the lock allows.

Needs the images built, like the rest of this folder (`make k8s-e2e` runs it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from devstack.images import sbom_path
from devstack.locks import IMAGE_ENVIRONMENT, REQUIREMENTS_DIR, read_lock


@pytest.mark.parametrize("image", ["collector", "producer", "validator"])
def test_the_images_sbom_lists_exactly_its_locked_runtime_set(image: str) -> None:
    path = sbom_path(image)
    assert path.exists(), f"{path} not written: make images (or make k8s-e2e) writes it"
    bom: dict[str, Any] = json.loads(path.read_text())
    assert bom["bomFormat"] == "CycloneDX"
    assert bom["specVersion"] == "1.6"
    locked = {
        name: pin
        for name, pin in read_lock(REQUIREMENTS_DIR / f"{image}.txt").items()
        if pin.installed_on(IMAGE_ENVIRONMENT)
    }
    packages = [c for c in bom["components"] if c["type"] == "library"]
    listed = {canonicalize_name(c["name"]): c for c in packages}
    assert len(listed) == len(packages)  # no package twice
    assert {n: c["version"] for n, c in listed.items()} == {n: p.version for n, p in locked.items()}
    for name, component in listed.items():
        (sha256,) = [h["content"] for h in component["hashes"] if h["alg"] == "SHA-256"]
        assert sha256 in locked[name].sha256, f"{name}: {sha256} is not a hash its lock allows"
    (base,) = [c for c in bom["components"] if c["type"] == "container"]
    assert len(base["hashes"][0]["content"]) == 64  # the base image's digest
    assert bom["metadata"]["component"]["name"] == f"event-collector/{image}"
