"""The deployment gate passes the real tree and fails deliberately broken copies, saying why."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import kubernetes_validate
import pytest

from devstack.gate import run as gate_run
from devstack.gate.run import DOCKERFILES, K8S_DIR, run_gate, selector_matches

pytestmark = pytest.mark.tools

FAST = ("render", "schema", "cross-check", "policy")
TOOLS = ("kube-score",)


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Path:
    """A private copy of k8s/ to break."""
    target = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, target)
    return target


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace text that must be there, so a test never passes on a no-op edit."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == count, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def messages(report: gate_run.Report) -> str:
    return report.messages()


@pytest.mark.slow
def test_the_real_tree_passes_every_stage() -> None:
    report = run_gate()
    assert report.passed, report.messages()
    kinds = {obj["kind"] for obj in report.rendered["local"]}
    assert {"StatefulSet", "Job", "HorizontalPodAutoscaler", "NetworkPolicy"} <= kinds
    production = {(o["kind"], o["metadata"]["name"]) for o in report.rendered["production"]}
    assert ("Service", "collector-debug") not in production
    assert ("StatefulSet", "kafka") not in production
    public = {(o["kind"], o["metadata"]["name"]) for o in report.rendered["public"]}
    doors = {("Ingress", "collector"), ("HTTPRoute", "collector"), ("Gateway", "collector")}
    assert doors <= public
    assert report.exceptions, "the accepted findings are listed, each with its reason"
    assert all(e.reason for e in report.exceptions)


def test_a_typo_in_a_field_fails_strict_schema_validation(k8s_copy: Path) -> None:
    edit(k8s_copy / "base" / "collector.yaml", "readOnlyRootFilesystem:", "readOnlyRootFilesytem:")
    report = run_gate(k8s_copy, stages=FAST)
    assert not report.passed
    assert "'readOnlyRootFilesytem' was unexpected" in messages(report)
    assert "[schema] production: Deployment/event-collector/collector" in messages(report)


def test_a_required_secret_must_be_one_declared_as_made_outside_git(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "policy-exceptions.yaml",
        "production: */event-collector/*: refers to Secret 'kafka-client'",
        "production: */event-collector/*: refers to Secret 'kafka'",
    )
    report = run_gate(k8s_copy, stages=("render", "cross-check"))
    assert not report.passed
    assert (
        "[cross-check] production: Deployment/event-collector/collector: refers to Secret "
        "'kafka-client': not found" in messages(report)
    )


def test_a_wrongly_typed_value_fails_schema_validation(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "components" / "tlc-replay" / "producer.yaml",
        "completions: 3",
        "completions: three",
    )
    report = run_gate(k8s_copy, stages=("schema",))
    assert "spec.completions: 'three' is not of type 'integer'" in messages(report)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "apiVersion: policy/v1\n",
            "apiVersion: policy/v1beta1\n",
            "does not serve policy/v1beta1 PodDisruptionBudget",
        ),
        (
            "apiVersion: autoscaling/v2\n",
            "apiVersion: autoscaling/v2beta2\n",
            "does not serve autoscaling/v2beta2 HorizontalPodAutoscaler",
        ),
    ],
)
def test_a_removed_api_version_fails(k8s_copy: Path, old: str, new: str, expected: str) -> None:
    edit(k8s_copy / "base" / "collector.yaml", old, new)
    report = run_gate(k8s_copy, stages=("schema",))
    for version in gate_run.KUBERNETES_VERSIONS:
        assert f"Kubernetes {version} {expected}" in messages(report)


def test_a_service_selector_that_matches_nothing_fails(k8s_copy: Path) -> None:
    collector = k8s_copy / "base" / "collector.yaml"
    text = collector.read_text(encoding="utf-8")
    service = text.index("kind: Service\n")
    head, tail = text[:service], text[service:]
    tail = tail.replace(
        "  selector:\n    app.kubernetes.io/name: collector",
        "  selector:\n    app.kubernetes.io/name: colector",
        1,
    )
    collector.write_text(head + tail, encoding="utf-8")
    report = run_gate(k8s_copy, stages=TOOLS)
    assert (
        "[kube-score] local: Service/event-collector/collector: service-targets-pod: "
        "The services selector does not match any pods" in messages(report)
    )


def test_a_pdb_selector_that_matches_nothing_fails(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "base" / "collector.yaml",
        "maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: collector",
        "maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: nothing",
    )
    report = run_gate(k8s_copy, stages=TOOLS)
    assert (
        "production: Deployment/event-collector/collector: deployment-has-poddisruptionbudget"
        in messages(report)
    )


def test_a_deployment_whose_selector_misses_its_own_pods_fails(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "base" / "collector.yaml",
        "      app.kubernetes.io/name: collector\n  strategy:",
        "      app.kubernetes.io/name: collectors\n  strategy:",
    )
    report = run_gate(k8s_copy, stages=TOOLS)
    assert (
        "Deployment/event-collector/collector: "
        "deployment-pod-selector-labels-match-template-metadata-labels" in messages(report)
    )


@pytest.mark.slow
def test_a_root_container_fails(k8s_copy: Path) -> None:
    producer = k8s_copy / "components" / "tlc-replay" / "producer.yaml"
    edit(producer, "runAsNonRoot: true", "runAsNonRoot: false", count=2)
    edit(producer, "runAsUser: 10001", "runAsUser: 0", count=2)
    report = run_gate(k8s_copy, stages=("kube-score", "checkov"))
    found = messages(report)
    assert (
        "Job/event-collector/producer: container-security-context-user-group-id: "
        "(producer) The container is running with a low user ID" in found
    )
    # checkov agrees, independently.
    assert "Job.event-collector.producer: CKV_K8S_23" in found


@pytest.mark.slow
def test_a_writable_root_filesystem_is_caught_by_checkov_unless_excepted(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "components" / "tlc-replay" / "producer.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
    )
    report = run_gate(k8s_copy, stages=("checkov",))
    assert "[checkov] local Job.event-collector.producer: CKV_K8S_22" in messages(report)
    assert "[checkov] e2e Job.event-collector.producer: CKV_K8S_22" in messages(report)


def test_replicas_under_an_hpa_fail(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "base" / "collector.yaml",
        "  revisionHistoryLimit: 5\n",
        "  replicas: 2\n  revisionHistoryLimit: 5\n",
    )
    report = run_gate(k8s_copy, stages=TOOLS)
    assert (
        "Deployment/event-collector/collector: "
        "deployment-targeted-by-hpa-does-not-have-replicas-configured" in messages(report)
    )


def test_an_hpa_aimed_at_nothing_fails(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "base" / "collector.yaml",
        "    kind: Deployment\n    name: collector",
        "    kind: Deployment\n    name: collectr",
    )
    report = run_gate(k8s_copy, stages=TOOLS)
    assert (
        "HorizontalPodAutoscaler/event-collector/collector: horizontalpodautoscaler-has-target"
        in messages(report)
    )


def test_a_missing_config_map_key_fails(k8s_copy: Path) -> None:
    edit(k8s_copy / "base" / "collector.yaml", "key: bootstrap.servers", "key: bootstrap_servers")
    report = run_gate(k8s_copy, stages=("cross-check",))
    assert "refers to key 'bootstrap_servers' of ConfigMap" in messages(report)


def test_a_probe_on_an_unnamed_port_fails(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "base" / "collector.yaml",
        "path: /readyz\n              port: http",
        "path: /readyz\n              port: web",
    )
    report = run_gate(k8s_copy, stages=("cross-check",))
    assert "readinessProbe uses port 'web', which the container does not name" in messages(report)


def test_a_network_policy_to_a_port_nobody_listens_on_fails(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "overlays" / "local" / "networkpolicies.yaml",
        "port: 9092",
        "port: 9029",
        count=4,
    )
    report = run_gate(k8s_copy, stages=("cross-check",))
    assert (
        "egress port 9029 is not a container port of StatefulSet/event-collector/kafka"
        in messages(report)
    )
    assert (
        "ingress port 9029 is not a container port of StatefulSet/event-collector/kafka"
        in messages(report)
    )


def test_a_pod_without_its_own_network_policy_fails(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "overlays" / "local" / "networkpolicies.yaml",
        "kafka-topics-egress\nspec:\n  podSelector:\n    matchLabels:\n"
        "      app.kubernetes.io/name: kafka-topics",
        "kafka-topics-egress\nspec:\n  podSelector:\n    matchLabels:\n"
        "      app.kubernetes.io/name: kafka",
    )
    report = run_gate(k8s_copy, stages=("cross-check",))
    assert (
        "local: Job/event-collector/kafka-topics: no NetworkPolicy selects these pods"
        in messages(report)
    )


def test_a_pre_stop_pause_as_long_as_the_grace_period_fails(k8s_copy: Path) -> None:
    edit(k8s_copy / "base" / "collector.yaml", "seconds: 5", "seconds: 40")
    report = run_gate(k8s_copy, stages=("policy",))
    assert "preStop pause 40s is not shorter than terminationGracePeriodSeconds 40s" in messages(
        report
    )


def test_a_kustomization_that_does_not_build_fails(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "overlays" / "local" / "kustomization.yaml",
        "  - topics-job.yaml\n",
        "  - topic-job.yaml\n",
    )
    report = run_gate(k8s_copy, stages=())
    assert "[kustomize] local:" in messages(report)
    assert "topic-job.yaml" in messages(report)


def test_yaml_lint_problems_fail(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "base" / "namespace.yaml",
        "  name: event-collector\n",
        "  name: event-collector   \n",
    )
    report = run_gate(k8s_copy, stages=("yamllint",))
    assert "[yamllint] base/namespace.yaml:4:24: trailing spaces (trailing-spaces)" in messages(
        report
    )


def test_hadolint_fails_a_dockerfile_that_runs_as_root_in_shell_form(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile.collector"
    text = DOCKERFILES[0].read_text(encoding="utf-8")
    text = text.replace("USER 10001:10001\n", "USER root\n")
    text = text.replace(
        'ENTRYPOINT ["python", "-m", "collector"]', "ENTRYPOINT python -m collector"
    )
    broken.write_text(text, encoding="utf-8")
    report = run_gate(stages=("hadolint",), dockerfiles=(broken, DOCKERFILES[1]))
    assert "DL3002 Last USER should not be root" in messages(report)
    assert "DL3025 Use arguments JSON notation for CMD and ENTRYPOINT arguments" in messages(report)
    assert "Dockerfile.producer" not in messages(report)


def test_schema_stage_agrees_with_kubernetes_validate() -> None:
    report = run_gate(stages=())
    objects = report.rendered["local"]
    for obj in objects:
        kubernetes_validate.validate(obj, gate_run.KUBERNETES_VERSIONS[0], strict=True)
    broken = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    broken["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, gate_run.KUBERNETES_VERSIONS[0], strict=True)
    found = gate_run.validate_schemas([broken], gate_run.KUBERNETES_VERSIONS[:1])
    assert [f.message for f in found] == [
        f"Kubernetes {gate_run.KUBERNETES_VERSIONS[0]}: spec: Additional properties are not "
        "allowed ('replica' was unexpected)"
    ]


def test_exceptions_cover_only_the_objects_they_name() -> None:
    exceptions = {e.check_id: e for e in gate_run.load_exceptions(K8S_DIR)}
    assert exceptions["CKV_K8S_22"].covers("StatefulSet.event-collector.kafka")
    assert not exceptions["CKV_K8S_22"].covers("Deployment.event-collector.collector")
    assert exceptions["CKV_K8S_11"].covers("Deployment.event-collector.collector")
    anti_affinity = exceptions["deployment-has-host-podantiaffinity"]
    assert anti_affinity.tool == "kube-score"
    assert not anti_affinity.covers("StatefulSet.event-collector.kafka")


def test_the_gate_prints_every_exception_with_its_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert gate_run.main(["--stage", "yamllint"]) == 0
    out = capsys.readouterr().out
    for e in gate_run.load_exceptions(K8S_DIR):
        assert e.check_id in out
        assert e.reason in out
    assert "deployment gate: passed" in out


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "2"}}, {"a": "1"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "3"]}]},
            {"a": "1"},
            True,
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
        ({}, {"a": "1"}, True),
        (None, {"a": "1"}, False),
    ],
)
def test_selector_semantics(
    selector: dict[str, object] | None, labels: dict[str, str], expected: bool
) -> None:
    assert selector_matches(selector, labels) is expected


def test_a_laptop_overlay_too_big_for_a_two_cpu_node_fails(k8s_copy: Path) -> None:
    """A real 2-CPU node left a producer Pending on `Insufficient cpu`; the gate now sees it."""
    edit(k8s_copy / "overlays" / "local" / "kustomization.yaml", "value: 150m", "value: 500m")
    report = run_gate(k8s_copy, stages=("render", "fit"))
    assert not report.passed
    assert "[fit] local: pods: requests 1950m CPU at peak" in messages(report)
    assert "Deployment/collector 3x500m" in messages(report)  # two replicas and a rollout's surge
    assert "production" not in messages(report)  # production-sized requests are its own business


def test_a_project_image_without_the_project_version_fails(k8s_copy: Path) -> None:
    edit(k8s_copy / "components" / "in-cluster-data" / "kustomization.yaml", "newTag: 0.1.0",
         "newTag: latest")  # fmt: skip
    report = run_gate(k8s_copy, stages=("render", "fit"))
    assert "container sample-data: image 'event-collector/producer:latest'" in messages(report)


def test_peak_requests_count_hpa_minimum_surge_parallelism_and_init_containers() -> None:
    from devstack.gate.capacity import memory_mi, pods_at_peak

    def pod(cpu: str, init_cpu: str | None = None) -> dict[str, object]:
        spec: dict[str, object] = {"containers": [{"resources": {"requests": {"cpu": cpu}}}]}
        if init_cpu:
            spec["initContainers"] = [{"resources": {"requests": {"cpu": init_cpu}}}]
        return {"template": {"spec": spec}}

    objects = [
        {"kind": "Deployment", "metadata": {"name": "d"}, "spec": pod("100m")},
        {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
         "spec": {"scaleTargetRef": {"name": "d"}, "minReplicas": 4}},
        {"kind": "Job", "metadata": {"name": "j"},
         "spec": {"parallelism": 3, **pod("50m", init_cpu="0.2")}},
    ]  # fmt: skip
    assert pods_at_peak(objects) == [("Deployment/d", 5, 100, 0.0), ("Job/j", 3, 200, 0.0)]
    assert (memory_mi("1Gi"), memory_mi("512Mi"), memory_mi(str(2**20))) == (1024, 512, 1)


def test_a_liveness_probe_equal_to_readiness_fails(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "base" / "collector.yaml",
        "path: /healthz\n              port: http\n            periodSeconds: 10",
        "path: /readyz\n              port: http\n            periodSeconds: 10",
    )
    report = run_gate(k8s_copy, stages=TOOLS)
    assert "Deployment/event-collector/collector: pod-probes-identical" in messages(report)


def test_a_pod_without_a_seccomp_profile_fails(k8s_copy: Path) -> None:
    # kube-score's optional seccomp check is switched on by the policy file's options.
    edit(
        k8s_copy / "base" / "collector.yaml",
        "        seccompProfile:\n          type: RuntimeDefault\n",
        "",
    )
    edit(
        k8s_copy / "base" / "collector.yaml",
        "            seccompProfile:\n              type: RuntimeDefault\n",
        "",
    )
    report = run_gate(k8s_copy, stages=TOOLS)
    assert "Deployment/event-collector/collector: container-seccomp-profile" in messages(report)


def test_a_network_policy_for_no_pod_fails(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "overlays" / "local" / "networkpolicies.yaml",
        "kafka-topics-egress\nspec:\n  podSelector:\n    matchLabels:\n"
        "      app.kubernetes.io/name: kafka-topics",
        "kafka-topics-egress\nspec:\n  podSelector:\n    matchLabels:\n"
        "      app.kubernetes.io/name: kafka-topic",
    )
    report = run_gate(k8s_copy, stages=TOOLS)
    assert "NetworkPolicy/event-collector/kafka-topics-egress: networkpolicy-targets-pod" in (
        messages(report)
    )


def test_every_hand_written_check_exception_and_option_says_why() -> None:
    assert gate_run.CHECKS
    for check in gate_run.CHECKS:
        assert check.stage in gate_run.STAGES
        assert len(check.why) > 20, check.run.__name__
    policy = gate_run.load_policy(K8S_DIR / gate_run.EXCEPTIONS_FILE)
    assert policy.kube_score_options
    assert {e.tool for e in policy.exceptions} == {"checkov", "kube-score", "cross-check"}
    for _, reason in policy.kube_score_options:
        assert len(reason) > 20
    for exception in policy.exceptions:
        assert len(exception.reason) > 20
        assert exception.resources


def test_a_dockerfile_copying_what_dockerignore_leaves_out_fails(tmp_path: Path) -> None:
    """A package missing from .dockerignore's allow-list failed only at `docker build`."""
    from devstack.gate.images import docker_context

    for dockerfile in DOCKERFILES:
        shutil.copy(dockerfile, tmp_path)
    shutil.copy(DOCKERFILES[0].parent / ".dockerignore", tmp_path)
    copies = [tmp_path / d.name for d in DOCKERFILES]
    assert docker_context(copies) == []
    edit(tmp_path / ".dockerignore", "!validator/\n", "")
    (problem,) = docker_context(copies)
    assert problem.startswith("Dockerfile.validator: COPY validator/ is excluded by .dockerignore")


@pytest.mark.parametrize(
    ("path", "old", "new", "expected"),
    [
        (
            "components/front-door/ingress.yaml",
            "                  name: http",
            "                  name: https",
            "Ingress/event-collector/collector: backend collector:https is no port of a Service",
        ),
        (
            "components/front-door-gateway/httproute.yaml",
            "          port: 80",
            "          port: 8080",
            "HTTPRoute/event-collector/collector: backend collector:8080 is no port of a Service",
        ),
        (
            "components/front-door-gateway/httproute.yaml",
            "      sectionName: https",
            "      sectionName: http",
            "HTTPRoute/event-collector/collector: parentRef 'collector' section 'http' is no",
        ),
    ],
)
def test_a_front_door_route_to_nothing_fails(
    k8s_copy: Path, path: str, old: str, new: str, expected: str
) -> None:
    edit(k8s_copy / path, old, new)
    report = run_gate(k8s_copy, stages=("render", "cross-check"))
    assert f"[cross-check] public: {expected}" in messages(report)
