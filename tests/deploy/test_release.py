"""`make release-manifests`: the production overlay with the project's images pinned by digest."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devstack.gate.tools import checkov_binary, kustomize_binary, render, run_checkov
from devstack.release import (
    DIGEST_CHECK,
    K8S_DIR,
    OVERLAY,
    ReleaseError,
    parse_images,
    release,
    release_policy,
    unpinned,
)

pytestmark = pytest.mark.tools  # kustomize renders, checkov checks

DIGESTS = {
    c: f"sha256:{n * 64}" for c, n in (("collector", "a"), ("producer", "b"), ("validator", "c"))
}
IMAGES = " ".join(f"{c}=registry.example.com/event-collector/{c}@{d}" for c, d in DIGESTS.items())


@pytest.mark.slow
def test_a_release_pins_every_image_by_digest_and_passes_checkov_without_the_exception() -> None:
    objects, findings = release(parse_images(IMAGES))
    assert findings == []
    images = {c["image"] for obj in objects for c in _containers(obj)}
    # The production overlay runs the collector's and the validator's images (the topics Job runs
    # the collector's); the producer's belongs to the opt-in TLC replay component.
    for component in ("collector", "validator"):
        assert f"registry.example.com/event-collector/{component}@{DIGESTS[component]}" in images
    assert not any("/producer" in image for image in images)
    assert all("@sha256:" in image for image in images)


def test_the_release_rules_find_the_development_trees_tags() -> None:
    objects, problems = render(K8S_DIR / "overlays" / OVERLAY, kustomize_binary())
    assert problems == []
    found = {(f.where, f.message.split(":")[0]) for f in unpinned(objects)}
    assert found == {
        ("Deployment/event-collector/collector", "collector"),
        ("Deployment/event-collector/validator", "validator"),
        ("Job/event-collector/create-topics", "create-topics"),
    }


@pytest.mark.slow
def test_without_the_exception_checkov_flags_the_development_trees_tags(tmp_path: Path) -> None:
    objects, _ = render(K8S_DIR / "overlays" / OVERLAY, kustomize_binary())
    rendered = tmp_path / "production.yaml"
    rendered.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    found = run_checkov(rendered, release_policy(), checkov_binary(), "production")
    assert sorted(f.where for f in found if f.message.startswith(DIGEST_CHECK)) == [
        "production Deployment.event-collector.collector",
        "production Deployment.event-collector.validator",
        "production Job.event-collector.create-topics",
    ]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (IMAGES.replace("@sha256:" + "a" * 64, ":0.1.0"), "collector: registry.example.com"),
        (IMAGES.split(" ", 1)[1], "no image given for collector"),
        (IMAGES + " kafka=apache/kafka@sha256:" + "d" * 64, "'kafka=apache/kafka@sha256:"),
        (IMAGES.replace("a" * 64, "a" * 63), "is not pinned by @sha256: digest"),
    ],
)
def test_release_images_must_be_the_three_components_by_digest(spec: str, says: str) -> None:
    with pytest.raises(ReleaseError, match=None) as raised:
        parse_images(spec)
    assert says in str(raised.value)


def _containers(obj: dict[str, object]) -> list[dict[str, str]]:
    spec = obj.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    pod = template.get("spec") if isinstance(template, dict) else None
    if not isinstance(pod, dict):
        return []
    return [*pod.get("initContainers", []), *pod.get("containers", [])]
