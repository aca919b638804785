"""`python -m producer replay|reconcile|sample`: where settings, files and I/O are built."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from console.settings_help import add_setting_flags, env_var, settings_epilog
from kafkaconn import KafkaConnection, settings_problems
from kafkaconn.reasons import KafkaUnavailable, TopicReadError
from producer import sample, source
from producer.client import CollectorClient
from producer.reconcile import reconcile
from producer.replay import replay
from producer.rows import SchemaError
from producer.settings import ReconcileSettings, ReplaySettings
from producer.verdict import verdict

EXIT_FAILED = 1
EXIT_USAGE = 2
# What a shell reports for a command stopped by Ctrl-C (128 + SIGINT), so `replay && reconcile`
# does not carry on after an interrupted replay.
EXIT_INTERRUPTED = 128 + signal.SIGINT

_DESCRIPTION = """\
Replay parquet files (TLC taxi trips, or any other) into the event collector, one event per
row, and check afterwards that every row reached Kafka exactly once.

  python -m producer sample data/                       # three small files to try it with
  python -m producer replay data/*.parquet --rate 500   # send them to the collector
  python -m producer reconcile data/*.parquet           # compare the topics with the files

Every flag can also be set by an environment variable (named in each command's --help)."""

_REPLAY_EXAMPLE = """\
example:
  python -m producer replay data/yellow_tripdata_2023-01.parquet \\
      --collector-url http://127.0.0.1:8000 --rate 2000 --batch-size 100

Prints progress and, at the end, a table on stderr, then one JSON summary line on stdout.
Exit code: 0 all accepted or rejected, 1 some failed, 2 usage or file error, 130 Ctrl-C."""

_RECONCILE_EXAMPLE = """\
example:
  python -m producer reconcile data/yellow_tripdata_2023-01.parquet \\
      --bootstrap-servers 127.0.0.1:9092

Prints one JSON line (expected, raw, dead_letter, missing, duplicates, unexpected), then a
verdict with the first offending event ids on stderr. A secured Kafka: PRODUCER_KAFKA_*
(SECURITY_PROTOCOL, SASL_MECHANISM, SASL_USERNAME, SASL_PASSWORD, CA_FILE, PROPERTIES as JSON);
the password only from the environment.
Exit code: 0 every row there once, 1 rows missing or unexpected, 2 usage or setting error,
3 Kafka unreachable or refused the login."""

_SAMPLE_EXAMPLE = """\
example:
  python -m producer sample data/ --rows 300 --months 2023-01"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _files(
    command: argparse.ArgumentParser, model: type[ReplaySettings | ReconcileSettings]
) -> None:
    command.add_argument(
        "data_urls",
        nargs="*",
        metavar="FILE_OR_URL",
        help=f"parquet files or http(s) URLs (env {env_var(model, 'data_urls')})",
    )


def _command(
    sub: Any, name: str, summary: str, description: str, example: str
) -> argparse.ArgumentParser:
    return sub.add_parser(  # type: ignore[no-any-return]
        name,
        help=summary,
        description=textwrap.fill(description, 88),
        epilog=example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_sample(sub: Any) -> None:
    sp = _command(
        sub, "sample", "write small TLC-shaped yellow taxi files",
        "Write one small parquet file per month, shaped like the TLC's yellow taxi trip records "
        "(same columns and types); the same seed always writes the same files.",
        _SAMPLE_EXAMPLE,
    )  # fmt: skip
    sp.add_argument("out_dir", type=Path, nargs="?", metavar="OUTDIR", help="folder to write to")
    sp.add_argument("--out-dir", dest="out_dir_flag", type=Path, help="same as OUTDIR")
    sp.add_argument(
        "--rows",
        type=_positive,
        default=1000,
        help="rows per file, at least 1 (default: %(default)s)",
    )
    sp.add_argument("--seed", type=int, default=2023, help="random seed (default: %(default)s)")
    sp.add_argument(
        "--months", nargs="+", default=list(sample.MONTHS), help="YYYY-MM (default: %(default)s)"
    )
    sp.add_argument(
        "--row-group-rows",
        type=int,
        default=0,
        help="rows per parquet row group, 0 = one group (default: %(default)s)",
    )


# Kafka could not be reached or read, or refused us: not a verdict on the rows.
EXIT_KAFKA = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m producer",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rp = _command(
        sub, "replay", "send every row of parquet files to the collector",
        "Send every row of the files to the collector as one event, paced at --rate, retrying "
        "what the collector asks to be sent again. JOB_COMPLETION_INDEX (a Kubernetes Indexed "
        "Job) picks one file of the list.",
        _REPLAY_EXAMPLE,
    )  # fmt: skip
    _files(rp, ReplaySettings)
    rp.add_argument(
        "--sha256",
        action="append",
        metavar="FILE_OR_URL=HEX",
        help="the sha256 a file must have (repeat per file); a file that differs is not replayed "
        f"(default: none; env {env_var(ReplaySettings, 'sha256')})",
    )
    add_setting_flags(
        rp,
        ReplaySettings,
        flags={"rate_per_s": "--rate"},
        skip=("data_urls", "sha256", "job_completion_index"),
    )

    rc = _command(
        sub, "reconcile", "compare the topics with the files",
        "Read the raw and dead-letter topics to their end and compare them with the files: "
        "every row must be there exactly once.",
        _RECONCILE_EXAMPLE,
    )  # fmt: skip
    _files(rc, ReconcileSettings)
    _kafka_flags(rc)
    rc.add_argument(
        "--show", type=int, default=10, help="offending ids printed per kind (default: 10)"
    )
    env_only = add_setting_flags(
        rc, ReconcileSettings, skip=("data_urls", "kafka", "bootstrap_servers")
    )
    if env_only:
        rc.epilog = f"{rc.epilog}\n\n" + settings_epilog(
            ReconcileSettings, env_only, title="set only by environment variables:"
        )

    _add_sample(sub)
    return parser


def _kafka_flags(rc: argparse.ArgumentParser) -> None:
    """The Kafka connection's flags, made from its fields; each wins over its PRODUCER_KAFKA_*
    variable. The password and extra properties only from the environment, never a command line."""
    for name, field in KafkaConnection.model_fields.items():
        if name in _KAFKA_ENV_ONLY:
            continue
        default = field.default if field.default is not None else "none"
        rc.add_argument(
            "--" + name.replace("_", "-"),
            dest=f"kafka_{name}",
            metavar="PATH" if name == "ca_file" else "TEXT",
            help=f"{field.description} (default: {default}; env PRODUCER_KAFKA_{name.upper()})",
        )


_KAFKA_ENV_ONLY = ("sasl_password", "properties")


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
    interrupted = False

    def on_interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    headers = [("authorization", f"Bearer {settings.api_key}")] if settings.api_key else []
    async with CollectorClient(
        settings.collector_url,
        max_connections=settings.concurrency,
        timeout_s=settings.timeout_s,
        headers=headers,
    ) as client:
        summary = await replay(paths, settings, client, stop=stop)
    # The table first: the JSON line stays the last of the run's output, for whatever reads logs.
    print("\n" + summary.tables() + "\n", file=sys.stderr, flush=True)
    print(summary.line(), flush=True)
    if summary.error:
        print(f"error: {summary.error}", file=sys.stderr)
    if interrupted:
        print("interrupted (Ctrl-C): the rest of the input was not sent", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if summary.stats.failed == 0 and not summary.error else EXIT_FAILED


def run_replay(args: argparse.Namespace) -> int:
    settings = ReplaySettings(**_given(args))
    files = settings.selected_files()
    if not files:
        return _error("no files to replay (give FILE_OR_URL or PRODUCER_DATA_URLS)")
    with contextlib.ExitStack() as stack:
        paths = source.local_copies(stack, files, sha256_of=settings.expected_sha256)
        # uvloop: about a quarter less CPU per request than asyncio's own loop (90 against
        # 120 µs measured with the client's pool), which single events at 2,000/s need.
        return uvloop.run(_replay_async(settings, paths))


def run_reconcile(args: argparse.Namespace) -> int:
    settings = ReconcileSettings(**_given(args))
    if not settings.data_urls:
        return _error("no files to reconcile (give FILE_OR_URL or PRODUCER_DATA_URLS)")
    with contextlib.ExitStack() as stack:
        paths = source.local_copies(stack, settings.data_urls)
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
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValidationError as exc:
        return _error(
            _invalid(exc, ReconcileSettings if args.command == "reconcile" else ReplaySettings)
        )
    except KafkaUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_KAFKA
    except (ValueError, OSError, SchemaError, TopicReadError, httpx.HTTPError) as exc:
        return _error(str(exc))
