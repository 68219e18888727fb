"""Error handling and dispatch for every ``optimise`` command (the options: ``parser.py``).

Bad input ends with one ``error: …`` line on stderr and exit code 2; a database that stayed
unreachable through the outage wait, with one such line and exit code 3 (run the command again
later: nothing is lost); Ctrl-C (or SIGTERM) stops cleanly with exit code 130 and leaves every
study resumable.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from errors import EXIT_UNREACHABLE, OptimiseError
from optimise.parser import EXIT_USAGE, build_parser
from storage.faults import DB_ERRORS, is_outage, is_permanent, root_cause
from studies.stop import install_stop_handlers

EXIT_INTERRUPTED = 130


def _handler(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    from optimise import commands

    if args.command == "checkpoint":
        return commands.checkpoint_init
    return getattr(commands, args.command)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    import optuna

    optuna.logging.set_verbosity(logging.INFO if args.verbose else logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    install_stop_handlers()
    try:
        from optimise.setup import resolve_task

        resolve_task(args)
        return _handler(args)(args)
    except OptimiseError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except DB_ERRORS as exc:  # one no command waited out: the driver's reason, not Optuna's
        if is_outage(exc):
            sys.stderr.write(f"error: the database was unreachable: {root_cause(exc)}\n")
            return EXIT_UNREACHABLE
        if is_permanent(exc):
            sys.stderr.write(f"error: database error: {root_cause(exc)}\n")
            return EXIT_USAGE
        if os.environ.get("OPTIMISE_DEBUG"):
            raise
        sys.stderr.write(
            f"error: unexpected database error: {root_cause(exc)} (OPTIMISE_DEBUG=1 shows "
            "details)\n"
        )
        return 1
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
