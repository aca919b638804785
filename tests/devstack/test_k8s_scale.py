"""make k8s-scale's readings and report, from what a cluster answers (no cluster needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import replicas
from devstack.k8s_scale import readings
from devstack.k8s_scale.report import Report, Stage, Tick

METRICS = """# HELP collector_events_accepted_total Events acknowledged by Kafka on the raw topic
# TYPE collector_events_accepted_total counter
collector_events_accepted_total 1234.0
collector_events_accepted_created 1.7e9
collector_http_requests_total{route="/api/v1/collect",status="202"} 1200.0
collector_http_requests_total{route="/api/v1/collect",status="503"} 3.0
collector_http_requests_total{route="/readyz",status="200"} 50.0
"""


def test_counters_and_server_errors_are_read_from_the_exposition() -> None:
    assert readings.counter(METRICS, readings.ACCEPTED) == 1234.0
    assert readings.counter(METRICS, readings.REQUESTS) == 1253.0
    assert readings.server_errors(METRICS) == 3.0


@pytest.mark.parametrize(
    ("quantity", "millicores"),
    [("250000000n", 250.0), ("1500u", 1.5), ("12m", 12.0), ("1", 1000.0), ("0.5", 500.0)],
)
def test_cpu_quantities(quantity: str, millicores: float) -> None:
    assert readings.cpu_m(quantity) == pytest.approx(millicores)


def test_pod_cpu_sums_containers() -> None:
    listing = {
        "items": [
            {"metadata": {"name": "a"}, "containers": [{"usage": {"cpu": "100m"}}]},
            {
                "metadata": {"name": "b"},
                "containers": [{"usage": {"cpu": "20m"}}, {"usage": {"cpu": "5000000n"}}],
            },
        ]
    }
    assert readings.pod_cpu_m(listing) == {"a": 100.0, "b": 25.0}


def test_a_window_gives_events_per_second_of_pods_present_at_both_ends() -> None:
    window = readings.Window(
        seconds=10.0,
        accepted_before={"a": 100.0, "b": 0.0, "gone": 5.0},
        accepted_after={"a": 1100.0, "b": 2000.0, "new": 50.0},
    )
    assert window.events_per_s() == {"a": 100.0, "b": 200.0}


def test_shares_and_distance_from_even() -> None:
    assert readings.shares({"a": 1.0, "b": 3.0}) == {"a": 25.0, "b": 75.0}
    assert readings.off_even_points({"a": 30.0, "b": 33.0, "c": 37.0}) == pytest.approx(
        100 * 37 / 100 - 100 / 3
    )
    assert readings.off_even_points({"a": 65, "b": 17, "c": 13, "d": 5}) == pytest.approx(40.0)


def stage(replicas: int, per_pod: float) -> Stage:
    pods = {f"collector-{i}": per_pod for i in range(replicas)}
    return Stage(
        replicas, per_pod * replicas, pods, dict.fromkeys(pods, 250.0), {"load-0": 300.0}, 1500.0
    )


def report(ratio_per_pod: float = 1.0) -> Report:
    r = Report(cpu_limit="250m", warm_s=20, window_s=40)
    r.curve.stages = [
        stage(1, 1000.0),
        stage(2, 1000.0 * ratio_per_pod),
        stage(3, 1000.0 * ratio_per_pod),
    ]
    r.timeline = [
        Tick(5, 1, 1, None, 900, {}),
        Tick(60, 1, 3, 160, 1000, {}),
        Tick(90, 3, 3, 60, 1000, {}),
        Tick(200, 3, 3, 10, 0, {}),
        Tick(400, 1, 1, 5, 0, {}),
    ]
    r.load_ended_s = 190
    r.reconciliation = {"missing": 0, "unexpected": 0}
    r.validated = {"missing": 0, "duplicates": 0}
    return r


def test_the_report_passes_only_with_the_ratio_the_hpa_and_the_reconciliation(
    tmp_path: Path,
) -> None:
    good = report()
    assert good.curve.ratio() == pytest.approx(3.0)
    assert (good.first_at(3), good.back_down_at()) == (90, 400)
    assert good.passed()
    assert not report(ratio_per_pod=0.7).passed()  # 2.1x
    lost = report()
    lost.validated = {"missing": 0, "duplicates": 2}
    assert not lost.passed()
    errors = report()
    errors.server_errors = 1
    assert not errors.passed()
    text = good.markdown("k8s-scale.png")
    assert "**3.00x**" in text
    assert "3 replicas ready at 90 s" in text
    assert "back to the minimum at 400 s" in text
    good.plot(tmp_path / "k8s-scale.png")
    assert (tmp_path / "k8s-scale.png").stat().st_size > 10_000


def test_the_curve_written_for_make_bench_reads_back(tmp_path: Path) -> None:
    written = json.loads(report(ratio_per_pod=0.8).as_json())
    assert written["ratio"] == pytest.approx(2.4)
    assert [s["replicas"] for s in written["stages"]] == [1, 2, 3]
    assert replicas.curve_ratio(written) == pytest.approx(2.4)
    assert replicas.curve_ratio({"stages": written["stages"][:2]}) is None


def test_the_report_says_what_limited_each_row_of_the_curve() -> None:
    r = report()
    r.node_capacity_m = 2000.0
    r.curve.stages[2].node_cpu_m = 1950.0
    r.curve.stages[1].cpu_m = dict.fromkeys(r.curve.stages[1].cpu_m, 100.0)
    text = r.markdown("k8s-scale.png")
    assert "- 1 replica(s): every collector ran at its CPU limit (250m)" in text
    assert "- 2 replica(s): neither the pods' limit nor the node was reached" in text
    assert "- 3 replica(s): the node's CPU was the limit (1950m of 2000m busy)" in text
    # 250m for 1,000 events/s: 250 µs of collector CPU per event.
    assert r.curve.stages[0].cpu_us_per_event() == pytest.approx(250.0)
