"""bench/results.png: throughput and open-loop latency side by side."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.harness import Results


def plot(results: Results, path: Path) -> None:
    """Throughput (events/s, log scale) and open-loop latency percentiles side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    labels, values, colours = [], [], []
    order = ["bare", "hello", "tutorial", "ours_single", "ours_batch", "ours_single_gzip",
             "ours_batch_gzip", "r1_single", "r2_single", "r3_single"]  # fmt: skip
    for key in order:
        if key in results.closed:
            labels.append(results.labels[key].replace(" (", "\n(").replace(", ", "\n", 1))
            values.append(results.closed[key]["events_per_s"])
            colour = "tab:blue" if key in ("bare", "hello") else "tab:green"
            colours.append("tab:grey" if key == "tutorial" else colour)
    if results.raw_kafka:
        labels.append("raw confluent-kafka\nproduce (limit)")
        values.append(results.raw_kafka["messages_per_s"])
        colours.append("tab:orange")
    bars = left.barh(labels[::-1], values[::-1], color=colours[::-1])
    left.bar_label(bars, labels=[f"{v:,.0f}" for v in values[::-1]], padding=3, fontsize=8)
    left.set_xscale("log")
    left.set_xlabel("events/s (median, log scale)")
    left.set_title("Closed-loop throughput (wrk -t1 -c32)", pad=14)
    left.tick_params(axis="y", labelsize=7)
    left.axvline(50_000, color="tab:red", linestyle=":", linewidth=1)
    target = {"color": "tab:red", "fontsize": 7, "ha": "center", "va": "bottom"}
    at_target = left.get_xaxis_transform()
    left.text(50_000, 1.005, "50,000 events/s (batch target)", **target, transform=at_target)

    if results.open_loop:
        _latency(right, results.open_loop)
    mode = "QUICK mode" if results.plan.quick else "full run"
    load_avg = results.facts.get("load average at start", "?").split(" ")[0]
    fig.suptitle(
        f"make bench, {results.facts['date']} ({mode}; {results.facts['cpu']}; "
        f"load average at start {load_avg})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _latency(right: Any, rows: list[dict[str, Any]]) -> None:
    """Open-loop percentiles per app and rate, against the 20 ms p99 target."""
    import numpy as np

    names = [
        f"{r['label'].split(' (')[0].split(',')[0]}\n{r['rate_per_s']:,.0f} req/s"
        + ("\n(batches)" if r["events_per_request"] > 1 else "")
        for r in rows
    ]
    x = np.arange(len(rows))
    width = 0.27
    percentiles = (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"))
    for i, (key, name) in enumerate(percentiles):
        right.bar(x + (i - 1) * width, [r[key] for r in rows], width, label=name)
    right.axhline(20, color="tab:red", linestyle=":", linewidth=1, label="20 ms (p99 target)")
    right.set_xticks(x, names, fontsize=7, rotation=30, ha="right")
    right.set_yscale("log")
    right.set_ylabel("latency from scheduled send, ms (log scale)")
    right.set_title("Open-loop latency at fixed rates")
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
