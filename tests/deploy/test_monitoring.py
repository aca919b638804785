"""The monitoring component: rules checked and unit-tested by promtool, the dashboard linted and
its queries held to the metrics a running collector really exposes, the component rendered."""

from __future__ import annotations

import copy
import json
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from collector.problems import Problem
from collector.schemas import TAXI_EVENT
from devstack.gate import monitoring
from devstack.gate.checks import selector_matches
from devstack.gate.run import K8S_DIR
from devstack.gate.tools import kustomize_binary, render
from tests.collector.live import live_collector

TAXI = orjson.dumps(TAXI_EVENT)


def _alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for group in monitoring.rule_groups()["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_the_alerts_an_on_call_person_needs_are_there() -> None:
    assert set(monitoring.alert_names()) == {
        "EventCollectorNoReadyReplica",
        "EventCollectorHigh503Ratio",
        "EventCollectorAckLatencyHigh",
        "EventCollectorDeadLetterRateHigh",
        "EventCollectorDeadLetterRateJump",
        "EventCollectorSendQueueFilling",
        "EventCollectorKafkaDown",
    }
    for rule in _alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        for annotation in ("summary", "description", "runbook"):
            assert rule["annotations"].get(annotation), (rule["alert"], annotation)
        assert rule.get("for"), rule["alert"]


@pytest.mark.tools  # promtool or kustomize: `make tools` builds it
def test_promtool_check_rules() -> None:
    done = monitoring.check_rules()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout + done.stderr


@pytest.mark.tools  # promtool or kustomize: `make tools` builds it
def test_promtool_unit_tests_cover_every_alert_firing_and_quiet() -> None:
    tests = yaml.safe_load(monitoring.RULE_TESTS_FILE.read_text(encoding="utf-8"))["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == quiet == set(monitoring.alert_names())
    done = monitoring.run_rule_tests()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.tools  # promtool or kustomize: `make tools` builds it
def test_promtool_unit_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    # The tests pin the thresholds: doubling one makes its firing case fail.
    manifest = yaml.safe_load(monitoring.RULES_FILE.read_text(encoding="utf-8"))
    for rule in manifest["spec"]["groups"][0]["rules"]:
        if rule["alert"] == "EventCollectorSendQueueFilling":
            rule["expr"] = rule["expr"].replace("100000", "200000")
    moved = tmp_path / "prometheusrule.yaml"
    moved.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    done = monitoring.run_rule_tests(rules_file=moved)
    assert done.returncode != 0
    assert "EventCollectorSendQueueFilling" in done.stdout + done.stderr


def test_the_dashboard_passes_the_lint() -> None:
    assert monitoring.lint_dashboard(monitoring.load_dashboard()) == []


def test_the_lint_finds_what_it_looks_for() -> None:
    dashboard = monitoring.load_dashboard()
    broken = copy.deepcopy(dashboard)
    panel = broken["panels"][4]
    panel["targets"][0]["expr"] = "sum(rate(collector_http_requests_total[1m]))"
    del panel["fieldConfig"]["defaults"]["unit"]
    broken["panels"][5]["targets"][0]["expr"] = "sum(rate(collector_ready{job=~'$job'}[5m]"
    broken["panels"][6]["gridPos"] = dict(broken["panels"][7]["gridPos"])
    rules = {problem.split(":")[0] for problem in monitoring.lint_dashboard(broken)}
    assert rules == {
        "target-job-rule",
        "target-instance-rule",
        "target-rate-interval-rule",
        "panel-units-rule",
        "target-promql-rule",
        "dashboard",
    }


def _exposed_metric_names(url: str, sink: Any) -> set[str]:
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.post("/api/v1/collect", content=TAXI).status_code == 202
        assert client.post("/api/v1/collect", content=b"{nope").status_code == 400
        sink.failure = Problem.QUEUE_FULL
        assert client.post("/api/v1/collect", content=TAXI).status_code == 503
        sink.failure = None
    with urllib.request.urlopen(url + "/metrics", timeout=30) as answer:  # a plain scraper
        text = answer.read().decode()
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def test_every_metric_of_the_dashboard_and_alerts_is_exposed_by_a_running_collector() -> None:
    dashboard = monitoring.load_dashboard()
    used: set[str] = set()
    for _, query in monitoring.queries(dashboard):
        used |= monitoring.metric_names(query)
    in_alerts: set[str] = set()
    for rule in _alert_rules():
        in_alerts |= monitoring.metric_names(rule["expr"])
    with live_collector() as (url, sink):
        exposed = _exposed_metric_names(url, sink)
    assert used, "the dashboard has no queries"
    assert used <= exposed, sorted(used - exposed)
    assert in_alerts <= exposed, sorted(in_alerts - exposed)
    # The dashboard shows everything the alerts watch.
    assert in_alerts <= used, sorted(in_alerts - used)


@pytest.mark.tools  # promtool or kustomize: `make tools` builds it
def test_the_component_renders_and_its_pod_monitor_finds_the_collector() -> None:
    objects, problems = render(K8S_DIR / "overlays" / "monitored", kustomize_binary())
    assert problems == []
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    monitor = by_kind[("PodMonitor", "collector")]
    rule = by_kind[("PrometheusRule", "collector")]
    dashboard = by_kind[("ConfigMap", "collector-dashboard")]
    deployment = by_kind[("Deployment", "collector")]
    for obj in (monitor, rule, dashboard):
        assert obj["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    template = deployment["spec"]["template"]
    assert selector_matches(monitor["spec"]["selector"], template["metadata"]["labels"])
    assert monitor["spec"]["jobLabel"] in template["metadata"]["labels"]
    assert template["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "collector"
    ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        assert endpoint["port"] in ports
        assert endpoint["path"] == "/metrics"
    assert rule["spec"] == monitoring.rule_groups()
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["event-collector.json"]) == monitoring.load_dashboard()
    # The overlays without the component render none of it.
    plain, _ = render(K8S_DIR / "overlays" / "production", kustomize_binary())
    assert not [o for o in plain if o["kind"] in {"PodMonitor", "PrometheusRule"}]
