"""The project's images: `docker build`, then a CycloneDX SBOM of each (`make images`, k8s-e2e).

The SBOM is cyclonedx-py's reading of the packages installed in the image's own virtualenv: their
metadata is copied out of the image into a throwaway environment on this machine, where the
generator reads it. An installed package keeps no record of the file it came from, so each
component's sha256 comes from pip's installation report, written inside the image by the same
`pip install --require-hashes` that installed it. The base image's digest is added beside them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.validation import make_schemabased_validator
from packaging.utils import canonicalize_name

from devstack.gate.images import project_version
from devstack.proc import ROOT
from devstack.reporting import say

IMAGES = {
    "collector": "Dockerfile.collector",
    "producer": "Dockerfile.producer",
    # The local overlay runs it too (never pulled): without it its pod would wait for an image.
    "validator": "Dockerfile.validator",
}
SBOM_DIR = ROOT / ".artifacts" / "sbom"
VENV = "/opt/venv"
PIP_REPORT = f"{VENV}/pip-install-report.json"
# Run by the image's own Python: its installed packages' metadata and pip's report, as a tar.
_EXPORT = f"""
import glob, sys, tarfile
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
    for path in glob.glob("{VENV}/lib/python3*/site-packages/*.dist-info"):
        tar.add(path, arcname="site-packages/" + path.rsplit("/", 1)[1])
    tar.add("{PIP_REPORT}", arcname="pip-install-report.json")
"""


class ImageError(RuntimeError):
    """A build or an SBOM failed; the message says which and why."""


def image_tag() -> str:
    """`make images IMAGE_TAG=...`, else the project's version (the tag the manifests name)."""
    return os.environ.get("IMAGE_TAG") or project_version()


def image_name(component: str) -> str:
    return f"event-collector/{component}:{image_tag()}"


def sbom_path(component: str) -> Path:
    return SBOM_DIR / f"{component}-{image_tag()}.cdx.json"


def _docker(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(["docker", *args], capture_output=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise ImageError(f"docker {' '.join(args[:2])} failed: {done.stderr.decode()[-2000:]}")
    return done


def base_image(dockerfile: Path, override: str | None) -> str:
    """The image a Dockerfile builds FROM: the build argument, or the ARG's pinned default."""
    if override:
        return override
    found = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile.read_text(), flags=re.MULTILINE)
    if found is None:
        raise ImageError(f"{dockerfile.name} has no default PYTHON_IMAGE")
    return found.group(1)


def build(component: str, base: str | None = None) -> str:
    """`docker build` one image; its id."""
    dockerfile = ROOT / IMAGES[component]
    args = ["build", "-q", "-f", str(dockerfile), "-t", image_name(component)]
    if base:
        args += ["--build-arg", f"PYTHON_IMAGE={base}"]
    say(f"docker build -f {dockerfile.name} -t {image_name(component)}")
    _docker(*args, str(ROOT), timeout_s=1800)
    return (
        _docker("image", "inspect", "-f", "{{.Id}}", image_name(component)).stdout.decode().strip()
    )


def split_reference(reference: str) -> tuple[str, str]:
    """("python", "3.11-slim") from "python:3.11-slim@sha256:..."; no tag: "latest"."""
    name = reference.split("@", 1)[0]
    repository, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:  # "host:5000/image" has a port, not a tag
        return name, "latest"
    return repository, tag


def digest_of(reference: str) -> str:
    """An image's digest: the one in its reference, else its registry digest, else its id."""
    if "@sha256:" in reference:
        return reference.rsplit("@", 1)[1]
    inspected = json.loads(_docker("image", "inspect", reference).stdout)[0]
    repo_digests = inspected.get("RepoDigests") or []
    return str(repo_digests[0].rsplit("@", 1)[1] if repo_digests else inspected["Id"])


def export(image: str, into: Path) -> Path:
    """The image's installed packages' metadata and pip's report, copied into a folder."""
    python = f"{VENV}/bin/python"
    exported = _docker(
        "run", "--rm", "--network", "none", "--entrypoint", python, image, "-c", _EXPORT
    )
    with tarfile.open(fileobj=io.BytesIO(exported.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def generate(exported: Path, workdir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """cyclonedx-py's SBOM of the exported packages, and pip's installation report."""
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", where], capture_output=True, text=True, check=True
    ).stdout.strip()
    for dist_info in (exported / "site-packages").iterdir():
        shutil.copytree(dist_info, Path(site) / dist_info.name)
    generator = Path(sys.executable).parent / "cyclonedx-py"
    options = ["--output-reproducible", "--sv", "1.6", "--of", "JSON"]
    done = subprocess.run(
        [str(generator), "environment", *options, str(venv)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise ImageError(f"cyclonedx-py failed: {done.stderr[-2000:]}")
    report = json.loads((exported / "pip-install-report.json").read_text())
    return json.loads(done.stdout), report


def complete(
    bom: dict[str, Any],
    report: dict[str, Any],
    *,
    image: str,
    image_id: str,
    base: str,
    base_digest: str,
) -> dict[str, Any]:
    """The generator's SBOM with each package's sha256, the image and its base image.

    Every package must be one pip installed from the lock (in its report), and every package in the
    report must be in the image: anything else got in some other way, and the SBOM is refused.
    """
    installed = {
        (canonicalize_name(item["metadata"]["name"]), item["metadata"]["version"]): item
        for item in report["install"]
    }
    components = bom.setdefault("components", [])
    found = set()
    for component in components:
        key = (canonicalize_name(component["name"]), component["version"])
        item = installed.get(key)
        if item is None:
            raise ImageError(f"{image}: {key[0]} {key[1]} is not in pip's installation report")
        found.add(key)
        archive = item["download_info"]["archive_info"]
        component["hashes"] = [{"alg": "SHA-256", "content": archive["hashes"]["sha256"]}]
        distribution = {"type": "distribution", "url": item["download_info"]["url"]}
        component.setdefault("externalReferences", []).append(
            {**distribution, "hashes": component["hashes"]}
        )
    if missing := sorted(set(installed) - found):
        raise ImageError(f"{image}: installed by pip but not in the image: {missing}")
    repository, tag = split_reference(image)
    base_repository, base_tag = split_reference(base)
    base_component = {
        "type": "container",
        "bom-ref": f"base-image:{base}",
        "name": base_repository,
        "version": base_tag,
        "hashes": [{"alg": "SHA-256", "content": base_digest.removeprefix("sha256:")}],
        "properties": [{"name": "event-collector:image-reference", "value": base}],
    }
    components.append(base_component)
    image_ref = f"image:{image}"
    bom.setdefault("metadata", {})["component"] = {
        "type": "container",
        "bom-ref": image_ref,
        "name": repository,
        "version": tag,
        "hashes": [{"alg": "SHA-256", "content": image_id.removeprefix("sha256:")}],
        "properties": [{"name": "event-collector:docker-image-id", "value": image_id}],
    }
    python_refs = [c["bom-ref"] for c in components if c is not base_component]
    bom.setdefault("dependencies", []).append(
        {"ref": image_ref, "dependsOn": [base_component["bom-ref"], *python_refs]}
    )
    bom["dependencies"].append({"ref": base_component["bom-ref"]})
    return bom


def validate(bom: dict[str, Any]) -> None:
    """The CycloneDX 1.6 JSON schema, strictly."""
    validator = make_schemabased_validator(OutputFormat.JSON, SchemaVersion.V1_6)
    error = validator.validate_str(json.dumps(bom))
    if error is not None:
        raise ImageError(f"the SBOM is not valid CycloneDX 1.6: {error}")


def sbom(component: str, image_id: str, base: str) -> Path:
    """Write the image's SBOM to .artifacts/sbom/; its path."""
    image = image_name(component)
    with tempfile.TemporaryDirectory(prefix="sbom-") as tmp:
        bom, report = generate(export(image, Path(tmp) / "export"), Path(tmp))
    bom = complete(
        bom, report, image=image, image_id=image_id, base=base, base_digest=digest_of(base)
    )
    validate(bom)
    path = sbom_path(component)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bom, indent=2) + "\n", encoding="utf-8")
    packages = len(bom["components"]) - 1
    say(f"  SBOM {path.relative_to(ROOT)}: {packages} Python packages and the base image {base}")
    return path


def build_all(components: Sequence[str], base: str | None) -> dict[str, str]:
    """Build each image and write its SBOM; image name -> id."""
    built = {}
    for component in components:
        image_id = build(component, base)
        sbom(component, image_id, base_image(ROOT / IMAGES[component], base))
        built[image_name(component)] = image_id
    return built


def main(argv: list[str] | None = None) -> int:
    """`python -m devstack.images [--base-image REF] [COMPONENT...]` (make images)."""
    parser = argparse.ArgumentParser(prog="python -m devstack.images", description=main.__doc__)
    parser.add_argument("components", nargs="*", metavar="|".join(IMAGES), help="default: all")
    parser.add_argument("--base-image", help="the Python base image (PYTHON_IMAGE build argument)")
    args = parser.parse_args(argv)
    if unknown := set(args.components) - set(IMAGES):
        parser.error(f"no such image: {', '.join(sorted(unknown))}")
    try:
        build_all(args.components or list(IMAGES), args.base_image)
    except ImageError as error:
        print(f"make images: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
