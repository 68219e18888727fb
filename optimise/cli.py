"""Argument parsing and error handling for every ``optimise`` command.

Bad input ends with one ``error: …`` line on stderr and exit code 2; Ctrl-C (or SIGTERM) stops
cleanly with exit code 130 and leaves every study resumable.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import NoReturn

from models.exceptions import CheckpointError
from objectives.evaluator import BACKEND_MODULES
from objectives.exceptions import DataError
from objectives.windows import WindowSpec
from storage.exceptions import StorageError
from studies.exceptions import StudyError

USER_ERRORS = (DataError, StudyError, StorageError, CheckpointError)
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def _windows(parser: argparse.ArgumentParser) -> None:
    defaults = WindowSpec()
    parser.add_argument("--val-window", type=int, default=defaults.val_window)
    parser.add_argument("--test-window", type=int, default=defaults.test_window)
    parser.add_argument("--min-context", type=int, default=defaults.min_context)
    parser.add_argument("--horizon", type=int, default=defaults.horizon, help=argparse.SUPPRESS)


def _model_args(parser: argparse.ArgumentParser, *, symbols: str) -> None:
    parser.add_argument("--model", required=True, choices=sorted(BACKEND_MODULES))
    if symbols == "many":
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--symbols", nargs="+", metavar="SYMBOL")
        group.add_argument("--all", action="store_true", help="every <SYMBOL>.csv in --data-dir")
    else:
        parser.add_argument("--symbol", required=True)
    parser.add_argument("--data-dir", default="trainingdata")
    parser.add_argument("--checkpoint", help="predictor: folder or hub id (default: published)")
    parser.add_argument("--tokenizer", help="Kronos tokenizer: folder or hub id")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")


def _confirm_args(parser: argparse.ArgumentParser) -> None:
    from studies.confirm import DEFAULT_CANDIDATES, DEFAULT_DRAWS

    parser.add_argument(
        "--confirm-candidates",
        type=int,
        default=DEFAULT_CANDIDATES,
        help="best distinct configurations re-scored on fresh seeds before export (default: "
        "%(default)s)",
    )
    parser.add_argument(
        "--confirm-draws",
        type=int,
        default=DEFAULT_DRAWS,
        help="fresh seed sets per candidate; the winner is the lowest mean (default: %(default)s)",
    )


def _storage_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage", help="database URL (default: $OPTIMISE_STORAGE or sqlite:///studies.db)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="optimise", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    launch = commands.add_parser("launch", help="run or resume studies, finalise and export")
    _model_args(launch, symbols="many")
    _storage_arg(launch)
    launch.add_argument("--n-trials", type=int, default=100, help="total target per study")
    launch.add_argument("--timeout", type=float, help="seconds per study for this run")
    _windows(launch)
    launch.add_argument("--seed", type=int, default=0)
    launch.add_argument("--store", default="store", help="hyper-parameter store folder")
    launch.add_argument("--metric", default="price_mae", choices=["price_mae", "return_mae"])
    launch.add_argument("--heartbeat", type=int, default=10, help="heartbeat interval (s)")
    launch.add_argument("--grace", type=int, default=60, help="seconds before a silent trial fails")
    launch.add_argument("--no-progress", action="store_true")
    _confirm_args(launch)

    status = commands.add_parser("status", help="one line per study")
    _storage_arg(status)

    export = commands.add_parser("export", help="finalise if needed and write the store")
    _model_args(export, symbols="many")
    _storage_arg(export)
    _windows(export)
    export.add_argument("--store", default="store")
    export.add_argument("--metric", default="price_mae", choices=["price_mae", "return_mae"])
    export.add_argument("--seed", type=int, default=0)
    _confirm_args(export)

    forecast = commands.add_parser("forecast", help="one-step forecasts with chosen settings")
    _model_args(forecast, symbols="one")
    source = forecast.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-store", action="store_true", help="use the exported winner")
    source.add_argument("--param", action="append", metavar="NAME=VALUE")
    forecast.add_argument("--store", default="store")
    forecast.add_argument("--last", type=int, default=5, help="also forecast the last K bars")
    forecast.add_argument(
        "--window",
        choices=["validation", "test"],
        help="forecast a study's validation or test targets instead of the last K bars "
        "(sizes from --val-window/--test-window); with --seed <study seed> this reproduces a "
        "trial's stored val_forecasts exactly",
    )
    _windows(forecast)
    forecast.add_argument(
        "--seed", type=int, default=0, help="seed set: the study seed (default: %(default)s)"
    )
    forecast.add_argument("--json", action="store_true")

    dashboard = commands.add_parser("dashboard", help="optuna-dashboard on the same storage")
    _storage_arg(dashboard)
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8080)
    dashboard.add_argument(
        "--read-only",
        action="store_true",
        help="refuse the dashboard's write routes (delete study, tell, notes, artifacts)",
    )

    checkpoint = commands.add_parser("checkpoint", help="checkpoint tools")
    checkpoint_commands = checkpoint.add_subparsers(
        dest="checkpoint_command", required=True, parser_class=_Parser
    )
    init = checkpoint_commands.add_parser("init", help="write a randomly initialised checkpoint")
    init.add_argument("--arch", required=True, choices=["kronos", "toto"])
    init.add_argument("--preset", default="tiny")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--force", action="store_true", help="replace an existing OUT")
    init.add_argument("out", metavar="OUT")
    return parser


def _handler(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    from optimise import commands

    if args.command == "checkpoint":
        return commands.checkpoint_init
    return getattr(commands, args.command)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    import optuna

    optuna.logging.set_verbosity(logging.INFO if args.verbose else logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return _handler(args)(args)
    except USER_ERRORS as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: studies are intact; run the same command to resume\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - last resort: one line unless debugging
        if os.environ.get("OPTIMISE_DEBUG"):
            raise
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__}: {exc} (OPTIMISE_DEBUG=1 shows details)\n"
        )
        return 1
