"""`make release-manifests`: the production overlay with the project's images pinned by digest.

In the repository the project's images are named by tag (the images are built locally and loaded
into kind or minikube, so no registry digest exists), and checkov's digest check (CKV_K8S_43) is
accepted for them in k8s/policy-exceptions.yaml. A release pushes the images, then gives their
digests here. This runs the documented step, `kustomize edit set image`, on a copy of k8s/, renders
the production overlay and holds it to the release's own rules before writing it:

- every container and init container image is pinned by `@sha256:` digest;
- checkov runs without the digest exception that the development tree has.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from devstack.gate.checks import Finding, Manifest, pods_of
from devstack.gate.tools import (
    GateSetupError,
    Policy,
    checkov_binary,
    kustomize_binary,
    load_policy,
    render,
    run_checkov,
)
from devstack.proc import ROOT

K8S_DIR = ROOT / "k8s"
OVERLAY = "production"
COMPONENTS = ("collector", "producer", "validator")
OUTPUT = ROOT / ".artifacts" / "release" / "production.yaml"
DIGEST_CHECK = "CKV_K8S_43"
PINNED = re.compile(r"\S+@sha256:[0-9a-f]{64}")


class ReleaseError(RuntimeError):
    """The release cannot be written; the message says why."""


def parse_images(spec: str) -> dict[str, str]:
    """ "collector=REF producer=REF validator=REF" -> {component: REF}, each REF by digest."""
    images = {}
    for pair in spec.split():
        component, equals, reference = pair.partition("=")
        if not equals or component not in COMPONENTS:
            expected = (
                f"COMPONENT=IMAGE@sha256:DIGEST with COMPONENT one of {', '.join(COMPONENTS)}"
            )
            raise ReleaseError(f"{pair!r}: expected {expected}")
        if not PINNED.fullmatch(reference):
            raise ReleaseError(f"{component}: {reference} is not pinned by @sha256: digest")
        images[component] = reference
    if missing := [c for c in COMPONENTS if c not in images]:
        raise ReleaseError(f"no image given for {', '.join(missing)}")
    return images


def unpinned(objects: list[Manifest]) -> list[Finding]:
    """Every container image in the objects that is not pinned by digest."""
    return [
        Finding("release", pods.owner, f"{c.get('name')}: image {c.get('image')} has no digest")
        for pods in pods_of(objects)
        for c in pods.containers()
        if not PINNED.fullmatch(str(c.get("image", "")))
    ]


def release_policy(k8s_dir: Path = K8S_DIR) -> Policy:
    """The accepted findings of k8s/policy-exceptions.yaml, less the digest exception."""
    policy = load_policy(k8s_dir / "policy-exceptions.yaml")
    kept = tuple(e for e in policy.exceptions if e.check_id != DIGEST_CHECK)
    return dataclasses.replace(policy, exceptions=kept)


def release(
    images: Mapping[str, str], k8s_dir: Path = K8S_DIR
) -> tuple[list[Manifest], list[Finding]]:
    """The production overlay with these images, and what the release rules find in it."""
    kustomize = kustomize_binary()
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        tree = Path(tmp) / "k8s"
        shutil.copytree(k8s_dir, tree)
        overlay = tree / "overlays" / OVERLAY
        for component, reference in images.items():
            subprocess.run(
                [
                    str(kustomize),
                    "edit",
                    "set",
                    "image",
                    f"event-collector/{component}={reference}",
                ],
                cwd=overlay,
                check=True,
                capture_output=True,
                timeout=60,
            )
        objects, findings = render(overlay, kustomize)
        if findings:
            return objects, findings
        findings = unpinned(objects)
        rendered = Path(tmp) / "production.yaml"
        rendered.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
        findings += run_checkov(
            rendered, release_policy(k8s_dir), checkov_binary(), f"release {OVERLAY}"
        )
    return objects, findings


def main(argv: list[str] | None = None) -> int:
    """`python -m devstack.release --images "collector=REF producer=REF validator=REF"`."""
    parser = argparse.ArgumentParser(prog="python -m devstack.release", description=__doc__)
    parser.add_argument("--images", required=True, help="COMPONENT=IMAGE@sha256:DIGEST ...")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    try:
        objects, findings = release(parse_images(args.images))
    except (ReleaseError, GateSetupError) as error:
        print(f"make release-manifests: {error}", file=sys.stderr)
        return 2
    if findings:
        print("\n".join(map(str, findings)), file=sys.stderr)
        print(f"make release-manifests: FAILED with {len(findings)} finding(s)", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
    print(f"{args.output}: {len(objects)} objects, every image pinned by digest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
