"""bench/soak.md and bench/soak.png from one soak run's result."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from devstack.reporting import say


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def write_report(result: dict[str, Any], out_dir: Path) -> None:
    plot(result, out_dir / "soak.png")
    (out_dir / "soak.md").write_text(markdown(result))
    say(f"wrote {out_dir / 'soak.md'} and {out_dir / 'soak.png'}", stamp=True)


def plot(result: dict[str, Any], path: Path) -> None:
    """Accepted events/s, p99 and each replica's RSS over time; the restarts dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bucket_s = 10.0
    answers = result["answers"]
    end_s = max((t + w for t, w, _, _ in answers), default=0.0)
    buckets = int(end_s // bucket_s) + 1
    accepted = [0] * buckets
    waits: list[list[float]] = [[] for _ in range(buckets)]
    for t, wait, _, n in answers:
        index = int((t + wait) // bucket_s)
        accepted[index] += n
        waits[index].append(wait)
    xs = [(i + 0.5) * bucket_s / 60 for i in range(buckets)]
    rates = [n / bucket_s for n in accepted]
    p99s = [percentile(w, 0.99) * 1000 for w in waits]

    fig, (ax_rate, ax_p99, ax_rss) = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    ax_rate.plot(xs, rates)
    ax_rate.set_ylabel("202 events/s (10 s)")
    ax_p99.plot(xs, p99s)
    ax_p99.set_ylabel("p99 request ms (10 s)")
    ax_p99.set_yscale("log")
    samples = result["samples"]
    for name in sorted({n for s in samples for n in s["rss"]}):
        ax_rss.plot(
            [s["t"] / 60 for s in samples],
            [s["rss"].get(name, 0) / 2**20 for s in samples],
            label=name,
        )
    ax_rss.set_ylabel("collector RSS MiB")
    ax_rss.set_xlabel("minutes")
    ax_rss.legend()
    for restart in result["restarts"]:
        for ax in (ax_rate, ax_p99, ax_rss):
            ax.axvline(restart["t"] / 60, color="grey", linestyle=":")
    fig.suptitle(
        f"soak: {result['rate_per_s']:g} events/s, 3 replicas, 3 brokers; dotted: a broker and "
        "a replica restarted"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def markdown(result: dict[str, Any]) -> str:
    answers, samples = result["answers"], result["samples"]
    all_waits = [w for _, w, _, _ in answers]
    statuses = Counter(str(s) for _, _, s, _ in answers)
    producer, report = result["producer"], result["reconcile"]

    loads = [s["load"] for s in samples]
    lines = [
        "# Soak run",
        "",
        f"{result['minutes']:g} minutes at {result['rate_per_s']:g} events/s asked (three "
        "producers, one file each) through three collector replicas behind HAProxy into three "
        f"brokers (topics with three replicas, `min.insync.replicas=2`); every "
        f"{result['every_s']:g} s one broker and one replica were restarted (SIGTERM, then "
        "started again). Written by `make soak`.",
        "",
        f"Machine: {result['cpus']} CPUs, 1-minute load average during the run "
        f"{min(loads, default=0):.1f} to {max(loads, default=0):.1f}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| events sent / accepted / failed | {producer['records']} / {producer['accepted']} / "
        f"{producer['failed']} |",
        f"| replay seconds, events/s | {producer['seconds']:.0f}, {producer['rate_per_s']} |",
        f"| client retries | {producer['retries']} |",
        f"| answers by status | {dict(statuses)} |",
        f"| request p50 / p99 / max | {percentile(all_waits, 0.5) * 1000:.0f} ms / "
        f"{percentile(all_waits, 0.99) * 1000:.0f} ms / "
        f"{max(all_waits, default=0) * 1000:.0f} ms |",
        f"| reconciliation | expected {report['expected']}, raw {report['raw']}, missing "
        f"{report['missing']}, unexpected {report['unexpected']}, duplicates by event_id "
        f"{report['duplicates']} |",
        f"| 202 root_ids not on the raw topic | {result['accepted_not_on_topic']} |",
        f"| root_ids written twice | {result['duplicate_root_ids']} |",
        "",
        "Restarts (minute: broker, replica, seconds until both were back and every replica in "
        "sync):",
        "",
        *(
            f"- {r['t'] / 60:.1f}: broker {r['broker']}, {r['replica']}, {r['back_after_s']} s"
            for r in result["restarts"]
        ),
        "",
        "Collector RSS (MiB; a restarted replica starts again from its first value):",
        "",
        "| replica | first | max | last |",
        "|---|---|---|---|",
        *(_rss_line(samples, name) for name in sorted({n for s in samples for n in s["rss"]})),
        "",
        "![soak](soak.png)",
        "",
    ]
    return "\n".join(lines)


def _rss_line(samples: list[dict[str, Any]], name: str) -> str:
    values = [s["rss"].get(name, 0) / 2**20 for s in samples if s["rss"].get(name)]
    if not values:
        return f"| {name} | - | - | - |"
    return f"| {name} | {values[0]:.0f} | {max(values):.0f} | {values[-1]:.0f} |"
