"""An image's SBOM, from an export shaped like the one `devstack.images.export` copies out.

The generator (cyclonedx-py) runs for real on real installed metadata (two of this virtualenv's
packages); only the image is left out, so no Docker engine is needed.
"""

from __future__ import annotations

import copy
import json
import shutil
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest

from devstack.gate.images import project_version
from devstack.images import (
    ImageError,
    base_image,
    complete,
    generate,
    image_name,
    sbom_path,
    split_reference,
    validate,
)
from devstack.proc import ROOT

PACKAGES = ("orjson", "tqdm")
IMAGE_ID = "sha256:" + "1" * 64
BASE_DIGEST = "sha256:" + "2" * 64


def report_item(name: str, version: str) -> dict[str, Any]:
    sha = f"{sum(map(ord, name)):064x}"
    return {
        "download_info": {
            "url": f"https://files.pythonhosted.org/packages/{name}-{version}-py3-none-any.whl",
            "archive_info": {"hash": f"sha256={sha}", "hashes": {"sha256": sha}},
        },
        "metadata": {"name": name, "version": version},
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """cyclonedx-py's SBOM and the pip report of an export holding two real packages' metadata."""
    folder = tmp_path_factory.mktemp("export")
    (folder / "site-packages").mkdir()
    items = []
    for name in PACKAGES:
        dist = distribution(name)
        info = next(Path(str(dist.locate_file(""))).glob(f"{name}-{dist.version}.dist-info"))
        shutil.copytree(info, folder / "site-packages" / info.name)
        items.append(report_item(name, dist.version))
    (folder / "pip-install-report.json").write_text(json.dumps({"version": "1", "install": items}))
    return generate(folder, tmp_path_factory.mktemp("sbom"))


@pytest.fixture
def bom_and_report(
    generated: tuple[dict[str, Any], dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    return copy.deepcopy(generated)


def finished(bom: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    return complete(
        bom,
        report,
        image="event-collector/collector:0.1.0",
        image_id=IMAGE_ID,
        base="python:3.11.14-slim-bookworm@" + BASE_DIGEST,
        base_digest=BASE_DIGEST,
    )


def test_the_sbom_lists_each_package_with_its_hash_and_the_base_image(
    bom_and_report: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    bom = finished(*bom_and_report)
    validate(bom)  # CycloneDX 1.6, strictly
    packages = {c["name"].lower(): c for c in bom["components"] if c["type"] == "library"}
    assert set(packages) == set(PACKAGES)
    for name, component in packages.items():
        assert component["version"] == distribution(name).version
        assert component["purl"] == f"pkg:pypi/{name}@{component['version']}"
        assert component["hashes"] == [{"alg": "SHA-256", "content": f"{sum(map(ord, name)):064x}"}]
    (base,) = [c for c in bom["components"] if c["type"] == "container"]
    assert (base["name"], base["version"]) == ("python", "3.11.14-slim-bookworm")
    assert base["hashes"] == [{"alg": "SHA-256", "content": "2" * 64}]
    image = bom["metadata"]["component"]
    assert (image["name"], image["version"]) == ("event-collector/collector", "0.1.0")
    assert image["hashes"] == [{"alg": "SHA-256", "content": "1" * 64}]


def test_a_package_pip_did_not_install_is_refused(
    bom_and_report: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    bom, report = bom_and_report
    report["install"] = [i for i in report["install"] if i["metadata"]["name"] != "tqdm"]
    with pytest.raises(ImageError, match=r"tqdm \S+ is not in pip's installation report"):
        finished(bom, report)


def test_a_package_missing_from_the_image_is_refused(
    bom_and_report: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    bom, report = bom_and_report
    report["install"].append(report_item("httptools", "0.9.0"))
    with pytest.raises(ImageError, match=r"not in the image: \[\('httptools', '0.9.0'\)\]"):
        finished(bom, report)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("python:3.11-slim@sha256:" + "a" * 64, ("python", "3.11-slim")),
        ("local/python:3.11-slim", ("local/python", "3.11-slim")),
        ("registry:5000/team/python", ("registry:5000/team/python", "latest")),
    ],
)
def test_image_references_split_into_name_and_tag(
    reference: str, expected: tuple[str, str]
) -> None:
    assert split_reference(reference) == expected


def test_the_default_base_image_is_the_dockerfiles_pinned_one() -> None:
    base = base_image(ROOT / "Dockerfile.collector", None)
    assert base.startswith("python:3.11.14-slim-bookworm@sha256:")
    assert base_image(ROOT / "Dockerfile.collector", "local/python:3.11-slim") == (
        "local/python:3.11-slim"
    )


def test_the_tag_is_the_projects_version_unless_image_tag_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IMAGE_TAG", raising=False)
    assert image_name("collector") == f"event-collector/collector:{project_version()}"
    monkeypatch.setenv("IMAGE_TAG", "candidate-7")
    assert image_name("collector") == "event-collector/collector:candidate-7"
    assert sbom_path("producer").name == "producer-candidate-7.cdx.json"
