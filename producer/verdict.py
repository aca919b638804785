"""What a person reads after `reconcile`: a verdict in words and the first offending event ids
(the JSON report on stdout stays the machine's)."""

from __future__ import annotations

from typing import Any


def verdict(report: dict[str, Any], offenders: dict[str, list[str]]) -> list[str]:
    """Lines for stderr: one verdict, then the first ids of each kind of problem."""
    expected, missing, unexpected = report["expected"], report["missing"], report["unexpected"]
    kept = f"{report['raw']:,} raw and {report['dead_letter']:,} dead-lettered"
    if missing == 0 and unexpected == 0:
        lines = [f"verdict: all {expected:,} rows are there ({kept})"]
    else:
        problems = [f"{missing:,} of {expected:,} rows missing"] if missing else []
        problems += [f"{unexpected:,} records that should not be there"] if unexpected else []
        lines = [f"verdict: NOT all there: {', '.join(problems)} ({kept})"]
    if report["duplicates"]:
        lines.append(
            f"  {report['duplicates']:,} rows arrived more than once (a retried send; "
            "same event_id, so a consumer can drop the copies)"
        )
    for kind, ids in offenders.items():
        if ids:
            lines.append(f"  first {kind}: {', '.join(ids)}")
    return lines
