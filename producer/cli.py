"""`python -m producer replay|reconcile|sample`: where settings, files and I/O are built."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from kafkaconn import settings_problems
from kafkaconn.reasons import KafkaUnavailable, TopicReadError
from producer import sample, source
from producer.reconcile import reconcile
from producer.replay import replay
from producer.rows import SchemaError
from producer.settings import ReconcileSettings, ReplaySettings
from producer.verdict import verdict

EXIT_FAILED = 1
EXIT_USAGE = 2
# Kafka could not be reached or read, or refused us: not a verdict on the rows.
EXIT_KAFKA = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m producer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    rp = sub.add_parser(
        "replay",
        help="send every row of parquet files to the collector",
        description="Each flag also reads PRODUCER_<FLAG> (files: PRODUCER_DATA_URLS); "
        "JOB_COMPLETION_INDEX picks one file of the list.",
    )
    rp.add_argument("data_urls", nargs="*", metavar="FILE_OR_URL")
    rp.add_argument(
        "--sha256",
        action="append",
        metavar="FILE_OR_URL=HEX",
        help="the sha256 a file must have (repeat per file); a file that differs is not replayed",
    )
    rp.add_argument("--collector-url")
    rp.add_argument("--rate", dest="rate_per_s", type=float, help="events/s, 0 = unthrottled")
    rp.add_argument("--max-records", type=int)
    rp.add_argument("--batch-size", type=int, help="events per request (>1: batch endpoint)")
    rp.add_argument("--concurrency", type=int, help="requests in flight")
    rp.add_argument("--event-type")
    rp.add_argument("--schema-version")
    rp.add_argument("--api-key")
    rp.add_argument("--timeout-s", type=float)
    rp.add_argument("--max-attempts", type=int)
    rp.add_argument("--max-retry-s", type=float)
    rp.add_argument("--backoff-base-s", type=float)
    rp.add_argument("--backoff-cap-s", type=float)
    rp.add_argument("--read-batch-rows", type=int)
    rp.add_argument("--progress-interval-s", type=float)
    rp.add_argument("--drain-timeout-s", type=float)

    rc = sub.add_parser("reconcile", help="compare the topics with the files")
    rc.add_argument("data_urls", nargs="*", metavar="FILE_OR_URL")
    rc.add_argument("--bootstrap-servers", dest="kafka_bootstrap_servers")
    rc.add_argument("--raw-topic")
    rc.add_argument("--dead-letter-topic")
    rc.add_argument("--check-payloads", action="store_true", default=None)
    rc.add_argument(
        "--by-collector", action="store_true", default=None, help="records per collector_id"
    )
    rc.add_argument("--event-type")
    rc.add_argument("--schema-version")
    rc.add_argument("--read-timeout-s", type=float)
    rc.add_argument("--max-records", type=int, help="expect only the first N rows of each file")
    rc.add_argument("--show", type=int, default=10, help="offending ids printed per kind (10)")
    _kafka_flags(rc)

    sp = sub.add_parser("sample", help="write small TLC-shaped yellow taxi files")
    sp.add_argument("out_dir", type=Path, nargs="?", metavar="OUTDIR")
    sp.add_argument("--out-dir", dest="out_dir_flag", type=Path, help="same as OUTDIR")
    sp.add_argument("--rows", type=int, default=1000)
    sp.add_argument("--seed", type=int, default=2023)
    sp.add_argument("--months", nargs="+", default=list(sample.MONTHS))
    sp.add_argument("--row-group-rows", type=int, default=0)
    return parser


def _kafka_flags(rc: argparse.ArgumentParser) -> None:
    """The Kafka connection's flags; each wins over its PRODUCER_KAFKA_* variable."""
    rc.add_argument(
        "--security-protocol", dest="kafka_security_protocol",
        help="PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL",
    )  # fmt: skip
    rc.add_argument("--sasl-mechanism", dest="kafka_sasl_mechanism", help="e.g. SCRAM-SHA-512")
    rc.add_argument(
        "--sasl-username", dest="kafka_sasl_username",
        help="the password only as PRODUCER_KAFKA_SASL_PASSWORD, never on a command line",
    )  # fmt: skip
    rc.add_argument("--ca-file", dest="kafka_ca_file", help="PEM file of the brokers' CA")


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """Flags actually given, so unset ones fall back to the environment."""
    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("command", "show")}
    if not given.get("data_urls"):
        given.pop("data_urls", None)
    # --bootstrap-servers and friends belong to the Kafka connection, over PRODUCER_KAFKA_*.
    kafka = {k.removeprefix("kafka_"): given.pop(k) for k in list(given) if k.startswith("kafka_")}
    return {**given, "kafka": kafka} if kafka else given


_FLAGS = {"rate_per_s": "--rate", "data_urls": "FILE_OR_URL", "out_dir": "OUTDIR"}


def _invalid(exc: ValidationError, settings: type[BaseSettings]) -> str:
    """One line per wrong setting, named as its flag: `--collector-url: ...` (the Kafka
    connection's as its PRODUCER_KAFKA_* variable, as every component names them)."""
    lines = [line for line in settings_problems(exc, settings) if "KAFKA_" in line]
    for error in exc.errors():
        if error["loc"][:1] == ("kafka",):
            continue
        field = "_".join(str(part) for part in error["loc"])
        name = _FLAGS.get(field, "--" + field.replace("_", "-"))
        lines.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


async def _replay_async(settings: ReplaySettings, paths: list[tuple[str, Path]]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    headers = {"authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    async with httpx.AsyncClient(
        base_url=settings.collector_url,
        headers=headers,
        timeout=settings.timeout_s,
        limits=httpx.Limits(
            max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
        ),
    ) as client:
        summary = await replay(paths, settings, client, stop=stop)
    print(summary.line(), flush=True)
    if summary.error:
        print(f"error: {summary.error}", file=sys.stderr)
    return 0 if summary.stats.failed == 0 and not summary.error else EXIT_FAILED


def run_replay(args: argparse.Namespace) -> int:
    settings = ReplaySettings(**_given(args))
    files = settings.selected_files()
    if not files:
        return _error("no files to replay (give FILE_OR_URL or PRODUCER_DATA_URLS)")
    with contextlib.ExitStack() as stack:
        paths = [
            (
                source.file_name(f),
                stack.enter_context(source.local_copy(f, sha256=settings.expected_sha256(f))),
            )
            for f in files
        ]
        return asyncio.run(_replay_async(settings, paths))


def run_reconcile(args: argparse.Namespace) -> int:
    settings = ReconcileSettings(**_given(args))
    if not settings.data_urls:
        return _error("no files to reconcile (give FILE_OR_URL or PRODUCER_DATA_URLS)")
    with contextlib.ExitStack() as stack:
        paths = [
            (source.file_name(f), stack.enter_context(source.local_copy(f)))
            for f in settings.data_urls
        ]
        result = reconcile(
            paths,
            connection=settings.kafka,
            raw_topic=settings.raw_topic,
            dead_letter_topic=settings.dead_letter_topic,
            check_payloads=settings.check_payloads,
            event_type=settings.event_type,
            schema_version=settings.schema_version,
            timeout_s=settings.read_timeout_s,
            max_rows=settings.max_records,
        )
    report = result.report(by_collector=settings.by_collector)
    print(orjson.dumps(report).decode(), flush=True)
    print("\n".join(verdict(report, result.offenders(max(0, args.show)))), file=sys.stderr)
    return 0 if result.ok else EXIT_FAILED


def run_sample(args: argparse.Namespace) -> int:
    out_dir = args.out_dir_flag or args.out_dir
    if out_dir is None:
        return _error("give OUTDIR (or --out-dir)")
    paths = sample.write_samples(
        out_dir,
        rows=args.rows,
        seed=args.seed,
        months=tuple(args.months),
        row_group_rows=args.row_group_rows,
    )
    for path in paths:
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = {"replay": run_replay, "reconcile": run_reconcile, "sample": run_sample}
    try:
        return command[args.command](args)
    except ValidationError as exc:
        return _error(
            _invalid(exc, ReconcileSettings if args.command == "reconcile" else ReplaySettings)
        )
    except KafkaUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_KAFKA
    except (ValueError, OSError, SchemaError, TopicReadError, httpx.HTTPError) as exc:
        return _error(str(exc))
