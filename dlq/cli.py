"""`python -m dlq inspect | show | redrive`: see what is parked and why, and bring it back."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
from confluent_kafka import KafkaException

from collector.envelope import Enveloper, utc_now
from console.timestamps import rfc3339
from dlq import inspect, metrics
from dlq.decide import Judges
from dlq.reading import ReadError
from dlq.records import Filters, parse_time
from dlq.redrive import Redriver, parked_records, route
from dlq.settings import Settings, listed
from dlq.transform import TransformError, load
from validator.contracts import ContractError, Registry

EXIT_KAFKA = 3
EXIT_INPUT = 4


def _merge(settings: Settings, args: argparse.Namespace) -> None:
    """Flags win; what no flag gives comes from the DLQ_* settings (a Job's env)."""
    args.stage = args.stage or settings.stage
    args.since = args.since or settings.since
    args.until = args.until or settings.until
    if args.command == "redrive":
        args.dry_run = args.dry_run or settings.dry_run
        args.transform = args.transform or settings.transform


def _filters(settings: Settings, args: argparse.Namespace) -> Filters:
    def pick(flag: list[str] | None, env: str) -> frozenset[str]:
        return frozenset(flag) if flag else listed(env)

    return Filters(
        reasons=pick(args.reason, settings.reason),
        event_types=pick(args.event_type, settings.event_type),
        schema_versions=pick(args.schema_version, settings.schema_version),
        event_ids=pick(args.event_id, settings.event_id),
        since_ms=parse_time(args.since) if args.since else None,
        until_ms=parse_time(args.until) if args.until else None,
    )


def _print_json(value: object) -> None:
    print(orjson.dumps(value).decode(), flush=True)


def cmd_inspect(settings: Settings, args: argparse.Namespace) -> int:
    topic = route(settings, args.stage).dead_letter_topic
    filters = _filters(settings, args)
    groups = inspect.summarise(p for p in parked_records(settings, topic) if filters.match(p))
    if args.json:
        _print_json([g.as_json() for g in groups])
    else:
        print(f"{topic}:\n{inspect.summary_table(groups)}")
    metrics.push(settings.pushgateway_url, "dlq-inspect", args.stage,
                 metrics.parked_registry(args.stage, groups))  # fmt: skip
    return 0


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    topic = route(settings, args.stage).dead_letter_topic
    filters, shown = _filters(settings, args), 0
    for parked in parked_records(settings, topic):
        if not filters.match(parked):
            continue
        if args.json:
            _print_json(parked.as_json())
        else:
            print(inspect.show_text(parked), flush=True)
        shown += 1
        if args.limit and shown >= args.limit:
            break
    return 0


def cmd_redrive(settings: Settings, args: argparse.Namespace) -> int:
    judges = Judges(
        registry=Registry.load(settings.contracts_dir),
        enveloper=Enveloper(settings.redrive_id),
        validator_id=settings.redrive_id,
        now_text=rfc3339(utc_now()),
        transform=load(args.transform) if args.transform else None,
    )
    redriver = Redriver(settings, route(settings, args.stage), judges, dry_run=args.dry_run)
    summary = redriver.run(_filters(settings, args))
    if summary.still_parked:
        rows = sorted(summary.still_parked.items(), key=lambda item: -item[1])
        print(inspect.table(("still parked", "reason now"), [(n, r) for r, n in rows]),
              file=sys.stderr)  # fmt: skip
    _print_json(summary.as_json())
    if not args.dry_run:
        metrics.push(settings.pushgateway_url, "dlq-redrive", args.stage,
                     metrics.redrive_registry(summary))  # fmt: skip
    return 0


_ABOUT = ("See what the dead-letter topics hold and re-drive it exactly once after a fix (Kafka "
          "and topics from DLQ_* variables; see docs/dlq.md).")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m dlq", description=_ABOUT)
    sub = top.add_subparsers(dest="command", required=True)
    for name, text in (("inspect", "counts by reason, type, version and stage id"),
                       ("show", "the parked records themselves, with their original bytes"),
                       ("redrive", "check parked records against the contracts as they are now "
                                   "and write those that pass, exactly once")):  # fmt: skip
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--stage", choices=("validator", "collector"),
                             help="whose dead letters: validated-events-dlq (default) or "
                                  "raw-events-dlq")  # fmt: skip
        command.add_argument("--reason", action="append", help="reason code (repeatable)")
        command.add_argument("--event-type", action="append", help="event_type (repeatable)")
        command.add_argument("--schema-version", action="append", help="(repeatable)")
        command.add_argument("--event-id", action="append", help="event_id (repeatable)")
        command.add_argument("--since", help="parked at or after (ISO 8601, UTC)")
        command.add_argument("--until", help="parked before (ISO 8601, UTC)")
        if name != "redrive":
            command.add_argument("--json", action="store_true", help="JSON lines for scripts")
        if name == "show":
            command.add_argument("--limit", type=int, default=0, help="at most this many")
        if name == "redrive":
            command.add_argument("--dry-run", action="store_true", help="count, write nothing")
            command.add_argument("--transform", type=Path,
                                 help="a JSON Patch (.json) or a Python file (.py) defining "
                                      "transform(body) -> bytes | None")  # fmt: skip
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"inspect": cmd_inspect, "show": cmd_show, "redrive": cmd_redrive}
    try:
        settings = Settings()
        _merge(settings, args)
        return commands[args.command](settings, args)
    except ValueError as exc:  # a bad time, transformation or contract
        kind = "transformation" if isinstance(exc, TransformError) else "input"
        kind = "contracts" if isinstance(exc, ContractError) else kind
        print(f"dlq: bad {kind}: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except (ReadError, KafkaException) as exc:
        print(f"dlq: {exc}; check DLQ_KAFKA_BOOTSTRAP_SERVERS and the topics", file=sys.stderr)
        return EXIT_KAFKA
    except OSError as exc:  # e.g. the Pushgateway refused
        print(f"dlq: {exc}", file=sys.stderr)
        return EXIT_KAFKA
