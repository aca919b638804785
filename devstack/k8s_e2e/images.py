"""The project's images: built with `docker build`, checked as containers, and loaded into the
cluster's nodes (kind, minikube, or containerd's `ctr` on this node)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from devstack import images
from devstack.k8s_e2e.kubectl import E2EError, run
from devstack.k8s_e2e.report import Report
from devstack.proc import ROOT
from devstack.reporting import say

IMAGES = images.IMAGES
LOADERS = {
    "kind": "`kind load docker-image`",
    "minikube": "`minikube image load`",
    "ctr": "`docker save | ctr -n k8s.io images import -`",
    "none": "nothing (already on the nodes)",
}


image_name = images.image_name


def build_images(report: Report, base_image: str | None) -> None:
    """`make images`: each image built and its SBOM written to .artifacts/sbom/."""
    try:
        built = images.build_all(list(IMAGES), base_image)
    except images.ImageError as exc:
        raise E2EError(str(exc)) from exc
    for name in built:
        size = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", name]).stdout)
        report.images.append((name, f"{size / 1e6:.0f} MB"))
        say(f"    {name}: {size / 1e6:.0f} MB")


def choose_loader(context: str, wanted: str) -> str:
    """How images reach this cluster's nodes: kind, minikube, or containerd's `ctr` on this node."""
    if wanted != "auto":
        return wanted
    if context.startswith("kind-"):
        return "kind"
    if context == "minikube":
        return "minikube"
    if shutil.which("ctr") and run(["ctr", "-n", "k8s.io", "version"], check=False).returncode == 0:
        return "ctr"
    raise E2EError(
        f"cannot tell how to load images into context {context!r}: set LOAD=kind, minikube, "
        "ctr (a containerd node on this machine) or none (images already on the nodes)"
    )


def load_images(report: Report, context: str, wanted: str) -> None:
    loader = choose_loader(context, wanted)
    report.loader = LOADERS[loader]
    for component in IMAGES:
        image = image_name(component)
        say(f"    {image} via {loader}")
        if loader == "kind":
            run(["kind", "load", "docker-image", image, "--name", context.removeprefix("kind-")])
        elif loader == "minikube":
            run(["minikube", "image", "load", image])
        elif loader == "ctr":
            ctr_import(image)


def ctr_import(image: str) -> None:
    """`docker save | ctr -n k8s.io images import -`: into this node's containerd."""
    saved = subprocess.run(
        ["docker", "save", image], capture_output=True, check=True, timeout=600
    ).stdout
    imported = subprocess.run(
        ["ctr", "-n", "k8s.io", "images", "import", "-"],
        input=saved,
        capture_output=True,
        timeout=600,
        check=False,
    )
    if imported.returncode != 0:
        raise E2EError(f"ctr import of {image} failed: {imported.stderr.decode().strip()}")


def container_checks(report: Report) -> None:
    """The images as they run anywhere: read-only root, user 10001 (tests/containers)."""
    env = {**os.environ, **{f"{c.upper()}_IMAGE": image_name(c) for c in IMAGES}}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/containers"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    say(f"    pytest tests/containers: {summary}")
    if done.returncode != 0:
        say(done.stdout[-4000:])
        raise E2EError("the images failed their checks as containers")
    report.notes.append(f"images as containers (tests/containers): {summary}")
