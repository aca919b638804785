"""The demo's closing report, from the producers' and the reconciliation's JSON lines."""

from __future__ import annotations

from pathlib import Path

from devstack.demo.producers import file_stem
from devstack.demo.stack import stop_recorded
from devstack.demo.summary import ProducerResult, parse_summary, render_summary, verdict
from devstack.reporting import table


def _result(name: str, accepted: int, seconds: float, failed: int = 0) -> ProducerResult:
    summary = {
        "records": accepted + failed,
        "accepted": accepted,
        "rejected": 0,
        "failed": failed,
        "retries": 3 * failed,
        "seconds": seconds,
    }
    return ProducerResult(name, 0 if failed == 0 else 1, summary)


def test_parse_summary_takes_the_last_json_object_line() -> None:
    out = 'starting\n{"records": 1}\nnot json\n{"records": 5, "accepted": 5}\n'
    assert parse_summary(out) == {"records": 5, "accepted": 5}
    assert parse_summary("nothing here\n[1, 2]\n") == {}


def test_table_aligns_numbers_right_with_separators() -> None:
    text = table(["file", "records", "rate"], [["jan", 5000, 296.4], ["february", 12, None]])
    assert text.splitlines() == [
        "file      records   rate",
        "--------  -------  -----",
        "jan         5,000  296.4",
        "february       12      -",
    ]


def test_summary_has_every_section_and_totals() -> None:
    text = render_summary(
        [
            _result("yellow_tripdata_2023-01", 5000, 20.0),
            _result("yellow_tripdata_2023-02", 4990, 20.0, failed=10),
        ],
        {"raw-events": 9990, "raw-events-dlq": 0},
        {"collector-1": 3330, "collector-2": 3330, "collector-3": 3330},
        {
            "expected": 10000,
            "raw": 9990,
            "dead_letter": 0,
            "missing": 10,
            "duplicates": 0,
            "unexpected": 0,
        },
    )
    lines = text.splitlines()
    total = next(line for line in lines if line.startswith("total"))
    assert total.split() == ["total", "10,000", "9,990", "0", "10", "30", "20.0", "500", "-"]
    assert any(line.split() == ["raw-events", "9,990"] for line in lines)
    assert any(line.split() == ["collector-2", "3,330", "33.3%"] for line in lines)
    assert lines[-1].strip() == "NOT OK: 10 missing, 0 unexpected."


def test_verdict_names_duplicates_when_nothing_is_missing() -> None:
    report = {"expected": 15000, "missing": 0, "duplicates": 7, "unexpected": 0}
    assert verdict(report) == (
        "OK: every one of 15,000 rows is on Kafka (7 duplicates, recognised by event_id)."
    )


def test_file_stem_from_paths_and_urls() -> None:
    assert file_stem("/data/yellow_tripdata_2023-01.parquet") == "yellow_tripdata_2023-01"
    assert file_stem("https://example.org/trip-data/green_tripdata_2023-02.parquet") == (
        "green_tripdata_2023-02"
    )


def test_demo_down_without_a_kept_stack_does_nothing(tmp_path: Path) -> None:
    assert stop_recorded(tmp_path) is False
    (tmp_path / "stack.json").write_text("{not json")
    assert stop_recorded(tmp_path) is False
