"""The demo's validator stage: one `python -m validator` behind the collectors, its counts, and the
reconciliation of the validated topics (every row exactly once, reading committed records)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devstack.demo.data import reconcile
from devstack.kafka import DEFAULT_TOPICS, VALIDATED_TOPICS
from devstack.validator import ValidatorProcess, wait_caught_up

COUNTS = ("validated", "dead_letter", "duplicate")


def start_validator(bootstrap_servers: str, logs: Path, *, keep: bool) -> ValidatorProcess:
    validator = ValidatorProcess(
        bootstrap_servers,
        raw_topic=DEFAULT_TOPICS[0],
        validator_id="validator-1",
        log_path=logs / "validator-1.log",
        die_with_parent=not keep,
    )
    validator.start()
    return validator


def counts(validator: ValidatorProcess) -> dict[str, int]:
    """What the validator did, from its /metrics (it keeps running with `--keep`)."""
    return {
        name: int(validator.metric(f'validator_records_total{{outcome="{name}"}}'))
        for name in COUNTS
    }


def settle(
    validator: ValidatorProcess, bootstrap_servers: str, files: Sequence[str]
) -> tuple[dict[str, int], dict[str, Any] | None]:
    """Wait until the validator has committed every raw record, then count and reconcile."""
    wait_caught_up(bootstrap_servers, validator.group_id, validator.raw_topic, timeout_s=300)
    return counts(validator), reconcile(bootstrap_servers, files, VALIDATED_TOPICS)


def ok(report: Mapping[str, Any] | None) -> bool:
    return report is not None and all(
        int(report.get(k, -1)) == 0 for k in ("missing", "duplicates", "unexpected")
    )


def render(counts: Mapping[str, int], report: Mapping[str, Any] | None) -> str:
    lines = [
        "Validator (python -m validator: exactly once, into "
        f"{VALIDATED_TOPICS[0]} / {VALIDATED_TOPICS[1]})",
        "  " + ", ".join(f"{name} {counts.get(name, 0):,}" for name in COUNTS),
        "",
        "Reconciliation of the validated topics (committed records only)",
    ]
    if report is None:
        lines.append("  did not run")
        return "\n".join(lines)
    lines.append("  " + json.dumps(dict(report)))
    if ok(report):
        lines.append(
            f"  OK: each of {int(report.get('expected', 0)):,} rows exactly once "
            f"({int(report.get('raw', 0)):,} validated, {int(report.get('dead_letter', 0)):,} "
            "dead-lettered, 0 duplicates)."
        )
    else:
        lines.append(
            f"  NOT OK: {report.get('missing')} missing, {report.get('duplicates')} duplicates, "
            f"{report.get('unexpected')} unexpected."
        )
    return "\n".join(lines)
