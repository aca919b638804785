"""The benchmark issue's targets, each met or not, with the figure that decides it."""
# ruff: noqa: RUF001  (the multiplication sign is meant: prose for people)

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench import events, replicas

if TYPE_CHECKING:
    from bench.harness import Results


@dataclass(frozen=True)
class Verdict:
    target: str
    figure: str
    met: bool | None  # None: not measured


def events_per_s(results: Results, key: str) -> float | None:
    row = results.closed.get(key)
    return float(row["events_per_s"]) if row else None


def open_loop_row(results: Results, key: str, rate: float) -> dict[str, Any] | None:
    return next((r for r in results.open_loop if r["key"] == key and r["rate_per_s"] == rate), None)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def verdicts(results: Results) -> list[Verdict]:
    """Each target of the benchmark issue, met or not, with the figure that decides it."""
    return collector_verdicts(results) + scale_verdicts(results) + producer_verdicts(results)


def scale_verdicts(results: Results) -> list[Verdict]:
    """Scale as a 2-core machine can show it (CPU per event flat over replicas) and as a cluster
    shows it (the last `make k8s-scale` curve)."""
    flat = replicas.flatness(results)
    out = [
        Verdict(
            f"server CPU per event at 3 replicas within {replicas.FLAT_WITHIN:.0%} of 1 replica",
            "not measured" if flat is None else f"{flat:.2f}× one replica's",
            None if flat is None else abs(flat - 1) <= replicas.FLAT_WITHIN,
        )
    ]
    curve = replicas.k8s_scale_curve()
    found = replicas.curve_ratio(curve) if curve else None
    out.append(
        Verdict(
            "3 collectors ≥ 2.4× one on a cluster (`make k8s-scale`)",
            "no make k8s-scale run yet"
            if found is None
            else f"{found:.2f}× ({curve['written'] if curve else ''})",
            None if found is None else found >= 2.4,
        )
    )
    return out


def collector_verdicts(results: Results) -> list[Verdict]:
    out = []
    ours = events_per_s(results, "ours_single")
    for base, key, need in (
        ("the tutorial collector", "tutorial", 2.0),
        ("the FastAPI-hello ceiling", "hello", 1.0),
    ):
        found = ratio(ours, events_per_s(results, key))
        out.append(
            Verdict(
                f"single events ≥ {need:g}× {base}",
                "not measured"
                if found is None
                else f"{found:.2f}× ({ours:,.0f} vs {events_per_s(results, key):,.0f} events/s)",
                None if found is None else found >= need,
            )
        )
    batch = events_per_s(results, "ours_batch")
    out.append(
        Verdict(
            "batches of 100 ≥ 50,000 events/s from one worker",
            "not measured" if batch is None else f"{batch:,.0f} events/s",
            None if batch is None else batch >= 50_000,
        )
    )
    steady = open_loop_row(results, "ours_single", 1000)
    if steady is None:
        out.append(Verdict("p99 at a steady 1,000 req/s < 20 ms", "not measured", None))
    else:
        all_ok = steady["ok"] == steady["scheduled"]
        out.append(
            Verdict(
                "p99 at a steady 1,000 req/s < 20 ms",
                f"p99 {steady['p99_ms']:.1f} ms ({steady['ok']:,}/{steady['scheduled']:,} 202)",
                steady["p99_ms"] < 20 and all_ok,
            )
        )
    return out


def producer_verdicts(results: Results) -> list[Verdict]:
    out = []
    conversion = results.producer.get("conversion")
    out.append(
        Verdict(
            "producer conversion ≥ 30× pandas iterrows",
            "not measured"
            if not conversion
            else f"{conversion['ratio']:.1f}× ({conversion['ours_rows_per_s']:,.0f} vs "
            f"{conversion['pandas_rows_per_s']:,.0f} rows/s)",
            None if not conversion else conversion["ratio"] >= 30,
        )
    )
    pacing = results.producer.get("pacing") or []
    for size, noun in ((1, "single events"), (events.BATCH_SIZE, "batches of 100")):
        rows = [r for r in pacing if r["batch_size"] == size]
        worst = max(rows, key=lambda r: abs(r["error"])) if rows else None
        out.append(
            Verdict(
                f"pacing within 1% ({noun})",
                "not measured"
                if worst is None
                else f"worst {worst['error']:+.2%} at {worst['rate_per_s']:,} events/s",
                None if worst is None else abs(worst["error"]) <= 0.01,
            )
        )
    memory = results.producer.get("memory")
    if memory and len(memory) == 2:
        growth = memory[1]["max_rss_mib"] / memory[0]["max_rss_mib"] - 1
        out.append(
            Verdict(
                "peak memory within 20% for a 10× file",
                f"{growth:+.1%} ({memory[0]['max_rss_mib']:.0f} → "
                f"{memory[1]['max_rss_mib']:.0f} MiB)",
                growth <= 0.20,
            )
        )
    else:
        out.append(Verdict("peak memory within 20% for a 10× file", "not measured", None))
    return out
