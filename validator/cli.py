"""`python -m validator` runs the service; `python -m validator contracts check` checks."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import orjson
from pydantic import ValidationError
from pydantic_settings import SettingsError

from console.logs import JsonFormatter
from console.settings_help import settings_epilog
from validator import contracts
from validator.settings import DEFAULT_CONTRACTS_DIR, Settings, problems


def run_service() -> int:
    from validator.loop import Validator
    from validator.server import serve
    from validator.topics import ValidatorError

    try:
        settings = Settings()
    except (ValidationError, SettingsError) as exc:
        for line in problems(exc):
            print(f"validator: {line}", file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    registry = contracts.Registry.load(settings.contracts_dir)
    validator = Validator(settings, registry)
    # SIGTERM: finish (commit) the batch in hand, leave the group, exit.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: validator.stop.set())
    server = serve(validator, settings.host, settings.port)
    try:
        validator.run()
    except ValidatorError as exc:
        logging.getLogger("validator").error("stopping", extra={"error": str(exc)})
        return 1
    finally:
        server.shutdown()
    print(orjson.dumps(validator.counts.as_dict()).decode(), flush=True)
    return 0


def check_contracts(root: Path) -> int:
    problems = contracts.check(root)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        names = [f"{t}/{v}" for t, v, _ in contracts.contract_files(root)]
        print(f"{len(names)} contracts valid and backward compatible: {', '.join(names)}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m validator",
        description="Validate raw events against their contracts, exactly once, into the\n"
        "validated and dead-letter topics. `run` (the default) runs the service, configured by\n"
        "the environment variables below.",
        epilog=settings_epilog(Settings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser(
        "run",
        help="run the service (the default)",
        epilog=parser.epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = sub.add_parser("contracts", help="work with the contract files")
    group_sub = group.add_subparsers(dest="action", required=True)
    check = group_sub.add_parser(
        "check", help="meta-schema and backward compatibility of every contract"
    )
    check.add_argument("--dir", type=Path, default=DEFAULT_CONTRACTS_DIR, help="contracts folder")
    args = parser.parse_args(argv)
    if args.command == "contracts":
        return check_contracts(args.dir)
    return run_service()
